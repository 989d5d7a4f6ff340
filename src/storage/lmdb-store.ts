import type { Database, RootDatabase } from 'lmdb';
import { Worker } from 'node:worker_threads';
import { committedState, StateDigest } from '../kv/digest.js';
import type { KvStore, SnapshotFile, Space, StoreBacklog, StoreDigests, StoreReader } from '../kv/store.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { spaceCodes } from './change-group.js';
import { GroupWrites, type GroupMark, type Replaced } from './group-writes.js';
import { openLmdb, type GroupChanges, type GroupState, type WriterData, type WriterReply, type WriterRequest } from './lmdb-protocol.js';
import { raiseHurry } from './pacer.js';

/** Keys travel as latin1 strings (one char per byte); LMDB stores the bytes themselves. */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

/**
 * Batches wait at most this long before LMDB commits them (the log on disk is the durable record).
 * Each commit rewrites every B-tree page its keys touch: with random keys at 100 ms, a node wrote
 * 65 MB/s to the disk for 0.5 MB/s of data, and three nodes' commits slowed each other's log
 * fsyncs; at 1 s, a tenth of that.
 */
const groupDelayMs = 1000;
/**
 * How long the writer may rest in all while it commits groups nothing waits for (see Pacer): half
 * the group delay, so that a paced commit ends before the next group is due.
 */
const commitRestMsDefault = groupDelayMs / 2;
/** ... or until it holds this many keys, or this many bytes, wait (a bound on a group's memory and commit time). */
const groupKeysMax = 50_000;
const groupBytesMax = 8 * 1024 * 1024;
/** The default bound on the bytes written and not yet committed, past which new writes wait (LmdbStore's `backlogBytesMax`). */
export const backlogBytesMaxDefault = 64 * 1024 * 1024;

/**
 * Batches committed together: their writes (for reads, and what the writer is given), and who
 * waits for the digest at which of its applied indexes.
 */
interface Group {
  readonly number: number;
  readonly writes: GroupWrites;
  readonly digestWaiters: { readonly index: number; readonly fn: (digest: string) => void }[];
}

/** A group closed for the writer: its changes, its writes (read until committed), and who waits for its digest (its group's list). */
interface Closed {
  readonly changes: GroupChanges;
  readonly writes: GroupWrites;
  readonly waiters: Group['digestWaiters'];
}

/** A batch's undo list: space, key and what the change replaced (see GroupWrites.set), three slots a change. */
type UndoList = (Space | string | Replaced)[];

/** A caller of flushed() waiting for a group to be committed. */
interface FlushWaiter {
  readonly group: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The state machine's store on LMDB: one named database per space. Batches are committed a group
 * at a time, each group one LMDB transaction, so a batch's data and the applied index land
 * together or not at all.
 *
 * Groups are committed by a writer thread (lmdb-writer.ts), not on the event loop: a synchronous
 * commit waits for an fsync, and even queueing a second's writes as lmdb-js asynchronous puts
 * held the leader's event loop 15-64 ms once a second. The event loop encodes each change for the
 * writer as it is applied, in memory both threads share, and keeps where each key's newest one is
 * (GroupWrites): a key written several times in a group is committed once, and a hand-over copies
 * nothing. Until LMDB has committed a group, its writes are read from there, before LMDB, so the
 * state machine reads its own writes at once. That is safe because the log is the durable record: after a crash the node
 * replays the log from the applied index found here, written in the same transaction as the data.
 *
 * Invariant: the uncommitted groups are the one being filled, those closed at a checkpoint since
 * the last hand-over (the writer can tell a digest only at a group's end), and those the writer
 * has. Groups are handed over when the filling one is due (a second after its first change, or
 * full) and the writer is idle, all that are closed at once, in one LMDB transaction: a slow disk
 * makes commits larger rather than queueing them, and checkpoints, however frequent, add neither
 * commits nor hand-overs. Reads look through the groups newest first.
 *
 * The writer thread also keeps the state digest (see lmdb-writer.ts and KvStore.digests): the
 * committed state record holds the digest of the committed state, and the digest now is that one
 * with each pending key's committed value taken out and its newest one added.
 */
export class LmdbStore implements KvStore {
  private readonly root: RootDatabase;
  private readonly dbs: Record<Space, Database<Buffer, Buffer>>;
  private readonly writer: Worker;
  /** The group batches are added to. */
  private filling: Group;
  /** The groups the writer thread is committing, and their writes (newest first); null when it is idle. */
  private committing: { readonly closed: readonly Closed[]; readonly layers: readonly GroupWrites[] } | null = null;
  /** Groups closed at a checkpoint since the last hand-over, oldest first; their keys (summed: a key may be in several) and bytes. */
  private sealed: Closed[] = [];
  private sealedKeys = 0;
  private sealedBytes = 0;
  /** The group the last successful batch wrote to, until it is committed. */
  private lastBatchGroup: Group | null = null;
  /**
   * The running batch's undo list — space, key and what the change replaced in the filling group
   * of each change, in order, flat (no array per change) — and the group's counts before it.
   */
  private building: { readonly undo: UndoList; readonly mark: GroupMark } | null = null;
  private failure: Error | null = null;
  private groupTimer: NodeJS.Timeout | null = null;
  /** The filling group's delay has passed (it is handed over as soon as the writer is idle). */
  private groupDue = false;
  private readonly flushWaiters: FlushWaiter[] = [];
  private closing: Promise<void> | null = null;
  private writerRunning = true;
  /** The bytes of the groups the writer has; the most uncommitted bytes seen; writes held back, and how many ever were. */
  private committingBytes = 0;
  private backlogMax = 0;
  /** Raised (1) while something waits for the commit in progress, so that the writer stops resting; see Pacer. */
  private readonly hurryFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly held: ((error: Error | null) => void)[] = [];
  /** The caller of the restore the writer is running (see restoreFromFile). */
  private restoring: ((error: Error | null, state: { readonly index: number; readonly a: number; readonly b: number } | null) => void) | null = null;
  private heldCount = 0;
  private restedMs = 0;

  /**
   * Nothing else stops a writer thread that commits more slowly than the node applies (large new
   * values, a B-tree that grows) from leaving ever more uncommitted groups in memory: gigabytes
   * within a minute under a sustained load of new 4 KiB keys. New writes wait instead (see
   * server/propose.ts), which slows the clients; what is already proposed is still applied.
   */
  readonly backlog: StoreBacklog = {
    bytes: () => this.backlogBytes(),
    bytesMax: () => this.backlogMax,
    held: () => this.heldCount,
    holding: () => this.failure !== null || this.held.length > 0 || this.backlogBytes() > this.backlogBytesMax,
    admit: (fn) => this.waitForRoom(fn, true),
    afterDrain: (fn) => this.waitForRoom(fn, false),
  };

  /** Calls `fn` once the backlog is within its bound (see StoreBacklog.admit); `isWrite` counts it as a held write. */
  private waitForRoom(fn: (error: Error | null) => void, isWrite: boolean): void {
    if (this.failure !== null) fn(this.failure);
    else if (!this.backlog.holding()) fn(null);
    else {
      this.held.push(fn);
      if (isWrite) this.heldCount++;
      // Held writes wait for a commit: the filling group goes as soon as the writer is idle.
      this.groupDue = true;
      this.hurry();
      this.handOver();
    }
  }

  readonly digests: StoreDigests = {
    now: () => this.digestNow(),
    committed: () => this.committedState(),
    at: (index, fn) => {
      // The group the last batch went into holds its state record, as its last: the filling group,
      // closed here so that the record stays its last, or one handed over at that batch's end.
      const group = this.lastBatchGroup;
      if (group === null) throw new Error('LmdbStore: a digest asked for before any batch');
      group.digestWaiters.push({ index, fn });
      if (group === this.filling) this.seal();
    },
  };

  /**
   * `onFailure` hears of a commit LMDB could not make (a full disk): the node must stop. New writes
   * wait while more than `backlogBytesMax` bytes of keys and values are uncommitted (see backlog).
   */
  constructor(
    path: string,
    private readonly onFailure: (error: Error) => void = () => {},
    private readonly backlogBytesMax = backlogBytesMaxDefault,
    /** Bytes of pairs a restore commits per LMDB transaction (its dirty pages are held until the commit). */
    private readonly restoreTransactionBytes = 64 * 1024 * 1024,
    /** How long the writer may rest in all while it commits groups nothing waits for (see Pacer). */
    private readonly commitRestMs = commitRestMsDefault,
  ) {
    ({ root: this.root, dbs: this.dbs } = openLmdb(path));
    this.filling = newGroup(1);
    this.writer = new Worker(new URL('./lmdb-writer.js', import.meta.url), { workerData: { path, hurry: this.hurryFlag.buffer as SharedArrayBuffer } satisfies WriterData });
    this.writer.on('message', (reply: WriterReply) => this.onReply(reply));
    this.writer.on('error', (error) => this.fail(error));
    this.writer.on('exit', (code) => {
      this.writerRunning = false;
      if (this.closing === null) this.fail(new Error(`the LMDB writer thread exited (code ${code})`));
    });
    // The thread keeps the process alive only while it holds a group (see handOver). After the
    // listeners: adding a 'message' listener refs the worker again.
    this.writer.unref();
  }

  /** The newest uncommitted value of a key: a value, null (deleted), or undefined (not pending). */
  private pending(space: Space, key: string): Uint8Array | null | undefined {
    const filled = this.filling.writes.get(space, key);
    if (filled !== undefined) return filled;
    for (let i = this.sealed.length - 1; i >= 0; i--) {
      const value = this.sealed[i]!.writes.get(space, key);
      if (value !== undefined) return value;
    }
    for (const layer of this.committing?.layers ?? []) {
      const value = layer.get(space, key);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Every uncommitted key of a space with its newest value (a view of every uncommitted group, not a copy). */
  private pendingAll(space: Space): PendingView {
    const layers = [this.filling.writes];
    for (let i = this.sealed.length - 1; i >= 0; i--) layers.push(this.sealed[i]!.writes);
    for (const layer of this.committing?.layers ?? []) layers.push(layer);
    return new PendingView(space, layers);
  }

  private committed(space: Space, key: string): Uint8Array | undefined {
    return this.dbs[space].get(keyBytes(key));
  }

  get(space: Space, key: string): Uint8Array | undefined {
    const pending = this.pending(space, key);
    if (pending !== undefined) return pending ?? undefined;
    return this.committed(space, key);
  }

  /** LMDB's own buffer, not a copy: overwritten by the next read. */
  peek(space: Space, key: string): Uint8Array | undefined {
    const pending = this.pending(space, key);
    if (pending !== undefined) return pending ?? undefined;
    return this.dbs[space].getBinaryFast(keyBytes(key));
  }

  put(space: Space, key: string, value: Uint8Array): void {
    this.change(space, key, value);
  }

  delete(space: Space, key: string): boolean {
    const existed = this.get(space, key) !== undefined;
    if (existed) this.change(space, key, null);
    return existed;
  }

  private change(space: Space, key: string, value: Uint8Array | null): void {
    const building = this.building;
    if (building === null) throw new Error('LmdbStore: writes must happen inside batch()');
    building.undo.push(space, key, this.filling.writes.set(space, key, value));
  }

  /** Every pair of a space, committed or pending, in ascending key order. */
  entries(space: Space): Iterable<[string, Uint8Array]> {
    const pending = this.pendingAll(space);
    const out: [string, Uint8Array][] = [];
    for (const { key, value } of this.dbs[space].getRange({})) {
      const text = key.toString('latin1');
      if (!pending.has(text)) out.push([text, value]);
    }
    if (pending.size === 0) return out;
    for (const [key, value] of pending) if (value !== null) out.push([key, value]);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  forEachRaw(space: Space, fn: (key: Uint8Array, value: Uint8Array) => void): void {
    const pending = this.pendingAll(space);
    const checkPending = pending.size > 0;
    for (const { key, value } of this.dbs[space].getRange({})) {
      if (checkPending && pending.has(key.toString('latin1'))) continue;
      fn(key, value);
    }
    for (const [key, value] of pending) if (value !== null) fn(Buffer.from(key, 'latin1'), value);
  }

  keysAfter(space: Space, after: string | null, limit: number): string[] {
    const pending = this.pendingAll(space);
    const keys: string[] = [];
    const start = after === null ? undefined : keyBytes(after);
    // The pending writes can hide at most pending.size committed keys, and `after` itself may come back.
    for (const key of this.dbs[space].getKeys({ start, limit: limit + pending.size + 1 })) {
      const text = key.toString('latin1');
      if (text !== after && !pending.has(text)) keys.push(text);
    }
    for (const [key, value] of pending) if (value !== null && (after === null || key > after)) keys.push(key);
    return keys.sort().slice(0, limit);
  }

  count(space: Space): number {
    let count = this.dbs[space].getCount();
    for (const [key, value] of this.pendingAll(space)) count += (value === null ? 0 : 1) - (this.committed(space, key) === undefined ? 0 : 1);
    return count;
  }

  /** Runs `fn` as one transaction: its writes are visible at once and committed together, in order. */
  batch(fn: () => void): void {
    if (this.failure !== null) throw this.failure;
    const group = this.filling;
    const writes = group.writes;
    const building = { undo: [] as UndoList, mark: writes.mark() };
    this.building = building;
    try {
      fn();
    } catch (error) {
      // Nothing of a failed batch may stay visible or reach LMDB.
      writes.rollBack(building.mark, building.undo);
      throw error;
    } finally {
      this.building = null;
    }
    // Batches are committed together, a group at a time: each LMDB commit rewrites the B-tree's
    // upper pages and the meta page and syncs them, so one commit per applied batch (hundreds a
    // second) cost more disk writes and kernel time than the data itself.
    if (writes.keys === 0) return;
    this.backlogMax = Math.max(this.backlogMax, this.backlogBytes());
    this.lastBatchGroup = group;
    if (this.full(writes) || this.held.length > 0) {
      this.groupDue = true;
      // A full group waits for the commit in progress.
      this.hurry();
    } else if (this.groupTimer === null) {
      this.groupTimer = setTimeout(() => {
        this.groupTimer = null;
        this.groupDue = true;
        this.handOver();
      }, groupDelayMs);
    }
    this.handOver();
  }

  /** Whether `writes` (the filling group's) and the groups sealed since the last hand-over reach a group's bound. */
  private full(writes: GroupWrites): boolean {
    return writes.keys + this.sealedKeys >= groupKeysMax || writes.bytes + this.sealedBytes >= groupBytesMax;
  }

  /**
   * Closes the filling group after the batch that reached a checkpoint: the writer commits each
   * key's newest value, so it can tell the digest only at a group's end. The group waits for the
   * next hand-over, read as it is (nothing copied). The group's delay goes on running.
   */
  private seal(): void {
    const group = this.filling;
    if (group.writes.keys === 0) return;
    this.sealed.push(close(group));
    this.sealedKeys += group.writes.keys;
    this.sealedBytes += group.writes.bytes;
    this.filling = newGroup(group.number + 1);
  }

  /**
   * When the writer is idle and the groups are due (or someone waits for them): gives it every
   * closed group and the filling one, to commit in one transaction.
   */
  private handOver(): void {
    if (this.committing !== null || this.failure !== null) return;
    const filling = this.filling;
    const oldest = this.sealed[0]?.changes.group ?? filling.number;
    const awaited = this.flushWaiters.some((waiter) => waiter.group >= oldest);
    if (!this.groupDue && !awaited) return;
    // Only a commit that is due by its delay alone may be paced: not one that a write, a flush, a
    // full group or a closing store waits for.
    const paced = !awaited && !this.full(filling.writes) && this.held.length === 0 && this.closing === null;
    if (this.groupTimer !== null) clearTimeout(this.groupTimer);
    this.groupTimer = null;
    this.groupDue = false;
    const closed = this.sealed;
    if (filling.writes.keys > 0) {
      closed.push(close(filling));
      this.filling = newGroup(filling.number + 1);
    }
    if (closed.length === 0) return;
    this.committing = { closed, layers: closed.map((c) => c.writes).reverse() };
    this.committingBytes = closed.reduce((sum, c) => sum + c.changes.bytes, 0);
    this.sealed = [];
    this.sealedKeys = 0;
    this.sealedBytes = 0;
    const groups = closed.map((c) => c.changes);
    // Held while the thread has work, so that a process waiting only for this commit does not exit.
    this.writer.ref();
    Atomics.store(this.hurryFlag, 0, paced ? 0 : 1);
    this.writer.postMessage({ kind: 'commit', groups, restMs: paced ? this.commitRestMs : 0 } satisfies WriterRequest);
  }

  /**
   * Replaces the whole state with a snapshot's state bytes in `file`, in the writer thread, a
   * transaction per 64 MiB of pairs (see the writer's restore: until the last commits, the store
   * holds no state record, so a node stopped part way restores again from its snapshot file at
   * start), once every batch so far is committed. Neither thread holds the snapshot: the writer
   * reads it a piece at a time.
   */
  restoreFromFile(file: SnapshotFile, done: (error: Error | null, state: { readonly index: number; readonly a: number; readonly b: number } | null) => void): void {
    this.flushed().then(
      () => {
        if (this.restoring !== null) {
          done(new Error('LmdbStore: a restore asked for while another runs'), null);
          return;
        }
        this.restoring = done;
        this.writer.ref();
        this.writer.postMessage({ kind: 'restore', transactionBytes: this.restoreTransactionBytes, ...file } satisfies WriterRequest);
      },
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), null),
    );
  }

  private onReply(reply: WriterReply): void {
    if (reply.kind === 'closed') return;
    if (reply.kind === 'restored' || reply.kind === 'restoreFailed') {
      this.writer.unref();
      this.root.resetReadTxn();
      const done = this.restoring;
      this.restoring = null;
      if (reply.kind === 'restored') done?.(null, reply);
      else done?.(reply.corrupt ? new TandemError(ErrorCode.corrupt, reply.message) : new Error(`LMDB could not restore the snapshot: ${reply.message}`), null);
      return;
    }
    if (reply.kind === 'failed') {
      this.fail(new Error(`LMDB could not commit: ${reply.message}`));
      return;
    }
    this.writer.unref();
    this.restedMs += reply.restedMs;
    // This thread's LMDB read transaction may predate the commit: renew it before the overlay,
    // the only place these writes were visible from, goes away.
    this.root.resetReadTxn();
    const committed = this.committing?.closed ?? [];
    this.committing = null;
    this.committingBytes = 0;
    if (this.lastBatchGroup !== null && this.lastBatchGroup.number <= reply.group) this.lastBatchGroup = null;
    for (const [k, { waiters }] of committed.entries()) this.tellDigests(waiters, reply.states[k] ?? null);
    for (let i = this.flushWaiters.length - 1; i >= 0; i--) {
      const waiter = this.flushWaiters[i]!;
      if (waiter.group > reply.group) continue;
      this.flushWaiters.splice(i, 1);
      waiter.resolve();
    }
    this.handOver();
    if (this.backlogBytes() <= this.backlogBytesMax) for (const fn of this.held.splice(0)) fn(null);
  }

  /** How long the writer thread has rested between chunks of its commits, in all (see Pacer). */
  get writerRestedMs(): number {
    return this.restedMs;
  }

  /** Tells the writer that something waits for the commit in progress: it stops resting (see Pacer). */
  private hurry(): void {
    raiseHurry(this.hurryFlag);
  }

  private backlogBytes(): number {
    return this.filling.writes.bytes + this.sealedBytes + this.committingBytes;
  }

  /** Answers each waiter of a committed group with the digest of its state record (the group's last). */
  private tellDigests(waiters: Group['digestWaiters'], state: GroupState): void {
    for (const { index, fn } of waiters) {
      if (state === null || state.index !== index) this.fail(new Error(`the LMDB writer committed the state at ${state?.index ?? 'no index'}, not ${index}, where a digest was asked for`));
      else fn(new StateDigest(state.a, state.b).hex());
    }
  }

  /** The committed state record's applied index and digest, as this thread's read transaction sees it. */
  private committedState(): { readonly index: number; readonly digest: StateDigest } {
    return committedState(this.dbs.meta.getBinaryFast(keyBytes('state')));
  }

  /** The digest of the committed state with every pending change applied (a read per pending key). */
  private digestNow(): StateDigest {
    // The state record and the values below come from the same read transaction.
    const { digest } = this.committedState();
    for (const space of ['data', 'session'] as const) {
      for (const [key, value] of this.pendingAll(space)) {
        const committed = this.dbs[space].getBinaryFast(keyBytes(key));
        if (committed !== undefined) digest.mix(space, key, committed, -1);
        if (value !== null) digest.mix(space, key, value, 1);
      }
    }
    return digest;
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const waiter of this.flushWaiters.splice(0)) waiter.reject(error);
    for (const fn of this.held.splice(0)) fn(error);
    this.onFailure(error);
  }

  /** Removes everything (inside a batch). */
  clear(): void {
    for (const space of spaceCodes) for (const [key] of [...this.entries(space)]) this.change(space, key, null);
  }

  /**
   * A reader over the committed state, opened once every batch so far is committed: one LMDB
   * read transaction, so the data, the sessions and the applied index it shows belong together.
   */
  async openReader(): Promise<StoreReader> {
    await this.flushed();
    const transaction = this.root.useReadTransaction();
    const dbs = this.dbs;
    // Once only: the store's close ends a reader still open (a snapshot a halted node was building).
    const end = (): void => {
      if (this.readers.delete(end)) transaction.done();
    };
    this.readers.add(end);
    return {
      get: (space, key) => dbs[space].get(keyBytes(key), { transaction }),
      count: (space) => dbs[space].getCount({ transaction }),
      forEachRawFrom(space, after, limit, fn) {
        let last: Uint8Array | null = null;
        let seen = 0;
        for (const { key, value } of dbs[space].getRange({ transaction, start: after === null ? undefined : Buffer.from(after) })) {
          if (after !== null && seen === 0 && Buffer.compare(key, after) === 0) continue;
          fn(key, value);
          last = key;
          if (++seen >= limit) return last;
        }
        return null;
      },
      close: end,
    };
  }

  /** Resolves once every batch so far is committed and on disk; rejects if LMDB could not commit. */
  flushed(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    // Groups are committed in order: every group before the oldest uncommitted one (committing,
    // else closed, else filling) is committed.
    const committing = this.committing?.closed ?? [];
    const committedThrough = (committing[0]?.changes.group ?? this.sealed[0]?.changes.group ?? this.filling.number) - 1;
    const newest = (this.sealed[this.sealed.length - 1] ?? committing[committing.length - 1])?.changes.group;
    const group = this.filling.writes.keys > 0 ? this.filling.number : (newest ?? committedThrough);
    if (group <= committedThrough) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.flushWaiters.push({ group, resolve, reject });
      this.hurry();
      this.handOver();
    });
  }

  /** Ends the readers still open (see openReader). */
  private readonly readers = new Set<() => void>();

  /** Commits what is pending (if LMDB can), then closes the writer thread and the environment. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const fn of this.held.splice(0)) fn(new Error('the state store is closing'));
      await this.flushed().catch(() => undefined);
      if (this.groupTimer !== null) clearTimeout(this.groupTimer);
      if (this.writerRunning) {
        this.writer.ref();
        const exited = new Promise<void>((resolve) => this.writer.once('exit', () => resolve()));
        const closed = new Promise<void>((resolve) => this.writer.once('message', () => resolve()));
        this.writer.postMessage({ kind: 'close' } satisfies WriterRequest);
        await Promise.race([closed, exited]);
        await this.writer.terminate();
      }
      for (const end of [...this.readers]) end();
      await this.root.close();
    })();
    return this.closing;
  }
}

/**
 * The uncommitted writes of a space across the uncommitted groups (`layers`, newest first), the
 * newest value winning: what a scan merges with LMDB's keys. `size` is an upper bound.
 */
class PendingView {
  constructor(
    private readonly space: Space,
    private readonly layers: readonly GroupWrites[],
  ) {}

  get size(): number {
    let size = 0;
    for (const layer of this.layers) size += layer.size(this.space);
    return size;
  }

  has(key: string): boolean {
    return this.layers.some((layer) => layer.has(this.space, key));
  }

  *[Symbol.iterator](): IterableIterator<[string, Uint8Array | null]> {
    const layers = this.layers;
    for (let i = 0; i < layers.length; i++) {
      for (const entry of layers[i]!.entries(this.space)) {
        let shadowed = false;
        for (let j = 0; j < i && !shadowed; j++) shadowed = layers[j]!.has(this.space, entry[0]);
        if (!shadowed) yield entry;
      }
    }
  }
}

/** A group as the writer takes it (its waiters are the group's own list: later ones join it). */
function close(group: Group): Closed {
  return { changes: { group: group.number, ...group.writes.close() }, writes: group.writes, waiters: group.digestWaiters };
}

function newGroup(number: number): Group {
  return { number, writes: new GroupWrites(), digestWaiters: [] };
}
