import type { ColdLog } from '../core/log.js';
import type { Entry, HardState, Message, Snapshot, SnapshotMessage, SnapshotMeta, StagedSnapshot } from '../core/types.js';

/** What the engine needs of time: the same interface is backed by real timers or the simulator. */
export interface Runtime {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `fn` once the current turn of the event loop is done (group commit gathers a turn). */
  defer(fn: () => void): void;
  /** Runs `fn` after `ms`; the returned function cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
}

/** One unit of durable work, applied in this order: hard state, snapshot, compaction, truncation, append, fsync. */
export interface PersistWork {
  readonly hardState: HardState | null;
  /** A snapshot received from the leader: it replaces the whole log. */
  readonly installSnapshot: Snapshot | null;
  /** Log entries up to here may go: a snapshot this node took covers them, and it is durable. */
  readonly compactTo: number | null;
  readonly truncateFrom: number | null;
  readonly entries: readonly Entry[];
  /** Entries cut from the log, to keep in rollback/ with their index, term and payload. */
  readonly rollback: readonly Entry[];
  readonly sync: boolean;
}

/**
 * A snapshot's state bytes, read a piece at a time, so that a node need not hold a snapshot it
 * keeps on disk in memory to send it.
 */
export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  /** The length of the state bytes. */
  readonly bytes: number;
  /** Where the state bytes are on disk (from `offset` in the file at `path`), or null when in memory. */
  readonly file: { readonly path: string; readonly offset: number } | null;
  /**
   * Reads `length` state bytes from `offset` (within 0..bytes). A reader of a file checks the
   * file's checksum once the last byte was read in order, and fails that read on a mismatch.
   */
  read(offset: number, length: number, done: (error: Error | null, chunk: Uint8Array | null) => void): void;
  /** Releases what the reader holds; it is not read again. */
  close(): void;
}

/**
 * A snapshot this node takes, written to disk a piece at a time as it is built: no more than the
 * piece being written is in memory. Calls come in order: each after the last one's `done`.
 */
export interface SnapshotSink {
  /** Appends the next piece of the state bytes. */
  write(piece: Uint8Array, done: (error: Error | null) => void): void;
  /**
   * Makes the snapshot durable: from then on it is the newest snapshot on disk, unless a newer
   * one got there first (then it is dropped).
   */
  finish(done: (error: Error | null) => void): void;
  /** Gives the snapshot up: nothing of it stays. */
  abort(): void;
}

/** The durable log, hard state and snapshots of one node. */
export interface Storage {
  /** Does `work` and calls `done` once it is durable (or with the error that stopped it). */
  persist(work: PersistWork, done: (error: Error | null) => void): void;
  /**
   * Opens the newest durable snapshot if its index is at least `index` (`reader` null when there
   * is none), once every snapshot given to `persist` before is written.
   */
  openSnapshot(index: number, done: (error: Error | null, reader: SnapshotReader | null) => void): void;
  /** Starts writing the snapshot `meta` that this node takes (see SnapshotSink). */
  createSnapshot(meta: SnapshotMeta): SnapshotSink;
  /** Removes a snapshot a transport staged in a file that will not be installed. */
  discardStaged(staged: StagedSnapshot): void;
  /**
   * Reads durable log entries from `lo` on, up to `hi`, at most `entriesMax` of them and, past the
   * first, about `bytesMax` payload bytes (it may return fewer, never none). Fails when `lo` is
   * not in the log on disk or a record is damaged (CORRUPT, naming the file and offset).
   */
  readEntries(lo: number, hi: number, entriesMax: number, bytesMax: number, done: (error: Error | null, entries: readonly Entry[]) => void): void;
}

/** The newest snapshot recovery found: its bytes are read only if the state machine needs them. */
export interface RecoveredSnapshot {
  readonly meta: SnapshotMeta;
  /** The length of the state bytes. */
  readonly bytes: number;
  /** Reads the state bytes whole (at start, when the state machine is behind the snapshot). */
  load(): Uint8Array;
}

/** What recovery found on disk at start. */
export interface Recovered {
  readonly hardState: HardState;
  readonly snapshot: RecoveredSnapshot | null;
  /** The log's entries in memory: all of them after the snapshot, or those after `cold`. */
  readonly entries: readonly Entry[];
  /** Entries before `entries` that recovery checked but left on disk (see FileStorageOptions.keepEntriesFrom). */
  readonly cold?: ColdLog | null;
}

/** Sends messages to peers; delivery is best effort (the protocol retries). */
export interface Transport {
  send(message: Message): void;
  /** Sends a snapshot message with the bytes `reader` gives; closes the reader when done with it. */
  sendSnapshot(message: SnapshotMessage, reader: SnapshotReader): void;
}
