import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../codec/crc32c.js';
import { snapshotBytesMax } from '../codec/messages.js';
import type { SnapshotData } from '../core/types.js';
import { stagedSnapshotName } from '../shared/staged-snapshots.js';

/** The bytes before a snapshot chunk's data: CRC32C, total (f64), offset (f64). */
export const chunkHeaderBytes = 20;
/** The largest snapshot staged in a file: a limit on everything, far above any state Tandem holds. */
export const snapshotStagedBytesMax = 2 ** 44;

let stagedFiles = 0;

/**
 * Collects one snapshot's chunks from a connection: each chunk's CRC32C is checked, offsets must
 * follow each other, and the total is checked against the limit before anything is allocated.
 * Without a staging directory the chunks go into one buffer (at most 1 GiB). With one, each chunk
 * is written to a file of its own there as it arrives (page cache; the snapshot file made from it
 * is synced), so a receiver never holds a snapshot in memory; a stream given up (a new one starts,
 * the connection closes) removes its file.
 */
export class SnapshotAssembler {
  private buffer: Uint8Array | null = null;
  private staged: { readonly path: string; readonly fd: number } | null = null;
  received = 0;
  total = 0;

  constructor(
    private readonly stageDir: string | null,
    private readonly peer: string,
  ) {}

  /** Adds a chunk frame; returns what is wrong with it, or null. */
  add(frame: Uint8Array): string | null {
    if (frame.length < chunkHeaderBytes) return 'chunk header cut short';
    const view = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    const crc = view.readUInt32LE(0);
    const total = view.readDoubleLE(4);
    const offset = view.readDoubleLE(12);
    const chunk = frame.subarray(chunkHeaderBytes);
    const bytesMax = this.stageDir === null ? snapshotBytesMax : snapshotStagedBytesMax;
    if (!Number.isSafeInteger(total) || total <= 0 || total > bytesMax) return `snapshot size ${total} is outside 1..${bytesMax}`;
    if (crc32c(chunk) !== crc) return `checksum mismatch in the chunk at offset ${offset}`;
    try {
      if (offset === 0) this.start(total);
      if ((this.buffer === null && this.staged === null) || total !== this.total || offset !== this.received || offset + chunk.length > total) return `chunk at offset ${offset} does not follow ${this.received} of ${this.total}`;
      if (this.staged !== null) {
        let written = 0;
        while (written < chunk.length) written += writeSync(this.staged.fd, chunk, written, chunk.length - written, offset + written);
      } else {
        this.buffer?.set(chunk, offset);
      }
    } catch (error) {
      // A full disk, say: the stream is given up (the leader sends the snapshot again later).
      this.abandon();
      return `could not stage the snapshot: ${(error as Error).message}`;
    }
    this.received += chunk.length;
    return null;
  }

  /** The assembled snapshot when every chunk arrived (and forgets it: a staged file is the taker's now), otherwise null. */
  take(): SnapshotData | null {
    const complete = this.total > 0 && this.received === this.total;
    let data: SnapshotData | null = null;
    if (complete && this.staged !== null) {
      closeSync(this.staged.fd);
      data = { path: this.staged.path, bytes: this.total };
      this.staged = null;
    } else if (complete) {
      data = this.buffer;
    }
    this.abandon();
    return data;
  }

  /** Forgets a stream not taken whole, removing its staged file. */
  abandon(): void {
    const staged = this.staged;
    this.staged = null;
    if (staged !== null) {
      try {
        closeSync(staged.fd);
        rmSync(staged.path, { force: true });
      } catch {
        // Left for the node's start to remove.
      }
    }
    this.buffer = null;
    this.received = 0;
    this.total = 0;
  }

  private start(total: number): void {
    this.abandon();
    this.total = total;
    if (this.stageDir === null) {
      this.buffer = new Uint8Array(total);
      return;
    }
    const path = join(this.stageDir, stagedSnapshotName(this.peer, process.pid, ++stagedFiles));
    this.staged = { path, fd: openSync(path, 'w') };
  }
}
