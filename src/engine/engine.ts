import { Raft, type MembershipChange, type RaftOptions, type Role } from '../core/raft.js';
import { snapshotDataBytes, type Ack, type ClusterConfig, type Consistency, type Entry, type EntryLoad, type Message, type NodeId, type Ready, type Snapshot, type SnapshotMeta } from '../core/types.js';
import type { Applied, KvStateMachine } from '../kv/machine.js';
import { batchBytesMax, batchCommandHeaderBytes, batchCommandsMax, batchHeaderBytes, encodeCommandBatch, type Command, type Reply } from '../kv/commands.js';
import { assert } from '../shared/assert.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import type { PersistWork, Recovered, Runtime, Storage, Transport } from './interfaces.js';
import { memorySnapshotReader, readWhole } from './snapshot-reader.js';

/** Settings of the ready loop around one node's core. */
export interface EngineOptions {
  readonly raft: RaftOptions;
  readonly bootstrap: ClusterConfig;
  /** How often the core ticks. */
  readonly tickMs: number;
  /** How long a write or read may wait before its caller hears TIMEOUT. */
  readonly requestTimeoutMs: number;
  /**
   * Take a state-machine snapshot after this many applied entries, once the log since the last
   * one holds at least a quarter of that snapshot's bytes (see snapshotLogShareMin).
   */
  readonly snapshotEveryEntries: number;
  /** Entries kept in the log behind a snapshot, so a slightly slow follower needs no snapshot. */
  readonly snapshotKeepEntries: number;
  /**
   * Also take a snapshot once this many payload bytes were applied since the last one (default
   * 64 MiB), or as many as the last snapshot holds if that is more: the log since the last
   * snapshot lives in memory, and with large values a count of entries alone let it grow to
   * gigabytes. A quarter of it at most is kept behind a snapshot.
   */
  readonly snapshotEveryBytes?: number;
  /**
   * This node's snapshot intervals (in entries and in bytes) are this fraction longer, 0 to 0.25
   * (the node picks it from its id), so the nodes of a cluster, which apply the same entries, do
   * not all build and write a snapshot at once. Default 0.
   */
  readonly snapshotStagger?: number;
  /** Record the state digest at every multiple of this index, for replica consistency checks (0: never). */
  readonly digestEveryEntries?: number;
}

/** The outcome of a write: its position in the log and, once applied, the state machine's reply. */
export type WriteResult =
  | { readonly ok: true; readonly index: number; readonly term: number; readonly reply: Reply | null }
  | { readonly ok: false; readonly error: TandemError };

/** The outcome of a read: served (the caller reads the state machine in the callback) or refused. */
export type ReadResult = { readonly ok: true; readonly appliedIndex: number } | { readonly ok: false; readonly error: TandemError };

/** Observers for status pages, metrics and the simulator's checkers; they must not change state. */
export interface EngineObserver {
  /**
   * One command applied (or an entry without commands). `digest` gives the state digest after the
   * entry on the last result of a batch (null before it: the digest after each entry is only known
   * at the batch's end); it may read the store, so call it only when it is wanted.
   */
  applied?(entry: Entry, result: Applied, digest: (() => string) | null): void;
  /**
   * The state digest at a checkpoint index (a multiple of digestEveryEntries). It may come later
   * than the checkpoint's apply (a store that keeps the digest knows it once it has committed).
   */
  checkpoint?(index: number, digest: string): void;
  /** A snapshot was installed; `digest` gives the state digest (it may read the store). */
  /** `staged`: it came staged in a file and was restored from its snapshot file, not from memory. */
  snapshotInstalled?(meta: SnapshotMeta, digest: () => string, staged: boolean): void;
  /** This node took a snapshot of its state (`ms`: from start to finish; built in pieces, it holds the event loop only briefly). */
  snapshotTaken?(meta: SnapshotMeta, bytes: number, ms: number): void;
  roleChanged?(role: Role | 'learner', term: number, leader: NodeId | null): void;
  truncated?(entries: readonly Entry[]): void;
  /** The state machine was ahead of the recovered log and is being rebuilt from snapshot and log. */
  stateRebuilt?(applied: number, logEnd: number): void;
  persisted?(work: PersistWork): void;
  /** Log entries a follower or the state machine needed were read back from disk (they were no longer in memory). */
  entriesLoaded?(count: number, bytes: number, purpose: 'follower' | 'apply'): void;
  fatal?(error: Error): void;
  /** A write failed for want of space; nothing is acknowledged until a retry succeeds. */
  storageStalled?(error: Error): void;
  storageRecovered?(): void;
}

/**
 * The largest command applied from its decoded form (see write): a larger one is decoded from the
 * entry as before. There its bytes, not the decoding, are the cost, and values decoded from the
 * entry are views of its bytes, where the front end's would be second copies, held until the
 * state store commits them.
 */
const decodedCommandBytesMax = 1024;

/** One caller of write(), waiting for its command's outcome. */
interface Waiter {
  readonly needsResult: boolean;
  readonly callback: (result: WriteResult) => void;
}

/** A proposed entry whose callers are not all answered: one waiter per command, by position. */
interface PendingEntry {
  readonly term: number;
  /** null once answered. */
  readonly waiters: (Waiter | null)[];
  readonly cancelTimer: () => void;
  acked: boolean;
  /** The commands' results, by position, once the entry is applied. */
  applied: Applied[] | null;
}

/** Writes gathered in one turn of the event loop, to be proposed as one entry. */
interface FormingEntry {
  readonly ack: Ack;
  readonly commands: Uint8Array[];
  readonly waiters: Waiter[];
  bytes: number;
  /** Every command decoded, as its writers gave it; null once one came as bytes alone. */
  decoded: Command[] | null;
}

/**
 * A snapshot the engine knows of: a received one's bytes in memory (`data`) until they are on
 * disk; null for one taken here (written as it was built) or staged in a file.
 */
interface HeldSnapshot {
  readonly meta: SnapshotMeta;
  readonly bytes: number;
  data: Uint8Array | null;
}

interface PendingRead {
  readonly callback: (result: ReadResult) => void;
  readonly cancelTimer: () => void;
}

/** The default of EngineOptions.snapshotEveryBytes. */
const snapshotEveryBytesDefault = 64 * 1024 * 1024;
/**
 * A snapshot due by its count of entries waits until the log since the last one holds at least
 * this fraction of that snapshot's bytes: each snapshot writes the whole state, and a state of
 * 267 MB written every 100,000 writes of 100 bytes (15 MB of log) cost a node a second of its
 * event loop every few seconds under load. So snapshots write at most four times the log's bytes.
 */
const snapshotLogShareMin = 1 / 4;

/** How often a write that failed for want of space is tried again. */
const storageRetryMs = 1000;

/** ENOSPC or EDQUOT: the environment may recover (space freed), unlike a failing disk. */
function isOutOfSpace(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * The ready loop: feeds ticks, messages and requests into the core, then persists, sends and
 * applies what it returns, in the order DESIGN.md §3 gives. The same code runs over real disk,
 * network and timers and over the simulator's.
 */
export class Engine {
  readonly id: NodeId;
  readonly raft: Raft;
  readonly kv: KvStateMachine;
  private readonly options: EngineOptions;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly runtime: Runtime;
  private readonly observer: EngineObserver;

  private persisting = false;
  /** The write in flight installs a received snapshot. */
  private writingSnapshot = false;
  /** The write in flight failed for want of space and is being retried. */
  private stalled = false;
  /** A snapshot is being built in pieces. */
  private snapshotting = false;
  /** Committed entries wait: the state store is too far behind (see holdApplyWhileStoreBehind). */
  private applyHeld = false;
  private readyScheduled = false;
  private halted = false;
  private cancelTick: (() => void) | null = null;
  /**
   * The newest snapshot (taken here, received, or recovered): its bytes stay in memory only until
   * they are on disk; from then on a snapshot sent to a follower is read from the file.
   */
  private latestSnapshot: HeldSnapshot | null;
  /** The recovered snapshot the state machine is behind, restored from its file by start(). */
  private restoreAtStart: SnapshotMeta | null = null;
  /** The log up to here may go from disk: a snapshot this node took covers it, and it is durable. */
  private compactionDue: number | null = null;
  /** Payload bytes applied since the last snapshot was started. */
  private appliedBytes = 0;
  private readonly pendingWrites = new Map<number, PendingEntry>();
  /** The writes of this turn not yet proposed (proposed at the end of the turn, or when full). */
  private forming: FormingEntry | null = null;
  private readonly pendingReads = new Map<number, PendingRead>();
  private nextReadId = 1;
  private seenRole: string;

  constructor(
    options: EngineOptions,
    recovered: Recovered,
    kv: KvStateMachine,
    storage: Storage,
    transport: Transport,
    runtime: Runtime,
    observer: EngineObserver = {},
  ) {
    this.id = options.raft.id;
    this.options = options;
    this.kv = kv;
    this.storage = storage;
    this.transport = transport;
    this.runtime = runtime;
    this.observer = observer;
    this.latestSnapshot = recovered.snapshot === null ? null : { meta: recovered.snapshot.meta, bytes: recovered.snapshot.bytes, data: null };
    const logEnd = recovered.entries[recovered.entries.length - 1]?.index ?? recovered.cold?.through ?? recovered.snapshot?.meta.index ?? 0;
    // Entries left on disk at recovery must be ones the state machine applied (see keepEntriesFrom).
    assert((recovered.cold?.through ?? 0) <= kv.appliedIndex, `recovery left entries through ${recovered.cold?.through} on disk, but the state machine applied only ${kv.appliedIndex}`);
    // A state ahead of the log (a damaged log lost entries already applied) is rebuilt: the log is
    // the record, so start again from the snapshot (or empty) and replay; peers resend the rest.
    const ahead = kv.appliedIndex > logEnd;
    if (ahead) observer.stateRebuilt?.(kv.appliedIndex, logEnd);
    const snapshot = recovered.snapshot;
    if (snapshot !== null && (ahead || kv.appliedIndex < snapshot.meta.index)) {
      // A store that restores from a file does it when the node starts, without loading the
      // snapshot into memory (see start); the core counts it applied already.
      if (kv.canRestoreFromFile) this.restoreAtStart = snapshot.meta;
      else kv.restore(snapshot.load());
    } else if (ahead) {
      kv.reset();
    }
    this.raft = new Raft(options.raft, {
      hardState: recovered.hardState,
      snapshot: snapshot?.meta ?? null,
      entries: recovered.entries,
      cold: recovered.cold ?? null,
      applied: this.restoreAtStart?.index ?? kv.appliedIndex,
      bootstrap: options.bootstrap,
    });
    this.seenRole = this.roleKey();
  }

  /** Starts ticking (once a snapshot the state machine is behind is restored). */
  start(): void {
    const meta = this.restoreAtStart;
    if (meta !== null) {
      this.restoreAtStart = null;
      this.restoreFromDisk(meta, () => this.start());
      return;
    }
    const tick = (): void => {
      if (this.halted) return;
      this.raft.tick();
      this.afterInput();
      this.cancelTick = this.runtime.setTimeout(tick, this.options.tickMs);
    };
    this.cancelTick = this.runtime.setTimeout(tick, this.options.tickMs);
    this.afterInput();
  }

  /** Stops at once, as a crash does: no callback fires again, nothing more is written. */
  halt(): void {
    this.halted = true;
    this.cancelTick?.();
    for (const pending of this.pendingWrites.values()) pending.cancelTimer();
    for (const pending of this.pendingReads.values()) pending.cancelTimer();
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.forming = null;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  /** A message from a peer. */
  receive(message: Message): void {
    if (this.halted) return;
    const waiting = this.raft.snapshotToInstallData;
    this.raft.step(message);
    // A snapshot staged in a file that the core did not take (an old term, or its log already
    // holds it), or one a newer snapshot replaced before its install, is removed now; one taken
    // is consumed by its install.
    const taking = this.raft.snapshotToInstallData;
    if (message.type === 'snapshot' && message.data !== null && !(message.data instanceof Uint8Array) && taking !== message.data) this.storage.discardStaged(message.data);
    if (waiting !== null && !(waiting instanceof Uint8Array) && taking !== waiting) this.storage.discardStaged(waiting);
    this.afterInput();
  }

  /**
   * Proposes an encoded command. `needsResult` keeps the reply until the entry is applied (for
   * replies that carry an outcome); otherwise an `ack` below a majority is answered once durable.
   * `decoded`, when given, is what `data` decodes to: if every command of the entry comes with
   * it (and none is over decodedCommandBytesMax), this node applies the entry from them without
   * decoding its bytes again.
   *
   * Writes that arrive in the same turn of the event loop with the same ack level go into one
   * entry (in arrival order, up to batchCommandsMax commands and batchBytesMax bytes), proposed
   * at the end of the turn: the log, the peers and the state machine pay once per entry. They
   * then share an index and term, and commit or are lost together.
   */
  write(data: Uint8Array, ack: Ack, needsResult: boolean, callback: (result: WriteResult) => void, decoded: Command | null = null): void {
    if (this.halted) return;
    let forming = this.forming;
    if (forming !== null && (forming.ack !== ack || forming.commands.length >= batchCommandsMax || forming.bytes + batchCommandHeaderBytes + data.length > batchBytesMax)) {
      this.proposeForming();
      forming = null;
    }
    if (forming === null) {
      forming = { ack, commands: [], waiters: [], bytes: batchHeaderBytes, decoded: [] };
      this.forming = forming;
    }
    forming.commands.push(data);
    if (decoded === null || data.length > decodedCommandBytesMax) forming.decoded = null;
    else forming.decoded?.push(decoded);
    forming.waiters.push({ needsResult, callback });
    forming.bytes += batchCommandHeaderBytes + data.length;
    this.afterInput();
  }

  /** Proposes the writes gathered so far as one entry (one command alone, as itself). */
  private proposeForming(): void {
    const forming = this.forming;
    if (forming === null || this.halted) return;
    this.forming = null;
    const data = forming.commands.length === 1 ? (forming.commands[0] as Uint8Array) : encodeCommandBatch(forming.commands);
    this.propose(() => {
      const proposed = this.raft.propose(data, forming.ack);
      if (forming.decoded !== null) this.kv.proposedHere(data, forming.decoded);
      return proposed;
    }, forming.waiters);
  }

  /** Proposes a one-node membership change; answered once a majority has it. */
  changeMembership(change: MembershipChange, callback: (result: WriteResult) => void, data?: Uint8Array): void {
    this.proposeForming();
    this.propose(() => this.raft.changeMembership(change, data), [{ needsResult: false, callback }]);
  }

  /** Asks the core to hand leadership to `target`; throws a TandemError when it cannot. */
  transferLeadership(target: NodeId): void {
    this.proposeForming();
    this.raft.transferLeadership(target);
    this.afterInput();
  }

  /** Serves a read at `consistency`: the callback runs at the moment the state may be read. */
  read(consistency: Consistency, callback: (result: ReadResult) => void): void {
    if (this.halted) return;
    const requestId = this.nextReadId++;
    const cancelTimer = this.runtime.setTimeout(() => {
      if (!this.pendingReads.delete(requestId)) return;
      callback({ ok: false, error: new TandemError(ErrorCode.timeout, `read not served within ${this.options.requestTimeoutMs} ms`, { leader: this.raft.leader }) });
    }, this.options.requestTimeoutMs);
    this.pendingReads.set(requestId, { callback, cancelTimer });
    this.raft.read(requestId, consistency);
    this.afterInput();
  }

  private propose(proposal: () => { index: number; term: number }, waiters: Waiter[]): void {
    if (this.halted) return;
    let proposed: { index: number; term: number };
    try {
      proposed = proposal();
    } catch (error) {
      if (!(error instanceof TandemError)) throw error;
      for (const waiter of waiters) waiter.callback({ ok: false, error });
      return;
    }
    const { index, term } = proposed;
    const cancelTimer = this.runtime.setTimeout(() => {
      const pending = this.pendingWrites.get(index);
      if (pending === undefined) return;
      const message = `write at index ${index} did not reach its ack level within ${this.options.requestTimeoutMs} ms; it may still commit`;
      this.failEntry(index, pending, new TandemError(ErrorCode.timeout, message, { index, term }));
    }, this.options.requestTimeoutMs);
    this.pendingWrites.set(index, { term, waiters, cancelTimer, acked: false, applied: null });
    this.afterInput();
  }

  private afterInput(): void {
    this.noticeRoleChange();
    if (this.readyScheduled || this.halted) return;
    // While a write is in flight, only work that needs nothing new on disk is taken: a leader's
    // sends, commits, answers. Not while a received snapshot is being written: it must be
    // restored before anything else is applied.
    // Nor while a write waits for space: then the node falls silent (a leader loses its role).
    // Writes gathered this turn are proposed by the pass, whatever the disk is doing.
    if (this.forming === null && this.persisting && (this.writingSnapshot || this.stalled || !this.raft.hasReadyDuringWrite())) return;
    this.readyScheduled = true;
    this.runtime.defer(() => {
      if (this.halted) return;
      // The turn's writes become an entry in the same pass that sends it and starts its write,
      // not a turn of the event loop earlier (each turn under load is a poll of every socket).
      // Still marked scheduled while proposing, so the proposal does not schedule another pass.
      this.proposeForming();
      this.readyScheduled = false;
      if (!this.persisting) {
        this.takeReady();
        return;
      }
      if (this.writingSnapshot || this.stalled) return;
      const ready = this.raft.readyDuringWrite();
      if (ready === null) return;
      for (const message of ready.messagesNow) this.sendMessage(message);
      this.startLoads(ready.loads);
      this.answer(ready);
      this.afterInput();
    });
  }

  /**
   * Takes the core's next Ready: sends what may go at once, starts its write, and applies and
   * answers what was already durable while the write is under way (the disk and the CPU work
   * side by side). What must follow the write happens in afterWrite.
   */
  private takeReady(): void {
    if (this.persisting || this.halted || !(this.raft.hasReady() || this.compactionDue !== null)) return;
    const ready = this.raft.ready();
    // A received snapshot is the latest one from now on, even before it is on disk.
    if (ready.snapshot !== null) {
      const { meta, data } = ready.snapshot;
      // A staged snapshot is read from its snapshot file once installed (nothing is sent before).
      this.latestSnapshot = { meta, bytes: snapshotDataBytes(data), data: data instanceof Uint8Array ? data : null };
    }
    for (const message of ready.messagesNow) this.sendMessage(message);
    this.startLoads(ready.loads);
    const work: PersistWork = {
      hardState: ready.hardState,
      installSnapshot: ready.snapshot,
      compactTo: this.compactionDue,
      truncateFrom: ready.truncateFrom,
      entries: ready.entries,
      rollback: ready.truncated,
      sync: ready.mustSync,
    };
    this.compactionDue = null;
    if (ready.truncated.length > 0) this.observer.truncated?.(ready.truncated);
    const writes = work.sync || work.rollback.length > 0 || work.compactTo !== null;
    if (writes) {
      this.persisting = true;
      this.writingSnapshot = ready.snapshot !== null;
      this.writeBatch(work, ready, false);
    }
    if (ready.snapshot === null) this.answer(ready);
    if (!writes) this.afterWrite(ready);
  }

  /**
   * Reads from disk the entries followers need that the core no longer holds, and hands them
   * back. A read that fails while the core still waits for it means the log on disk lacks or has
   * damaged a committed entry: the node stops, as recovery would, naming the file and offset.
   */
  private startLoads(loads: readonly EntryLoad[]): void {
    for (const load of loads) {
      this.storage.readEntries(load.lo, load.hi, load.entriesMax, load.bytesMax, (error, entries) => {
        if (this.halted) return;
        if (error !== null && this.raft.loadWanted(load)) {
          const code = error instanceof TandemError ? error.code : ErrorCode.corrupt;
          this.fail(new TandemError(code, `reading log entries from ${load.lo} for ${load.peer ?? 'the state machine'} failed: ${error.message}`, { index: load.lo }, error));
          return;
        }
        if (entries.length > 0) {
          let bytes = 0;
          for (const entry of entries) bytes += entry.data.length;
          this.observer.entriesLoaded?.(entries.length, bytes, load.peer === null ? 'apply' : 'follower');
        }
        this.raft.entriesLoaded(load, entries);
        this.afterInput();
      });
    }
  }

  /**
   * Writes one batch. A full disk is not fatal: the batch is written again every second, and
   * until it lands nothing new is persisted or acknowledged and nothing that must follow the
   * write is sent (so a leader falls silent and loses its role); any other storage error stops
   * the node.
   */
  private writeBatch(work: PersistWork, ready: Ready, stalled: boolean): void {
    this.storage.persist(work, (error) => {
      if (this.halted) return;
      if (error !== null && isOutOfSpace(error)) {
        if (!stalled) this.observer.storageStalled?.(error);
        this.stalled = true;
        this.runtime.setTimeout(() => {
          if (!this.halted) this.writeBatch(work, ready, true);
        }, storageRetryMs);
        return;
      }
      this.persisting = false;
      this.writingSnapshot = false;
      this.stalled = false;
      if (error !== null) {
        this.fail(error);
        return;
      }
      if (stalled) this.observer.storageRecovered?.();
      this.releaseWritten(work.installSnapshot);
      this.observer.persisted?.(work);
      this.afterWrite(ready);
    });
  }

  /** The ready's write is on disk (or it had none): what had to wait for it. */
  private afterWrite(ready: Ready): void {
    for (const message of ready.messages) this.sendMessage(message);
    this.raft.persisted(ready);
    const snapshot = ready.snapshot;
    if (snapshot === null) {
      this.takeReady();
      this.afterInput();
      return;
    }
    this.restoreState(snapshot, () => {
      this.observer.snapshotInstalled?.(snapshot.meta, () => this.kv.digest(), !(snapshot.data instanceof Uint8Array));
      this.raft.applied(snapshot.meta.index);
      this.answer(ready);
      this.takeReady();
      this.afterInput();
    });
  }

  /**
   * Replaces the state machine's state with an installed snapshot's, then calls `then`. Bytes in
   * memory are restored at once. A snapshot staged in a file is restored from the snapshot file
   * just written, by the store itself off the event loop where it can (LMDB); meanwhile nothing
   * is persisted or applied, as while the snapshot was being written.
   */
  private restoreState(snapshot: Snapshot, then: () => void): void {
    if (snapshot.data instanceof Uint8Array) {
      this.kv.restore(snapshot.data);
      then();
      return;
    }
    this.restoreFromDisk(snapshot.meta, then);
  }

  /** Restores the snapshot file at `meta.index` into the state machine (see restoreState), then calls `then`. */
  private restoreFromDisk(meta: SnapshotMeta, then: () => void): void {
    this.persisting = true;
    this.writingSnapshot = true;
    const resume = (error: Error | null): void => {
      if (this.halted) return;
      this.persisting = false;
      this.writingSnapshot = false;
      if (error !== null) this.fail(error);
      else then();
    };
    this.storage.openSnapshot(meta.index, (error, reader) => {
      if (error !== null || reader === null || reader.meta.index !== meta.index) {
        reader?.close();
        resume(error ?? new Error(`the snapshot at index ${meta.index} is not on disk to restore from`));
        return;
      }
      if (!this.kv.canRestoreFromFile || reader.file === null) {
        readWhole(reader, (readError, data) => {
          if (readError === null && data !== null) this.kv.restore(data);
          resume(readError);
        });
        return;
      }
      reader.close();
      this.kv.restoreFromFile({ ...reader.file, bytes: reader.bytes }, resume);
    });
  }

  /** Applies a ready's committed entries and answers its reads and writes. */
  private answer(ready: Ready): void {
    this.applyCommitted(ready.committed);
    this.holdApplyWhileStoreBehind();
    for (const read of ready.reads) this.finishRead(read.requestId, { ok: true, appliedIndex: this.kv.appliedIndex });
    for (const failed of ready.failedReads) {
      const message = failed.code === 'NOT_LEADER' ? `node ${this.id} cannot confirm a leader for this read` : `node ${this.id} is not caught up within the bound`;
      const code = failed.code === 'NOT_LEADER' ? ErrorCode.notLeader : ErrorCode.staleRead;
      this.finishRead(failed.requestId, { ok: false, error: new TandemError(code, message, { leader: failed.leaderHint }) });
    }
    for (const acked of ready.acked) {
      const pending = this.pendingWrites.get(acked.index);
      if (pending === undefined || pending.term !== acked.term) continue;
      pending.acked = true;
      this.maybeFinishWrite(acked.index, pending);
    }
    for (const abandoned of ready.abandoned) {
      const pending = this.pendingWrites.get(abandoned.index);
      if (pending === undefined || pending.term !== abandoned.term) continue;
      const message = `node ${this.id} lost leadership before the write at index ${abandoned.index} reached its ack level; it may still commit`;
      this.failEntry(abandoned.index, pending, new TandemError(ErrorCode.leaderChanged, message, { index: abandoned.index, term: abandoned.term, leader: this.raft.leader }));
    }
    this.raft.applied(this.kv.appliedIndex);
    this.maybeSnapshot();
  }

  /**
   * While the state store's uncommitted bytes are over its bound, committed entries wait in the
   * log (which keeps only logCacheBytes of them in memory, the rest on disk) instead of in the
   * store's queue: on a follower nothing else bounded that queue (a leader also holds new writes).
   */
  private holdApplyWhileStoreBehind(): void {
    const backlog = this.kv.storeBacklog;
    if (backlog === null || this.applyHeld || !backlog.holding()) return;
    this.applyHeld = true;
    this.raft.holdApply(true);
    backlog.afterDrain(() => {
      if (this.halted) return;
      this.applyHeld = false;
      this.raft.holdApply(false);
      this.afterInput();
    });
  }

  private applyCommitted(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0] as Entry;
    // Entries a snapshot install already covers are skipped.
    const fresh = first.index <= this.kv.appliedIndex ? entries.filter((e) => e.index > this.kv.appliedIndex) : entries;
    const every = this.options.digestEveryEntries ?? 0;
    if (every === 0) {
      this.applyChunk(fresh);
      return;
    }
    // Cut the batch at checkpoint indexes, so the digest is taken exactly there.
    let from = 0;
    for (let k = 0; k < fresh.length; k++) {
      const index = (fresh[k] as Entry).index;
      if (index % every !== 0) continue;
      this.applyChunk(fresh.slice(from, k + 1));
      const observer = this.observer;
      if (observer.checkpoint !== undefined) this.kv.digestAtApplied((digest) => observer.checkpoint?.(index, digest));
      from = k + 1;
    }
    if (from < fresh.length) this.applyChunk(from === 0 ? fresh : fresh.slice(from));
  }

  private applyChunk(fresh: readonly Entry[]): void {
    if (fresh.length === 0) return;
    const results = this.kv.applyBatch(fresh);
    for (const entry of fresh) this.appliedBytes += entry.data.length;
    // Results come in entry order, one per command (one for an entry without commands).
    let r = 0;
    for (const entry of fresh) {
      const from = r;
      while (r < results.length && (results[r] as Applied).index === entry.index) r++;
      if (this.observer.applied !== undefined) {
        for (let k = from; k < r; k++) this.observer.applied(entry, results[k] as Applied, k === results.length - 1 ? () => this.kv.digest() : null);
      }
      const pending = this.pendingWrites.get(entry.index);
      if (pending === undefined || pending.term !== entry.term) continue;
      pending.applied = results.slice(from, r);
      this.maybeFinishWrite(entry.index, pending);
    }
  }

  /** Answers the entry's callers whose condition is met: acked, and applied if they need the result. */
  private maybeFinishWrite(index: number, pending: PendingEntry): void {
    if (!pending.acked) return;
    let waiting = 0;
    for (let position = 0; position < pending.waiters.length; position++) {
      const waiter = pending.waiters[position];
      if (waiter === null || waiter === undefined) continue;
      if (waiter.needsResult && pending.applied === null) {
        waiting++;
        continue;
      }
      pending.waiters[position] = null;
      waiter.callback({ ok: true, index, term: pending.term, reply: pending.applied?.[position]?.reply ?? null });
    }
    if (waiting > 0) return;
    this.pendingWrites.delete(index);
    pending.cancelTimer();
  }

  /** Answers every caller of the entry still waiting with `error`. */
  private failEntry(index: number, pending: PendingEntry, error: TandemError): void {
    this.pendingWrites.delete(index);
    pending.cancelTimer();
    for (const waiter of pending.waiters) waiter?.callback({ ok: false, error });
  }

  private finishRead(requestId: number, result: ReadResult): void {
    const pending = this.pendingReads.get(requestId);
    if (pending === undefined) return;
    this.pendingReads.delete(requestId);
    pending.cancelTimer();
    pending.callback(result);
  }

  private maybeSnapshot(): void {
    if (this.snapshotting) return;
    const applied = this.kv.appliedIndex;
    // A snapshot received but not yet installed is newer than anything taken here.
    const last = Math.max(this.latestSnapshot?.meta.index ?? 0, this.raft.snapshotIndex);
    // A leader waits half as long again before it takes one: even in pieces, it costs CPU. Each
    // node's intervals are stretched by its own stagger.
    const stretch = (1 + (this.options.snapshotStagger ?? 0)) * (this.raft.role === 'leader' ? 1.5 : 1);
    const every = Math.floor(this.options.snapshotEveryEntries * stretch);
    // By bytes too, but not before the log since the last snapshot is as large as that snapshot:
    // each snapshot costs the whole state, so it is worth taking once the log has grown as much.
    const latestBytes = this.latestSnapshot?.bytes ?? 0;
    const bytesDue = this.appliedBytes >= Math.max(this.snapshotEveryBytes, latestBytes) * stretch && applied > last;
    const entriesDue = applied - last >= every && this.appliedBytes >= latestBytes * snapshotLogShareMin;
    if (!entriesDue && !bytesDue) return;
    this.appliedBytes = 0;
    this.snapshotting = true;
    const started = this.runtime.now();
    if (!this.kv.canSnapshotInPieces) {
      this.writeSnapshot(applied, [this.kv.snapshot()][Symbol.iterator](), started, () => undefined);
      return;
    }
    this.kv.openReader().then(
      (reader) => {
        let source: { index: number; chunks: Iterator<Uint8Array> };
        try {
          source = this.kv.snapshotChunks(reader);
        } catch (error) {
          reader.close();
          this.snapshotting = false;
          this.fail(error as Error);
          return;
        }
        this.writeSnapshot(source.index, source.chunks, started, () => reader.close());
      },
      (error: unknown) => {
        this.snapshotting = false;
        this.fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /**
   * Writes the snapshot of the state at `index` to disk as it is built: a chunk is built, written,
   * and dropped before the next is built (one chunk per turn of the event loop at least, so a
   * large state does not hold the node and its heartbeats for seconds, nor sit in memory). Once it
   * is durable the log is compacted to it. A snapshot installed meanwhile that covers it makes it
   * moot: it is given up. `release` lets go of what the chunks are read from.
   */
  private writeSnapshot(index: number, chunks: Iterator<Uint8Array>, started: number, release: () => void): void {
    const covered = (): boolean => index <= Math.max(this.latestSnapshot?.meta.index ?? 0, this.raft.snapshotIndex);
    const end = (error: Error | null): void => {
      release();
      this.snapshotting = false;
      if (error !== null) this.fail(error);
      else this.afterInput();
    };
    if (covered()) {
      end(null);
      return;
    }
    const meta = this.raft.snapshotMetaAt(index);
    const sink = this.storage.createSnapshot(meta);
    let bytes = 0;
    const step = (): void => {
      if (this.halted || covered()) {
        sink.abort();
        if (this.halted) release();
        else end(null);
        return;
      }
      let next: IteratorResult<Uint8Array>;
      try {
        next = chunks.next();
      } catch (error) {
        sink.abort();
        end(error as Error);
        return;
      }
      if (next.done === true) {
        sink.finish((error) => {
          if (this.halted) return release();
          if (error === null && !covered()) this.snapshotTaken(meta, bytes, started);
          end(error);
        });
        return;
      }
      bytes += next.value.length;
      sink.write(next.value, (error) => {
        if (this.halted) return release();
        if (error !== null) {
          sink.abort();
          end(error);
          return;
        }
        this.runtime.defer(step);
      });
    };
    step();
  }

  /** A snapshot this node took is durable: the log is compacted to it, on disk by the next write. */
  private snapshotTaken(meta: SnapshotMeta, bytes: number, started: number): void {
    this.raft.compact(meta.index, this.options.snapshotKeepEntries, this.snapshotEveryBytes / 4, meta);
    this.observer.snapshotTaken?.(meta, bytes, this.runtime.now() - started);
    this.latestSnapshot = { meta, bytes, data: null };
    this.compactionDue = Math.max(this.compactionDue ?? 0, this.raft.log.snapshotIndex);
  }

  /** A snapshot is on disk: the newest one's bytes are read from there from now on. */
  private releaseWritten(written: { readonly meta: SnapshotMeta } | null): void {
    if (written !== null && this.latestSnapshot?.meta.index === written.meta.index) this.latestSnapshot.data = null;
  }

  private get snapshotEveryBytes(): number {
    return this.options.snapshotEveryBytes ?? snapshotEveryBytesDefault;
  }

  private sendMessage(message: Message): void {
    if (message.type !== 'snapshot') {
      this.transport.send(message);
      return;
    }
    // The core chose the snapshot when it decided to send one; a newer one taken since then is
    // just as good (it too holds only committed entries) and is the only one still at hand.
    const held = this.latestSnapshot;
    assert(held !== null && held.meta.index >= message.meta.index, `no snapshot at or after ${message.meta.index} to send`);
    if (held.data !== null) {
      this.transport.sendSnapshot({ ...message, meta: held.meta, data: null }, memorySnapshotReader(held.meta, held.data));
      return;
    }
    this.storage.openSnapshot(held.meta.index, (error, reader) => {
      if (this.halted || error !== null || reader === null) {
        reader?.close();
        if (!this.halted) this.fail(error ?? new Error(`no snapshot at or after index ${held.meta.index} on disk to send`));
        return;
      }
      this.transport.sendSnapshot({ ...message, meta: reader.meta, data: null }, reader);
    });
  }

  private fail(error: Error): void {
    this.observer.fatal?.(error);
    const pendingWrites = [...this.pendingWrites.values()].flatMap((pending) => pending.waiters);
    if (this.forming !== null) pendingWrites.push(...this.forming.waiters);
    const pendingReads = [...this.pendingReads.values()];
    this.halt();
    const failure = new TandemError(ErrorCode.timeout, `node ${this.id} stopped: ${error.message}`, {}, error);
    for (const pending of pendingWrites) pending?.callback({ ok: false, error: failure });
    for (const pending of pendingReads) pending.callback({ ok: false, error: failure });
  }

  private roleKey(): string {
    return `${this.raft.role}/${this.raft.term}/${this.raft.leader ?? ''}`;
  }

  private noticeRoleChange(): void {
    const key = this.roleKey();
    if (key === this.seenRole) return;
    this.seenRole = key;
    this.observer.roleChanged?.(this.raft.role, this.raft.term, this.raft.leader);
  }
}
