import type { StateDigest } from './digest.js';

/**
 * The storage the state machine runs over. Three spaces: `data` (the user's keys), `session`
 * (latest reply per client) and `meta` (applied index, digest). `batch` makes one atomic
 * transaction of everything written inside it.
 */
export type Space = 'data' | 'session' | 'meta';

/**
 * What a store that keeps the state digest itself offers (see KvStore.digests). The state machine
 * then writes its `meta/state` record as the applied index alone (8 bytes) and the store adds the
 * digest as it commits; a record that carries a digest (16 bytes: a snapshot installed, a reset)
 * sets it.
 */
export interface StoreDigests {
  /** The digest of everything the store holds, committed and pending (a read per pending key). */
  now(): StateDigest;
  /** The committed state's applied index and digest (one read). */
  committed(): { readonly index: number; readonly digest: StateDigest };
  /** Calls `fn`, once the store knows it, with the digest the batch that wrote applied index `index` left. Call it after that batch. */
  at(index: number, fn: (digest: string) => void): void;
}

/**
 * What a store that commits behind the state machine offers (see KvStore.backlog): a bound on the
 * bytes written but not yet committed, which new writes wait for.
 */
export interface StoreBacklog {
  /** Bytes of keys and values written and not yet committed (every uncommitted group). */
  bytes(): number;
  /** The most `bytes()` has been since the store opened. */
  bytesMax(): number;
  /** How many writes `admit` has held back since the store opened. */
  held(): number;
  /** True when `admit` would hold a write now (over the bound, or writes already held). */
  holding(): boolean;
  /**
   * Calls `fn(null)` at once when the uncommitted bytes are within the store's bound and no
   * write is held; otherwise holds it, in order behind those held before it, until a commit brings
   * them within the bound (or calls `fn` with the store's failure).
   */
  admit(fn: (error: Error | null) => void): void;
  /**
   * Calls `fn(null)` once the uncommitted bytes are within the bound (at once if they are), in
   * order with held writes; not counted as a held write (the state machine waits, not a client).
   */
  afterDrain(fn: (error: Error | null) => void): void;
}

/** A synchronous key-value store with named spaces and atomic batches. */
export interface KvStore {
  get(space: Space, key: string): Uint8Array | undefined;
  /** The value as `get` finds it, but only valid until the next call on the store (it may not be a copy). */
  peek(space: Space, key: string): Uint8Array | undefined;
  put(space: Space, key: string, value: Uint8Array): void;
  delete(space: Space, key: string): boolean;
  /** Every pair of a space, in ascending key order. */
  entries(space: Space): Iterable<[string, Uint8Array]>;
  /** Up to `limit` keys of a space after `after` (exclusive; null: from the first), in ascending order. */
  keysAfter(space: Space, after: string | null, limit: number): string[];
  count(space: Space): number;
  /**
   * Calls `fn` for every pair of a space, keys as bytes, in no particular order: the fast path a
   * snapshot takes (no key strings made, no sorting).
   */
  forEachRaw(space: Space, fn: (key: Uint8Array, value: Uint8Array) => void): void;
  /**
   * Optional: a reader of one consistent, committed state that can be walked a piece at a time
   * (for snapshots that do not hold the event loop). Null when the store has none.
   */
  openReader?(): Promise<StoreReader>;
  /**
   * Optional: replaces the whole state with a snapshot's state bytes read from `file`, off the
   * event loop and all at once or not at all, once every batch so far is committed; calls `done`
   * with the restored state's applied index and digest. No batch may run until then.
   */
  restoreFromFile?(file: SnapshotFile, done: (error: Error | null, state: { readonly index: number; readonly a: number; readonly b: number } | null) => void): void;
  /** Runs `fn` as one transaction: all of its writes land together or none do. */
  batch(fn: () => void): void;
  /** Removes everything (snapshot install, inside a batch). */
  clear(): void;
  /**
   * Optional: the store keeps the state digest as it commits, off the event loop, so the state
   * machine need not read an item's old value to take its hash out of the digest.
   */
  readonly digests?: StoreDigests;
  /** Optional: the store commits behind the state machine and bounds how far (see StoreBacklog). */
  readonly backlog?: StoreBacklog;
}

/** Where a snapshot's state bytes are: `bytes` of them from `offset` in the file at `path`. */
export interface SnapshotFile {
  readonly path: string;
  readonly offset: number;
  readonly bytes: number;
}

/** A consistent view of a store's committed state, walked in pieces; `close` must be called. */
export interface StoreReader {
  get(space: Space, key: string): Uint8Array | undefined;
  count(space: Space): number;
  /** Calls `fn` for up to `limit` pairs after `after` (null: from the start); returns the last key seen, or null at the end. */
  forEachRawFrom(space: Space, after: Uint8Array | null, limit: number, fn: (key: Uint8Array, value: Uint8Array) => void): Uint8Array | null;
  close(): void;
}

/** The in-memory store used by tests and the simulator. */
export class MemoryStore implements KvStore {
  private readonly spaces: Record<Space, Map<string, Uint8Array>> = { data: new Map(), session: new Map(), meta: new Map() };
  /** During a batch: each touched item's value before the batch (undefined: absent). */
  private undo: Map<string, [Space, string, Uint8Array | undefined]> | null = null;

  get(space: Space, key: string): Uint8Array | undefined {
    return this.spaces[space].get(key);
  }

  peek(space: Space, key: string): Uint8Array | undefined {
    return this.get(space, key);
  }

  put(space: Space, key: string, value: Uint8Array): void {
    this.remember(space, key);
    this.spaces[space].set(key, value);
  }

  delete(space: Space, key: string): boolean {
    this.remember(space, key);
    return this.spaces[space].delete(key);
  }

  /** Keeps what `key` held before the running batch first touched it, for a rollback. */
  private remember(space: Space, key: string): void {
    const undo = this.undo;
    if (undo === null) return;
    const id = `${space}\u0000${key}`;
    if (!undo.has(id)) undo.set(id, [space, key, this.spaces[space].get(key)]);
  }

  entries(space: Space): Iterable<[string, Uint8Array]> {
    return [...this.spaces[space].entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  keysAfter(space: Space, after: string | null, limit: number): string[] {
    const keys = [...this.spaces[space].keys()].filter((key) => after === null || key > after).sort();
    return keys.slice(0, limit);
  }

  count(space: Space): number {
    return this.spaces[space].size;
  }

  forEachRaw(space: Space, fn: (key: Uint8Array, value: Uint8Array) => void): void {
    for (const [key, value] of this.entries(space)) fn(Buffer.from(key, 'latin1'), value);
  }

  batch(fn: () => void): void {
    const undo = new Map<string, [Space, string, Uint8Array | undefined]>();
    this.undo = undo;
    try {
      fn();
    } catch (error) {
      for (const [space, key, previous] of undo.values()) {
        if (previous === undefined) this.spaces[space].delete(key);
        else this.spaces[space].set(key, previous);
      }
      throw error;
    } finally {
      this.undo = null;
    }
  }

  clear(): void {
    for (const [space, map] of Object.entries(this.spaces) as [Space, Map<string, Uint8Array>][]) {
      for (const key of map.keys()) this.remember(space, key);
      map.clear();
    }
  }
}
