import { decodeLog, encodeRecord } from '../codec/log-record.js';
import { snapshotDataBytes, type Entry, type HardState, type Snapshot, type SnapshotData, type SnapshotMeta } from '../core/types.js';
import { assert } from '../shared/assert.js';
import type { PersistWork, Recovered, SnapshotReader, SnapshotSink, Storage } from '../engine/interfaces.js';
import { memorySnapshotReader } from '../engine/snapshot-reader.js';
import type { Prng } from '../shared/prng.js';

/** An entry cut from the log, as kept in a node's rollback/ folder. */
export interface RollbackRecord {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

interface DurableState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** The log file as records; the last one may be torn (fewer bytes than it claims). */
  records: { index: number; bytes: Uint8Array }[];
  rollback: RollbackRecord[];
}

/** Latency of one persist, in simulated ms. */
export interface DiskTiming {
  readonly minMs: number;
  readonly maxMs: number;
  /** Chance that one persist is slow (a stalled disk), and how slow. */
  readonly slowChance: number;
  readonly slowMs: number;
}

/**
 * A simulated disk for one node. Work becomes durable only when its persist completes; a crash
 * before that keeps an arbitrary part of it: nothing, or the hard state, or a prefix of the new
 * records, the last possibly torn — as a real file system may after power loss.
 */
export class SimDisk implements Storage {
  private durable: DurableState = { hardState: { term: 0, votedFor: null }, snapshot: null, records: [], rollback: [] };
  private inflight: PersistWork | null = null;
  /** Counts crashes: a snapshot still being written when the node died never lands. */
  private lives = 0;
  /** Torn tails cut at recovery, for the checkers and the trace. */
  tornTailsCut = 0;
  /** Snapshots read back from this disk to be sent (the engine no longer held their bytes). */
  snapshotsOpened = 0;
  /** Log entries read back from this disk for followers (the core no longer held them). */
  entriesRead = 0;

  constructor(
    private readonly prng: Prng,
    private readonly timing: DiskTiming,
    private readonly schedule: (delayMs: number, fn: () => void) => void,
  ) {}

  persist(work: PersistWork, done: (error: Error | null) => void): void {
    this.inflight = work;
    const { minMs, maxMs, slowChance, slowMs } = this.timing;
    const latency = this.prng.chance(slowChance) ? slowMs : minMs + this.prng.float() * (maxMs - minMs);
    this.schedule(latency, () => {
      this.apply(work, work.entries.length);
      this.inflight = null;
      done(null);
    });
  }

  /** The snapshot on this disk, if it reaches `index` (at once: the simulated disk keeps it in memory). */
  openSnapshot(index: number, done: (error: Error | null, reader: SnapshotReader | null) => void): void {
    const snapshot = this.durable.snapshot;
    if (snapshot !== null && snapshot.meta.index >= index) this.snapshotsOpened++;
    done(null, snapshot === null || snapshot.meta.index < index ? null : memorySnapshotReader(snapshot.meta, inMemory(snapshot.data)));
  }

  /**
   * Reads durable records back, after a disk's latency: only what is on the disk at the moment
   * the read completes (a compaction or install meanwhile makes it fail, as a removed segment does).
   */
  readEntries(lo: number, hi: number, entriesMax: number, bytesMax: number, done: (error: Error | null, entries: readonly Entry[]) => void): void {
    this.afterLatency(() => {
      const records = this.durable.records;
      const start = records.findIndex((r) => r.index === lo);
      if (start === -1) {
        done(new Error(`sim-log: index ${lo} is not on the disk`), []);
        return;
      }
      const entries: Entry[] = [];
      let bytes = 0;
      for (let k = start; k < records.length && entries.length < entriesMax; k++) {
        const record = records[k] as { index: number; bytes: Uint8Array };
        if (record.index > hi) break;
        const decoded = decodeLog(record.bytes, 'sim-log').entries[0];
        assert(decoded !== undefined && decoded.index === lo + entries.length, `sim-log: record ${record.index} out of place`);
        if (entries.length > 0 && bytes + decoded.data.length > bytesMax) break;
        if (entries.length > 0) bytes += decoded.data.length;
        entries.push(decoded);
      }
      this.entriesRead += entries.length;
      done(null, entries);
    });
  }

  discardStaged(): void {
    assert(false, 'the simulator staged a snapshot in a file');
  }

  /**
   * A snapshot the node takes: its pieces are kept as they are written, and it becomes durable
   * whole when finished (as the real file is renamed into place), unless the node died first.
   */
  createSnapshot(meta: SnapshotMeta): SnapshotSink {
    const parts: Uint8Array[] = [];
    const life = this.lives;
    return {
      write: (piece, done) => {
        parts.push(piece);
        this.afterLatency(() => done(null));
      },
      finish: (done) => {
        this.afterLatency(() => {
          if (life !== this.lives) return;
          const d = this.durable;
          if (d.snapshot === null || d.snapshot.meta.index < meta.index) d.snapshot = { meta, data: parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts) };
          done(null);
        });
      },
      abort: () => {
        parts.length = 0;
      },
    };
  }

  /** Runs `fn` after a (never slow) disk operation's latency. */
  private afterLatency(fn: () => void): void {
    const { minMs, maxMs } = this.timing;
    this.schedule(minMs + this.prng.float() * (maxMs - minMs), fn);
  }

  /** The node died: unsynced work survives only in part. */
  crash(): void {
    const work = this.inflight;
    this.inflight = null;
    this.lives++;
    if (work === null || this.prng.chance(0.4)) return;
    if (work.hardState !== null && this.prng.chance(0.5)) this.durable.hardState = work.hardState;
    if (work.installSnapshot !== null && this.prng.chance(0.5)) return;
    const kept = this.prng.int(0, work.entries.length);
    this.apply({ ...work, hardState: null }, kept);
    const torn = work.entries[kept];
    if (torn !== undefined && this.prng.chance(0.5)) {
      const bytes = encodeRecord(torn);
      this.durable.records.push({ index: torn.index, bytes: bytes.subarray(0, this.prng.int(1, bytes.length - 1)) });
    }
  }

  /** Reads back what survived, cutting a torn tail exactly as the real recovery does. */
  recover(): Recovered {
    const total = this.durable.records.reduce((sum, r) => sum + r.bytes.length, 0);
    const file = new Uint8Array(total);
    let offset = 0;
    for (const record of this.durable.records) {
      file.set(record.bytes, offset);
      offset += record.bytes.length;
    }
    const { entries, tornBytes } = decodeLog(file, 'sim-log');
    if (tornBytes > 0) {
      this.tornTailsCut++;
      this.durable.records = this.durable.records.slice(0, entries.length);
    }
    const snapshot = this.durable.snapshot;
    return { hardState: this.durable.hardState, snapshot: snapshot === null ? null : { meta: snapshot.meta, bytes: snapshotDataBytes(snapshot.data), load: () => inMemory(snapshot.data) }, entries };
  }

  /** Every rollback record written so far. */
  get rollback(): readonly RollbackRecord[] {
    return this.durable.rollback;
  }

  /** The last index in the durable log (for tests). */
  get lastIndex(): number {
    const last = this.durable.records[this.durable.records.length - 1];
    return last?.index ?? this.durable.snapshot?.meta.index ?? 0;
  }

  private apply(work: PersistWork, entriesKept: number): void {
    const d = this.durable;
    if (work.hardState !== null) d.hardState = work.hardState;
    for (const entry of work.rollback) d.rollback.push({ index: entry.index, term: entry.term, data: entry.data });
    if (work.installSnapshot !== null) {
      d.snapshot = work.installSnapshot;
      d.records = [];
    }
    if (work.compactTo !== null) {
      const compactTo = work.compactTo;
      assert(d.snapshot !== null && d.snapshot.meta.index >= compactTo, `sim-disk: compacting to ${compactTo} past the durable snapshot`);
      d.records = d.records.filter((r) => r.index > compactTo);
    }
    const firstNew = work.entries[0];
    const cutFrom = Math.min(work.truncateFrom ?? Number.MAX_SAFE_INTEGER, firstNew?.index ?? Number.MAX_SAFE_INTEGER);
    if (cutFrom !== Number.MAX_SAFE_INTEGER) d.records = d.records.filter((r) => r.index < cutFrom);
    for (const entry of work.entries.slice(0, entriesKept) as Entry[]) d.records.push({ index: entry.index, bytes: encodeRecord(entry) });
  }
}

/** The simulated network carries snapshots whole, in memory: none is ever staged in a file. */
function inMemory(data: SnapshotData): Uint8Array {
  assert(data instanceof Uint8Array, 'the simulator staged a snapshot in a file');
  return data;
}
