import { constants, existsSync, ftruncateSync, fsyncSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeLog, decodeRecord, encodeRecord, logWriteBytesMax } from '../codec/log-record.js';
import type { ColdLog } from '../core/log.js';
import type { Entry, HardState, Snapshot, SnapshotMeta, StagedSnapshot } from '../core/types.js';
import type { PersistWork, Recovered, RecoveredSnapshot, SnapshotReader, SnapshotSink, Storage } from '../engine/interfaces.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { fsyncDir, fsyncDirSync, writeFileAtomic, writeFileAtomicSync } from './files.js';
import { FileSnapshotSink, recoverSnapshotFile, SnapshotFileReader, SnapshotFileWriter } from './snapshot-file.js';
import { stagedSnapshotPattern } from '../shared/staged-snapshots.js';
import { decodeHardState, encodeHardState, encodeSnapshot } from './meta-files.js';

/** Settings of the on-disk log. */
export interface FileStorageOptions {
  /** A new segment starts once the current one holds this many bytes. */
  readonly segmentBytesMax?: number;
  /** Called as log segments are read at start (every tenth of them), for progress lines. */
  readonly onRecoveryProgress?: (segmentsRead: number, segments: number) => void;
  /** Fault injection for the test harness: a delay before each write, or a full disk. */
  readonly faults?: () => DiskFaults;
  /** Called with the duration of each durable batch write (O_DSYNC), for metrics. */
  readonly onSync?: (ms: number) => void;
  /**
   * Recovery keeps in memory only the entries from this index on (the state machine has applied
   * those before): the others are checked, and only their terms and configuration entries kept
   * (Recovered.cold). Default: every entry after the snapshot.
   */
  readonly keepEntriesFrom?: number;
}

/** What recovery did, for the start-up log line. */
export interface RecoveryReport {
  readonly segments: number;
  readonly entries: number;
  /** Bytes of a torn last record cut from the last segment (0 when the log ended cleanly). */
  readonly tornBytesCut: number;
  readonly tornFile: string | null;
}

/** One segment file: records of consecutive indexes starting at `firstIndex`. */
interface Segment {
  readonly firstIndex: number;
  readonly path: string;
  /** Byte offset of each record, in index order. */
  offsets: number[];
  bytes: number;
  /** Bytes of the file known written and durable: its records, then zeros written ahead. */
  allocated: number;
}

/** Disk faults the harness can inject (see TANDEM_FAULT_FILE in the node). */
export interface DiskFaults {
  readonly writeDelayMs: number;
  readonly full: boolean;
}

const defaultSegmentBytesMax = 64 * 1024 * 1024;
/** Bytes of a staged snapshot copied into its snapshot file at a time. */
const stagedCopyBytes = 8 * 1024 * 1024;
/**
 * How far past its last record the active segment is kept zero-filled (topped up once less than
 * half is left). An O_DSYNC write into space already written does not change the file's size or
 * block map, so it needs no file-system journal commit: measured here, 0.15 ms a write instead of
 * 0.23 (one writer), and the three nodes of one machine no longer queue on one journal.
 */
const zeroAheadBytes = 1024 * 1024;
let zeroBuffer: Buffer | null = null;
const segmentPattern = /^segment-(\d{20})\.log$/;
const snapshotPattern = /^snapshot-(\d{20})\.snap$/;

const pad = (n: number): string => String(n).padStart(20, '0');

/**
 * The durable log of one node: segment files of CRC32C-checked records, the hard state file,
 * snapshot files and the rollback/ journal. Recovery verifies every record, cuts a torn tail and
 * refuses damage anywhere else with the file and offset. `persist` does one unit of work with
 * one write and one fdatasync on the active segment, off the event loop.
 */
export class FileStorage implements Storage {
  private readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly onSync: (ms: number) => void;
  private segments: Segment[];
  private active: FileHandle | null = null;
  private busy = false;
  /** A truncation of the active segment not yet synced (O_DSYNC covers writes, not ftruncate). */
  private truncatedUnsynced = false;
  /** Zeros being written ahead of the active segment's end (see zeroAhead), or null. */
  private zeroing: Promise<void> | null = null;

  private readonly faults: (() => DiskFaults) | undefined;

  private constructor(dir: string, segments: Segment[], options: FileStorageOptions) {
    this.faults = options.faults;
    this.dir = dir;
    this.segments = segments;
    this.segmentBytesMax = options.segmentBytesMax ?? defaultSegmentBytesMax;
    this.onSync = options.onSync ?? (() => {});
  }

  /** Opens (creating if needed) the data directory and recovers what it holds. Synchronous: start-up only. */
  static open(dir: string, options: FileStorageOptions = {}): { storage: FileStorage; recovered: Recovered; report: RecoveryReport } {
    for (const sub of ['log', 'snapshots', 'rollback']) mkdirSync(join(dir, sub), { recursive: true });
    removeLeftovers(join(dir, 'snapshots'));
    const hardState = readHardState(dir);
    const snapshot = readLatestSnapshot(dir);
    const { segments, entries, cold, report } = readSegments(dir, snapshot?.meta.index ?? 0, options.keepEntriesFrom ?? 0, options.onRecoveryProgress);
    return { storage: new FileStorage(dir, segments, options), recovered: { hardState, snapshot, entries, cold }, report };
  }

  /**
   * Seeds an empty data directory from a backup: the snapshot becomes the node's only state, and
   * its term the node's term. Refuses a directory that already holds a log, a snapshot or a vote.
   */
  static seed(dir: string, snapshot: { readonly meta: SnapshotMeta; readonly data: Uint8Array }): void {
    for (const sub of ['log', 'snapshots', 'rollback']) mkdirSync(join(dir, sub), { recursive: true });
    const occupied = existsSync(join(dir, 'hardstate')) || readdirSync(join(dir, 'log')).length > 0 || readdirSync(join(dir, 'snapshots')).length > 0 || existsSync(join(dir, 'state'));
    if (occupied) throw new TandemError(ErrorCode.badRequest, `${dir} already holds a node's data; restore seeds only an empty directory`);
    writeFileAtomicSync(join(dir, 'snapshots', `snapshot-${pad(snapshot.meta.index)}.snap`), encodeSnapshot(snapshot));
    writeFileAtomicSync(join(dir, 'hardstate'), encodeHardState({ term: snapshot.meta.term, votedFor: null }));
  }

  /** The rollback journal: one JSON line per entry cut from the log. */
  get rollbackPath(): string {
    return join(this.dir, 'rollback', 'rollback.jsonl');
  }

  persist(work: PersistWork, done: (error: Error | null) => void): void {
    if (this.busy) throw new Error('FileStorage.persist called while a persist is in flight');
    this.busy = true;
    this.doPersist(work).then(
      () => {
        this.busy = false;
        done(null);
      },
      (error: unknown) => {
        this.busy = false;
        done(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Closes the active segment. */
  async close(): Promise<void> {
    await this.zeroing;
    await this.active?.close();
    this.active = null;
  }

  private async doPersist(work: PersistWork): Promise<void> {
    const fault = this.faults?.();
    if (fault !== undefined) {
      if (fault.writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.writeDelayMs));
      if (fault.full) throw Object.assign(new Error('ENOSPC: no space left on device (injected by TANDEM_FAULT_FILE)'), { code: 'ENOSPC' });
    }
    if (work.hardState !== null) await writeFileAtomic(join(this.dir, 'hardstate'), encodeHardState(work.hardState));
    if (work.rollback.length > 0) await this.writeRollback(work.rollback);
    if (work.installSnapshot !== null) await this.installSnapshot(work.installSnapshot);
    if (work.compactTo !== null) await this.compactSegments(work.compactTo);
    const first = work.entries[0];
    const cutFrom = Math.min(work.truncateFrom ?? Infinity, first?.index ?? Infinity);
    if (cutFrom !== Infinity) await this.cutFrom(cutFrom);
    if (work.entries.length > 0) {
      // The active segment is opened with O_DSYNC: each write returns once its bytes (and the
      // file's new size) are on disk, one system call where write + fdatasync took two.
      const started = performance.now();
      await this.append(work.entries);
      this.onSync(performance.now() - started);
    }
    if (work.sync && this.truncatedUnsynced && this.active !== null) await this.active.datasync();
    this.truncatedUnsynced = false;
  }

  private async writeRollback(entries: readonly Entry[]): Promise<void> {
    const at = new Date().toISOString();
    const lines = entries.map((e) => JSON.stringify({ at, index: e.index, term: e.term, kind: e.kind, payloadBase64: Buffer.from(e.data).toString('base64') })).join('\n');
    const handle = await open(this.rollbackPath, 'a');
    try {
      await handle.write(`${lines}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    if (snapshot.data instanceof Uint8Array) await this.writeSnapshotFile(snapshot.meta, snapshot.data);
    else await this.writeSnapshotFileFromStaged(snapshot.meta, snapshot.data);
    await this.dropSegments(this.segments);
    await this.startSegment(snapshot.meta.index + 1);
  }

  /**
   * A snapshot this node takes is written beside the log as it is built, not in the persist path:
   * writing hundreds of megabytes must not stop the node from writing and sending its entries
   * (and heartbeats). The engine compacts the log once it is durable (PersistWork.compactTo).
   */
  createSnapshot(meta: SnapshotMeta): SnapshotSink {
    return new FileSnapshotSink(this.snapshotPath(meta.index), meta, () => this.removeReplacedSnapshots());
  }

  private snapshotPath(index: number): string {
    return join(this.dir, 'snapshots', `snapshot-${pad(index)}.snap`);
  }

  discardStaged(staged: StagedSnapshot): void {
    rm(staged.path, { force: true }).catch(() => undefined);
  }

  openSnapshot(index: number, done: (error: Error | null, reader: SnapshotReader | null) => void): void {
    this.openNewestSnapshot(index).then(
      (reader) => done(null, reader),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), null),
    );
  }

  /**
   * The newest snapshot file, once the ones being written are; a file removed between the listing
   * and the open (a newer snapshot replaced it) sends it to the listing again.
   */
  private async openNewestSnapshot(index: number): Promise<SnapshotFileReader | null> {
    const dir = join(this.dir, 'snapshots');
    for (let attempt = 1; ; attempt++) {
      const newest = newestSnapshotName(dir);
      if (newest === null || Number(snapshotPattern.exec(newest)?.[1]) < index) return null;
      try {
        return await SnapshotFileReader.open(join(dir, newest));
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'ENOENT' || attempt === 3) throw error;
      }
    }
  }

  readEntries(lo: number, hi: number, entriesMax: number, bytesMax: number, done: (error: Error | null, entries: readonly Entry[]) => void): void {
    this.readRecords(lo, hi, entriesMax, bytesMax).then(
      (entries) => done(null, entries),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), []),
    );
  }

  /**
   * Reads entries from the one segment that holds `lo`, in one read of their records (their
   * sizes, from the record offsets, stand for their payloads against bytesMax); every record's
   * checksum and index is checked.
   */
  private async readRecords(lo: number, hi: number, entriesMax: number, bytesMax: number): Promise<Entry[]> {
    const segment = this.segments.find((s) => lo >= s.firstIndex && lo <= lastIndexOf(s));
    if (segment === undefined) throw new TandemError(ErrorCode.unavailable, `log: index ${lo} is not in the log on disk`);
    const first = lo - segment.firstIndex;
    const last = Math.min(hi, lo + entriesMax - 1, lastIndexOf(segment)) - segment.firstIndex;
    const start = segment.offsets[first] as number;
    // The first record always; past it, records of at most bytesMax in all.
    const firstEnd = segment.offsets[first + 1] ?? segment.bytes;
    let end = firstEnd;
    for (let k = first + 1; k <= last; k++) {
      const next = segment.offsets[k + 1] ?? segment.bytes;
      if (next - firstEnd > bytesMax) break;
      end = next;
    }
    const buffer = Buffer.allocUnsafe(end - start);
    const handle = await open(segment.path, 'r');
    try {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      if (bytesRead < buffer.length) throw new TandemError(ErrorCode.corrupt, `${segment.path}: ends at ${start + bytesRead}, inside the records of indexes ${lo}..`, { file: segment.path, offset: start + bytesRead });
    } finally {
      await handle.close();
    }
    const entries: Entry[] = [];
    for (let offset = 0; offset < buffer.length; ) {
      const read = decodeRecord(buffer, offset);
      const expected = lo + entries.length;
      if (read.kind !== 'record' || read.entry.index !== expected) {
        const why = read.kind === 'bad' ? read.reason : read.kind === 'short' ? 'a record cut short' : `index ${read.entry.index} where ${expected} belongs`;
        throw new TandemError(ErrorCode.corrupt, `${segment.path}: ${why} at offset ${start + offset}, reading entries for a follower`, { file: segment.path, offset: start + offset });
      }
      entries.push(read.entry);
      offset += read.bytes;
    }
    return entries;
  }

  /** Drops whole segments that end at or before `compactTo`; the active one stays. */
  private async compactSegments(compactTo: number): Promise<void> {
    const doomed = this.segments.filter((s, k) => k < this.segments.length - 1 && lastIndexOf(s) <= compactTo);
    await this.dropSegments(doomed);
  }

  /** Writes a received snapshot's file from its bytes in memory (8 MiB of the checksum at a time). */
  private async writeSnapshotFile(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    const writer = await SnapshotFileWriter.create(this.snapshotPath(meta.index), meta);
    try {
      for (let offset = 0; offset < data.length; offset += stagedCopyBytes) await writer.append(data.subarray(offset, offset + stagedCopyBytes));
    } catch (error) {
      await writer.abandon();
      throw error;
    }
    await writer.seal();
    await this.removeReplacedSnapshots();
  }

  /** Removes every snapshot file but the newest (a reader still open on one keeps reading it). */
  private async removeReplacedSnapshots(): Promise<void> {
    const dir = join(this.dir, 'snapshots');
    const newest = newestSnapshotName(dir);
    for (const name of readdirSync(dir)) {
      if (snapshotPattern.test(name) && name !== newest) await rm(join(dir, name), { force: true });
    }
  }

  /**
   * Writes the snapshot file of a snapshot a transport staged in a file: its state bytes copied
   * 8 MiB at a time (the checksum taken as they pass, the seal written last), then the staged
   * file removed. No more than a piece of it is in memory at once.
   */
  private async writeSnapshotFileFromStaged(meta: SnapshotMeta, staged: StagedSnapshot): Promise<void> {
    const source = await open(staged.path, 'r');
    try {
      const writer = await SnapshotFileWriter.create(this.snapshotPath(meta.index), meta);
      try {
        const piece = Buffer.allocUnsafe(stagedCopyBytes);
        for (let offset = 0; offset < staged.bytes; ) {
          const { bytesRead } = await source.read(piece, 0, Math.min(piece.length, staged.bytes - offset), offset);
          if (bytesRead === 0) throw new TandemError(ErrorCode.corrupt, `${staged.path}: ends at ${offset}, before the ${staged.bytes} bytes received`, { file: staged.path, offset });
          await writer.append(piece.subarray(0, bytesRead));
          offset += bytesRead;
        }
      } catch (error) {
        await writer.abandon();
        throw error;
      }
      await writer.seal();
    } finally {
      await source.close();
    }
    await rm(staged.path, { force: true });
    await this.removeReplacedSnapshots();
  }

  private async dropSegments(doomed: readonly Segment[]): Promise<void> {
    if (doomed.length === 0) return;
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined && doomed.includes(last)) {
      await this.zeroing;
      await this.active?.close();
      this.active = null;
    }
    for (const segment of doomed) await rm(segment.path, { force: true });
    this.segments = this.segments.filter((s) => !doomed.includes(s));
    await fsyncDir(join(this.dir, 'log'));
  }

  /** Removes every record from `index` on: cuts the segment that holds it, drops later ones. */
  private async cutFrom(index: number): Promise<void> {
    const holder = this.segments.findIndex((s) => index >= s.firstIndex && index <= lastIndexOf(s));
    if (holder === -1) return;
    const segment = this.segments[holder] as Segment;
    await this.dropSegments(this.segments.slice(holder + 1));
    if (index === segment.firstIndex && holder > 0) {
      await this.dropSegments([segment]);
      return;
    }
    const keep = index - segment.firstIndex;
    const bytes = segment.offsets[keep] as number;
    // No fsync here: a truncation always comes with the Ready's own fsync of this segment.
    await this.zeroing;
    const handle = await this.activeHandle();
    await handle.truncate(bytes);
    this.truncatedUnsynced = true;
    segment.offsets = segment.offsets.slice(0, keep);
    segment.bytes = bytes;
    segment.allocated = bytes;
  }

  /** Appends entries, starting a new segment whenever the current one is full. */
  private async append(entries: readonly Entry[]): Promise<void> {
    const first = entries[0] as Entry;
    let segment = this.segments[this.segments.length - 1];
    if (segment === undefined) {
      segment = await this.startSegment(first.index);
    } else if (segment.offsets.length === 0 && segment.firstIndex !== first.index) {
      // An empty segment named for another index (after a cut): start it again under the right name.
      await this.dropSegments([segment]);
      segment = await this.startSegment(first.index);
    }
    const expected = segment.firstIndex + segment.offsets.length;
    if (first.index !== expected) {
      throw new TandemError(ErrorCode.corrupt, `log: appending index ${first.index} where ${expected} comes next`);
    }
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    for (const entry of entries) {
      const record = encodeRecord(entry);
      if (segment.bytes + batchBytes + record.length > this.segmentBytesMax && segment.offsets.length + batch.length > 0) {
        await this.writeRecords(segment, batch, batchBytes);
        if (this.truncatedUnsynced && this.active !== null) await this.active.datasync();
        this.truncatedUnsynced = false;
        segment = await this.startSegment(entry.index);
        batch = [];
        batchBytes = 0;
      }
      batch.push(record);
      batchBytes += record.length;
    }
    await this.writeRecords(segment, batch, batchBytes);
    this.zeroAhead(segment);
  }

  /**
   * Writes records at the end of `segment` (the active one): one write, or several in order when
   * they hold more than logWriteBytesMax, so that a crash tears at most that many bytes (recovery
   * relies on it to tell a torn write from damage).
   */
  private async writeRecords(segment: Segment, records: readonly Uint8Array[], total: number): Promise<void> {
    if (records.length === 0) return;
    const buffer = Buffer.allocUnsafe(total);
    const offsets: number[] = [];
    const pieceEnds: number[] = [];
    let offset = 0;
    let pieceStart = 0;
    for (const record of records) {
      if (offset > pieceStart && offset + record.length - pieceStart > logWriteBytesMax) {
        pieceEnds.push(offset);
        pieceStart = offset;
      }
      offsets.push(segment.bytes + offset);
      buffer.set(record, offset);
      offset += record.length;
    }
    pieceEnds.push(total);
    const handle = await this.activeHandle();
    pieceStart = 0;
    for (const end of pieceEnds) {
      // Never beside zeros still being written over the same bytes.
      if (segment.bytes + end > segment.allocated) await this.zeroing;
      await handle.write(buffer, pieceStart, end - pieceStart, segment.bytes + pieceStart);
      pieceStart = end;
    }
    // Only writes that all succeeded count: after a failure (a full disk) the same batch is written
    // again at the same place.
    segment.offsets.push(...offsets);
    segment.bytes += total;
    segment.allocated = Math.max(segment.allocated, segment.bytes);
  }

  /**
   * Tops up the zeros written ahead of the active segment's end, in the background, once less
   * than half of zeroAheadBytes is left (never past the segment's size). Appends wait for it only
   * when they would reach the bytes being zeroed. A failure is not an error: later appends then
   * grow the file as they go, and a full disk is met by the append itself.
   */
  private zeroAhead(segment: Segment): void {
    if (this.zeroing !== null || this.active === null || segment.allocated - segment.bytes >= zeroAheadBytes / 2) return;
    const from = Math.max(segment.allocated, segment.bytes);
    const to = Math.min(this.segmentBytesMax, segment.bytes + zeroAheadBytes);
    if (to <= from) return;
    zeroBuffer ??= Buffer.alloc(zeroAheadBytes);
    const handle = this.active;
    this.zeroing = handle.write(zeroBuffer, 0, to - from, from).then(
      () => {
        segment.allocated = Math.max(segment.allocated, to);
        this.zeroing = null;
      },
      () => {
        this.zeroing = null;
      },
    );
  }

  private async startSegment(firstIndex: number): Promise<Segment> {
    await this.zeroing;
    await this.active?.close();
    this.active = null;
    const segment: Segment = { firstIndex, path: join(this.dir, 'log', `segment-${pad(firstIndex)}.log`), offsets: [], bytes: 0, allocated: 0 };
    this.active = await open(segment.path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
    this.segments.push(segment);
    await fsyncDir(join(this.dir, 'log'));
    return segment;
  }

  private async activeHandle(): Promise<FileHandle> {
    if (this.active === null) {
      const segment = this.segments[this.segments.length - 1] as Segment;
      this.active = await open(segment.path, constants.O_RDWR | constants.O_DSYNC);
    }
    return this.active;
  }
}

function lastIndexOf(segment: Segment): number {
  return segment.firstIndex + segment.offsets.length - 1;
}

function readHardState(dir: string): HardState {
  const path = join(dir, 'hardstate');
  if (!existsSync(path)) return { term: 0, votedFor: null };
  return decodeHardState(readFileSync(path), path);
}

/**
 * Removes what a stopped node left in its snapshots directory: snapshots a transport was staging
 * or had staged (they were not installed), and a snapshot file written only in part.
 */
function removeLeftovers(snapshots: string): void {
  for (const name of readdirSync(snapshots)) if (stagedSnapshotPattern.test(name) || name.endsWith('.snap.tmp')) rmSync(join(snapshots, name), { force: true });
}

function newestSnapshotName(snapshots: string): string | null {
  const names = readdirSync(snapshots).filter((n) => snapshotPattern.test(n)).sort();
  return names[names.length - 1] ?? null;
}

function readLatestSnapshot(dir: string): RecoveredSnapshot | null {
  const snapshots = join(dir, 'snapshots');
  const newest = newestSnapshotName(snapshots);
  return newest === null ? null : recoverSnapshotFile(join(snapshots, newest));
}

/**
 * Reads every segment, verifying each record; cuts a torn tail from the last one only. Entries
 * after the snapshot but before `keepFrom` are not kept: their terms and configuration entries are
 * (the segment buffers they were read from can go).
 */
function readSegments(
  dir: string,
  snapshotIndex: number,
  keepFrom: number,
  onProgress?: (segmentsRead: number, segments: number) => void,
): { segments: Segment[]; entries: Entry[]; cold: ColdLog | null; report: RecoveryReport } {
  const logDir = join(dir, 'log');
  const names = readdirSync(logDir).filter((n) => segmentPattern.test(n)).sort();
  let shownTenth = 0;
  const segments: Segment[] = [];
  const entries: Entry[] = [];
  let previous: Entry | undefined;
  let entriesRead = 0;
  const cold = { through: 0, termStarts: [] as [number, number][], configEntries: [] as Entry[] };
  let tornBytesCut = 0;
  let tornFile: string | null = null;
  names.forEach((name, k) => {
    const path = join(logDir, name);
    const firstIndex = Number((segmentPattern.exec(name) as RegExpExecArray)[1]);
    const buffer = readFileSync(path);
    const decoded = decodeLog(buffer, path);
    const isLast = k === names.length - 1;
    if (decoded.tornBytes > 0) {
      if (!isLast) {
        throw new TandemError(ErrorCode.corrupt, `${path}: ${decoded.tornBytes} bad bytes at offset ${decoded.validBytes}, but this is not the last segment`, { file: path, offset: decoded.validBytes });
      }
      cutFile(path, decoded.validBytes);
      tornBytesCut = decoded.tornBytes;
      tornFile = path;
    }
    decoded.entries.forEach((entry, j) => {
      const expected = firstIndex + j;
      const offset = decoded.offsets[j] as number;
      if (entry.index !== expected) {
        throw new TandemError(ErrorCode.corrupt, `${path}: record at offset ${offset} holds index ${entry.index}, expected ${expected}`, { file: path, offset });
      }
    });
    const tenth = Math.floor((10 * (k + 1)) / names.length);
    if (onProgress !== undefined && tenth > shownTenth) {
      shownTenth = tenth;
      onProgress(k + 1, names.length);
    }
    if (decoded.entries.length > 0 && previous !== undefined && firstIndex !== previous.index + 1) {
      throw new TandemError(ErrorCode.corrupt, `${path}: starts at index ${firstIndex} but the previous segment ends at ${previous.index}`, { file: path, offset: 0 });
    }
    if (decoded.entries.length > 0 && previous === undefined && firstIndex > snapshotIndex + 1) {
      throw new TandemError(ErrorCode.corrupt, `${path}: starts at index ${firstIndex}, leaving a gap after the snapshot at ${snapshotIndex}`, { file: path, offset: 0 });
    }
    entriesRead += decoded.entries.length;
    for (const entry of decoded.entries) {
      if (entry.index <= snapshotIndex) continue;
      if (entry.index >= keepFrom) {
        entries.push(entry);
        continue;
      }
      const lastStart = cold.termStarts[cold.termStarts.length - 1];
      if (lastStart === undefined || lastStart[0] !== entry.term) cold.termStarts.push([entry.term, entry.index]);
      if (entry.kind === 'config') cold.configEntries.push({ ...entry, data: entry.data.slice() });
      cold.through = entry.index;
    }
    previous = decoded.entries[decoded.entries.length - 1] ?? previous;
    // Zeros after the records (written ahead) stay: appends overwrite them. A cut file ends at its records.
    const allocated = decoded.tornBytes > 0 ? decoded.validBytes : buffer.length;
    segments.push({ firstIndex, path, offsets: decoded.offsets, bytes: decoded.validBytes, allocated });
  });
  return { segments, entries, cold: cold.through > 0 ? cold : null, report: { segments: segments.length, entries: entriesRead, tornBytesCut, tornFile } };
}

function cutFile(path: string, bytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDirSync(join(path, '..'));
}

/** Removes a data directory (tests and `tandem demo --fresh`). */
export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
