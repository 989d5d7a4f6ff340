import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32c } from '../codec/crc32c.js';
import type { SnapshotMeta } from '../core/types.js';
import type { RecoveredSnapshot, SnapshotReader, SnapshotSink } from '../engine/interfaces.js';
import type { SnapshotSource } from '../kv/snapshot-format.js';
import type { SnapshotFile } from '../kv/store.js';
import { assert } from '../shared/assert.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { fsyncDir } from './files.js';
import { decodeSnapshotHead, decodeSnapshotMeta, snapshotHeadBytes, snapshotLead, snapshotSeal } from './meta-files.js';

/**
 * A snapshot file's bytes are synced whenever this many have been written since the last sync. A
 * file synced only at its end reached the disk all at once: sealing a 267 MB snapshot put 265 MB
 * on the disk in 120 ms, and the three nodes' log writes, queued behind it, answered nothing for
 * 100 ms. Synced every 4 MiB, the disk takes a few milliseconds' writing at a time.
 */
export const snapshotSyncBytes = 4 * 1024 * 1024;

/**
 * Writes a snapshot file a piece at a time: the metadata, then the state bytes as they come, to
 * `<path>.tmp`, the checksum taken as they pass, synced every `syncBytes` (see snapshotSyncBytes);
 * `seal` writes the magic word and checksum at the front, makes the file durable and renames it
 * into place (a crash before leaves only the temporary file, which start-up removes). Nothing but
 * the piece being written is held.
 */
export class SnapshotFileWriter {
  private crc: number;
  private offset: number;
  private unsynced = 0;
  private synced = 0;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    lead: Uint8Array,
    private readonly syncBytes: number,
  ) {
    this.crc = crc32c(lead);
    this.offset = 8 + lead.length;
  }

  /** Starts the file of the snapshot `meta` at `path`. */
  static async create(path: string, meta: SnapshotMeta, syncBytes = snapshotSyncBytes): Promise<SnapshotFileWriter> {
    const lead = snapshotLead(meta);
    const handle = await open(`${path}.tmp`, 'w');
    const writer = new SnapshotFileWriter(path, handle, lead, syncBytes);
    try {
      await writeFully(handle, lead, 8);
    } catch (error) {
      await writer.abandon();
      throw error;
    }
    return writer;
  }

  /** Appends the next state bytes. */
  async append(piece: Uint8Array): Promise<void> {
    this.crc = crc32c(piece, this.crc);
    await writeFully(this.handle, piece, this.offset);
    this.offset += piece.length;
    this.unsynced += piece.length;
    if (this.unsynced < this.syncBytes) return;
    this.unsynced = 0;
    this.synced++;
    await this.handle.datasync();
  }

  /** How many times the file was synced before its seal. */
  get syncs(): number {
    return this.synced;
  }

  /** Writes the seal, makes the file durable, and moves it to its name. */
  async seal(): Promise<void> {
    try {
      await writeFully(this.handle, snapshotSeal(this.crc), 0);
      await this.handle.sync();
    } catch (error) {
      await this.abandon();
      throw error;
    }
    await this.handle.close();
    await rename(`${this.path}.tmp`, this.path);
    await fsyncDir(dirname(this.path));
  }

  /** Closes and removes the temporary file. */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(`${this.path}.tmp`, { force: true });
  }
}

/** Writes all of `bytes` at `position` (a write may take fewer bytes than asked). */
async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * A snapshot this node takes, written to its file as it is built (see SnapshotFileWriter);
 * `sealed` runs once the file is in place (the storage removes the snapshots it replaced).
 */
export class FileSnapshotSink implements SnapshotSink {
  private readonly writer: Promise<SnapshotFileWriter>;

  constructor(path: string, meta: SnapshotMeta, private readonly sealed: () => Promise<void>) {
    this.writer = SnapshotFileWriter.create(path, meta);
    // A failure to create is reported by the first write or the finish.
    this.writer.catch(() => undefined);
  }

  write(piece: Uint8Array, done: (error: Error | null) => void): void {
    report(this.writer.then((writer) => writer.append(piece)), done);
  }

  finish(done: (error: Error | null) => void): void {
    report(this.writer.then((writer) => writer.seal()).then(this.sealed), done);
  }

  abort(): void {
    this.writer.then((writer) => writer.abandon()).catch(() => undefined);
  }
}

function report(work: Promise<unknown>, done: (error: Error | null) => void): void {
  work.then(
    () => done(null),
    (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
  );
}

/**
 * Reads a snapshot file's state bytes a piece at a time. The file's checksum covers its metadata
 * and its state bytes; read in order, the pieces are checked as they pass, and the read that
 * reaches the end fails if the checksum does not match — so a follower is never sent a damaged
 * snapshot whole (the pieces before carry their own checksums on the wire, and a follower installs
 * nothing until the last one arrived).
 */
export class SnapshotFileReader implements SnapshotReader {
  /** Bytes from 0 read in order so far, and their running checksum (seeded with the metadata's). */
  private checkedTo = 0;
  private crc: number;
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly meta: SnapshotMeta,
    private readonly dataStart: number,
    readonly bytes: number,
    private readonly expectedCrc: number,
    leadCrc: number,
  ) {
    this.crc = leadCrc;
  }

  get file(): { readonly path: string; readonly offset: number } {
    return { path: this.path, offset: this.dataStart };
  }

  /** Opens `path` and reads its head and metadata; throws CORRUPT naming the file on damage. */
  static async open(path: string): Promise<SnapshotFileReader> {
    const handle = await open(path, 'r');
    try {
      const fileBytes = (await handle.stat()).size;
      const head = Buffer.alloc(snapshotHeadBytes);
      await handle.read(head, 0, snapshotHeadBytes, 0);
      const { crc, metaBytes } = decodeSnapshotHead(head, fileBytes, path);
      const lead = Buffer.alloc(4 + metaBytes);
      const { bytesRead } = await handle.read(lead, 0, lead.length, 8);
      if (bytesRead !== lead.length) throw new TandemError(ErrorCode.corrupt, `${path}: snapshot metadata cut short`, { file: path, offset: 8 });
      const meta = decodeSnapshotMeta(lead.subarray(4), path);
      const dataStart = snapshotHeadBytes + metaBytes;
      return new SnapshotFileReader(handle, path, meta, dataStart, fileBytes - dataStart, crc, crc32c(lead));
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  read(offset: number, length: number, done: (error: Error | null, chunk: Uint8Array | null) => void): void {
    assert(!this.closed && offset >= 0 && length >= 0 && offset + length <= this.bytes, `snapshot read ${offset}+${length} of ${this.bytes}`);
    const chunk = Buffer.allocUnsafe(length);
    this.handle.read(chunk, 0, length, this.dataStart + offset).then(
      ({ bytesRead }) => {
        if (bytesRead !== length) {
          done(new TandemError(ErrorCode.corrupt, `${this.path}: ends inside its state bytes (read ${bytesRead} of ${length} at ${this.dataStart + offset})`, { file: this.path, offset: this.dataStart + offset }), null);
          return;
        }
        if (offset === this.checkedTo) {
          this.crc = crc32c(chunk, this.crc);
          this.checkedTo += length;
          if (this.checkedTo === this.bytes && this.crc !== this.expectedCrc) {
            done(new TandemError(ErrorCode.corrupt, `${this.path}: checksum ${this.crc.toString(16)} does not match ${this.expectedCrc.toString(16)}`, { file: this.path, offset: 8 }), null);
            return;
          }
        }
        done(null, chunk);
      },
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), null),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close().catch(() => undefined);
  }
}

/** Bytes read at a time when a snapshot file is checked at start. */
const recoveryPieceBytes = 8 * 1024 * 1024;

/**
 * A snapshot file found at start: its checksum checked a piece at a time (so a damaged file stops
 * the node, naming it, as before), its metadata read, and its state bytes left on disk until the
 * state machine turns out to need them (it rarely does: LMDB keeps the state).
 */
export function recoverSnapshotFile(path: string): RecoveredSnapshot {
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const head = readRange(fd, 0, Math.min(snapshotHeadBytes, fileBytes));
    const { crc, metaBytes } = decodeSnapshotHead(head, fileBytes, path);
    let actual = 0;
    for (let position = 8; position < fileBytes; position += recoveryPieceBytes) {
      actual = crc32c(readRange(fd, position, Math.min(recoveryPieceBytes, fileBytes - position)), actual);
    }
    if (actual !== crc) throw new TandemError(ErrorCode.corrupt, `${path}: checksum ${actual.toString(16)} does not match ${crc.toString(16)}`, { file: path, offset: 8 });
    const meta = decodeSnapshotMeta(readRange(fd, snapshotHeadBytes, metaBytes), path);
    const dataStart = snapshotHeadBytes + metaBytes;
    const bytes = fileBytes - dataStart;
    return {
      meta,
      bytes,
      load() {
        const again = openSync(path, 'r');
        try {
          return readRange(again, dataStart, bytes);
        } finally {
          closeSync(again);
        }
      },
    };
  } finally {
    closeSync(fd);
  }
}

/** Reads exactly `length` bytes at `position` (start-up only: synchronous). */
function readRange(fd: number, position: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, out, filled, length - filled, position + filled);
    if (read === 0) throw new Error(`file ended at ${position + filled}, ${length - filled} bytes short`);
    filled += read;
  }
  return out;
}

/** Bytes a FileSnapshotSource reads at a time (more when one field is larger). */
const sourcePieceBytes = 8 * 1024 * 1024;

/**
 * A snapshot's state bytes read from a file a piece at a time, for readSnapshotState: what the
 * LMDB writer thread restores from, so that no thread holds a whole snapshot. A field's length is
 * checked against the bytes left before anything is read for it.
 */
export class FileSnapshotSource implements SnapshotSource {
  private buffer: Buffer = Buffer.alloc(0);
  private at = 0;
  /** The file position the buffer ends at. */
  private position: number;
  private readonly endPosition: number;
  private readonly path: string;

  constructor(
    private readonly fd: number,
    file: SnapshotFile,
  ) {
    this.position = file.offset;
    this.endPosition = file.offset + file.bytes;
    this.path = file.path;
  }

  u8(): number {
    this.need(1);
    return this.buffer.readUInt8(this.at++);
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.at);
    this.at += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = this.buffer.readUInt32LE(this.at + 4) * 0x100000000 + this.buffer.readUInt32LE(this.at);
    if (!Number.isSafeInteger(value)) throw this.corrupt(`integer too large at ${this.offsetNow()}`);
    this.at += 8;
    return value;
  }

  /**
   * A length-prefixed field, as a view into the piece it was read from: each piece is a buffer of
   * its own, so the view stays valid as long as it is held (a restore holds a transaction's worth).
   */
  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    const value = this.buffer.subarray(this.at, this.at + length);
    this.at += length;
    return value;
  }

  end(): void {
    if (this.at !== this.buffer.length || this.position !== this.endPosition) throw this.corrupt(`${this.endPosition - this.offsetNow()} bytes after the last pair`);
  }

  private offsetNow(): number {
    return this.position - (this.buffer.length - this.at);
  }

  /** Makes `bytes` unread bytes available, reading more of the file if needed. */
  private need(bytes: number): void {
    const unread = this.buffer.length - this.at;
    if (unread >= bytes) return;
    if (this.offsetNow() + bytes > this.endPosition) throw this.corrupt(`needs ${bytes} bytes at ${this.offsetNow()}, has ${this.endPosition - this.offsetNow()}`);
    const length = Math.min(Math.max(bytes - unread, sourcePieceBytes), this.endPosition - this.position);
    const next = Buffer.allocUnsafe(unread + length);
    this.buffer.copy(next, 0, this.at);
    let filled = unread;
    while (filled < next.length) {
      const read = readSync(this.fd, next, filled, next.length - filled, this.position);
      if (read === 0) throw this.corrupt(`ends at ${this.position}, before the ${this.endPosition} it should reach`);
      filled += read;
      this.position += read;
    }
    this.buffer = next;
    this.at = 0;
  }

  private corrupt(problem: string): TandemError {
    return new TandemError(ErrorCode.corrupt, `${this.path}: snapshot state: ${problem}`, { file: this.path });
  }
}
