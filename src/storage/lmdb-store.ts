import { open, type Database, type RootDatabase } from 'lmdb';
import type { KvStore, Space, StoreReader } from '../kv/store.js';

/** Keys travel as latin1 strings (one char per byte); LMDB stores the bytes themselves. */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

const spaces: readonly Space[] = ['data', 'session', 'meta'];
/**
 * Batches wait at most this long before LMDB commits them (the log on disk is the durable record).
 * Each commit rewrites every B-tree page its keys touch: with random keys at 100 ms, a node wrote
 * 65 MB/s to the disk for 0.5 MB/s of data, and three nodes' commits slowed each other's log
 * fsyncs; at 1 s, a tenth of that.
 */
const groupDelayMs = 1000;
/** ... or until this many changes, or this many value bytes, wait (queueing them holds the event loop briefly). */
const groupChangesMax = 50_000;
const groupBytesMax = 8 * 1024 * 1024;

/** One write of a batch: a value, or null for a delete. */
type Change = readonly [Space, string, Uint8Array | null];

/** A value written by batch `batch` and not yet committed by LMDB (null: deleted). */
interface Pending {
  readonly value: Uint8Array | null;
  readonly batch: number;
}

/**
 * The state machine's store on LMDB: one named database per space. Batches are committed a group
 * at a time, each group one LMDB transaction, so a batch's data and the applied index land
 * together or not at all.
 *
 * A group is committed by LMDB's write thread (asynchronous writes, flushed with overlapping
 * sync), not on the event loop: a synchronous commit waits for an fsync, and that wait, once
 * per applied batch on every node, was the largest single cost in a profile of the write path.
 * Until LMDB has committed a batch, its writes live in an overlay that every read consults
 * first, so the state machine reads its own writes at once. That is safe because the log is the
 * durable record: after a crash the node replays the log from the applied index found here,
 * and that index is written in the same transaction as the data.
 */
export class LmdbStore implements KvStore {
  private readonly root: RootDatabase;
  private readonly dbs: Record<Space, Database<Buffer, Buffer>>;
  /** Writes LMDB has not committed yet: the newest per key, with the batch that wrote it. */
  private readonly overlay: Record<Space, Map<string, Pending>> = { data: new Map(), session: new Map(), meta: new Map() };
  /** The batch being built: its changes in order, and what the overlay held before (for a rollback). */
  private building: { readonly changes: Change[]; readonly undo: Map<string, [Space, string, Pending | undefined]> } | null = null;
  private batchNumber = 0;
  private failure: Error | null = null;
  private lastCommit: Promise<unknown> = Promise.resolve();
  /** Changes of batches not yet handed to LMDB, in order, and the number of the last such batch. */
  private group: Change[] = [];
  private groupLast = 0;
  private groupBytes = 0;
  private groupTimer: NodeJS.Timeout | null = null;

  /** `onFailure` hears of a commit LMDB could not make (a full disk): the node must stop. */
  constructor(
    path: string,
    private readonly onFailure: (error: Error) => void = () => {},
  ) {
    this.root = open({ path, noMemInit: true });
    const db = (name: Space): Database<Buffer, Buffer> => this.root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
    this.dbs = { data: db('data'), session: db('session'), meta: db('meta') };
  }

  private committed(space: Space, key: string): Uint8Array | undefined {
    return this.dbs[space].get(keyBytes(key));
  }

  get(space: Space, key: string): Uint8Array | undefined {
    const pending = this.overlay[space].get(key);
    if (pending !== undefined) return pending.value ?? undefined;
    return this.committed(space, key);
  }

  /** LMDB's own buffer, not a copy: overwritten by the next read. */
  peek(space: Space, key: string): Uint8Array | undefined {
    const pending = this.overlay[space].get(key);
    if (pending !== undefined) return pending.value ?? undefined;
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
    const id = `${space}\u0000${key}`;
    if (!building.undo.has(id)) building.undo.set(id, [space, key, this.overlay[space].get(key)]);
    building.changes.push([space, key, value]);
    this.overlay[space].set(key, { value, batch: this.batchNumber });
  }

  /** Every pair of a space, committed or pending, in ascending key order. */
  entries(space: Space): Iterable<[string, Uint8Array]> {
    const overlay = this.overlay[space];
    const out: [string, Uint8Array][] = [];
    for (const { key, value } of this.dbs[space].getRange({})) {
      const text = key.toString('latin1');
      if (!overlay.has(text)) out.push([text, value]);
    }
    if (overlay.size === 0) return out;
    for (const [key, { value }] of overlay) if (value !== null) out.push([key, value]);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  forEachRaw(space: Space, fn: (key: Uint8Array, value: Uint8Array) => void): void {
    const overlay = this.overlay[space];
    const checkOverlay = overlay.size > 0;
    for (const { key, value } of this.dbs[space].getRange({})) {
      if (checkOverlay && overlay.has(key.toString('latin1'))) continue;
      fn(key, value);
    }
    for (const [key, { value }] of overlay) if (value !== null) fn(Buffer.from(key, 'latin1'), value);
  }

  keysAfter(space: Space, after: string | null, limit: number): string[] {
    const overlay = this.overlay[space];
    const keys: string[] = [];
    const start = after === null ? undefined : keyBytes(after);
    // The overlay can hide at most overlay.size committed keys, and `after` itself may come back.
    for (const key of this.dbs[space].getKeys({ start, limit: limit + overlay.size + 1 })) {
      const text = key.toString('latin1');
      if (text !== after && !overlay.has(text)) keys.push(text);
    }
    for (const [key, { value }] of overlay) if (value !== null && (after === null || key > after)) keys.push(key);
    return keys.sort().slice(0, limit);
  }

  count(space: Space): number {
    let count = this.dbs[space].getCount();
    for (const [key, { value }] of this.overlay[space]) count += (value === null ? 0 : 1) - (this.committed(space, key) === undefined ? 0 : 1);
    return count;
  }

  /** Runs `fn` as one transaction: its writes are visible at once and committed together, in order. */
  batch(fn: () => void): void {
    if (this.failure !== null) throw this.failure;
    const number = ++this.batchNumber;
    const building = { changes: [] as Change[], undo: new Map<string, [Space, string, Pending | undefined]>() };
    this.building = building;
    try {
      fn();
    } catch (error) {
      // Nothing of a failed batch may stay visible.
      for (const [space, key, previous] of building.undo.values()) {
        if (previous === undefined) this.overlay[space].delete(key);
        else this.overlay[space].set(key, previous);
      }
      throw error;
    } finally {
      this.building = null;
    }
    const { changes } = building;
    if (changes.length === 0) return;
    // Batches are committed together, a group at a time: each LMDB commit rewrites the B-tree's
    // upper pages and the meta page and syncs them, so one commit per applied batch (hundreds a
    // second) cost more disk writes and kernel time than the data itself.
    // One at a time: a snapshot restore is one batch of every key, too many for push(...changes).
    for (const change of changes) {
      this.group.push(change);
      this.groupBytes += change[2]?.length ?? 0;
    }
    this.groupLast = number;
    if (this.group.length >= groupChangesMax || this.groupBytes >= groupBytesMax) this.commitGroup();
    else if (this.groupTimer === null) this.groupTimer = setTimeout(() => this.commitGroup(), groupDelayMs);
  }

  /** Commits the batches waiting since the last commit, as one LMDB transaction. */
  private commitGroup(): void {
    if (this.groupTimer !== null) clearTimeout(this.groupTimer);
    this.groupTimer = null;
    const changes = this.group;
    const last = this.groupLast;
    if (changes.length === 0) return;
    this.group = [];
    this.groupBytes = 0;
    // Asynchronous writes made in one event-loop turn are one LMDB transaction (lmdb-js batches
    // by turn), carried out by LMDB's write thread: the event loop only queues them. Writing them
    // inside a transaction callback ran every B-tree update on the event loop.
    let commit: Promise<unknown> = Promise.resolve();
    for (const [space, key, value] of changes) {
      commit = value === null ? this.dbs[space].remove(keyBytes(key)) : this.dbs[space].put(keyBytes(key), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
    this.lastCommit = commit;
    commit.then(
      () => {
        // Committed: LMDB answers for these keys now, unless a later batch wrote them again.
        for (const [space, key] of changes) {
          const pending = this.overlay[space].get(key);
          if (pending !== undefined && pending.batch <= last) this.overlay[space].delete(key);
        }
      },
      (error: unknown) => {
        this.failure = error instanceof Error ? error : new Error(String(error));
        this.onFailure(this.failure);
      },
    );
  }

  /** Removes everything (inside a batch). */
  clear(): void {
    for (const space of spaces) for (const [key] of [...this.entries(space)]) this.change(space, key, null);
  }

  /**
   * A reader over the committed state, opened once every batch so far is committed: one LMDB
   * read transaction, so the data, the sessions and the applied index it shows belong together.
   */
  async openReader(): Promise<StoreReader> {
    this.commitGroup();
    await this.lastCommit;
    const transaction = this.root.useReadTransaction();
    const dbs = this.dbs;
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
      close: () => transaction.done(),
    };
  }

  /** Resolves once every batch so far is committed and on disk. */
  async flushed(): Promise<boolean> {
    this.commitGroup();
    await this.lastCommit;
    return this.root.flushed;
  }

  async close(): Promise<void> {
    this.commitGroup();
    await this.lastCommit.catch(() => undefined);
    await this.root.close();
  }
}
