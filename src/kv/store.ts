/**
 * The storage the state machine runs over. Three spaces: `data` (the user's keys), `session`
 * (latest reply per client) and `meta` (applied index, digest). `batch` makes one atomic
 * transaction of everything written inside it.
 */
export type Space = 'data' | 'session' | 'meta';

/** A synchronous key-value store with named spaces and atomic batches. */
export interface KvStore {
  get(space: Space, key: string): Uint8Array | undefined;
  put(space: Space, key: string, value: Uint8Array): void;
  delete(space: Space, key: string): boolean;
  /** Every pair of a space, in ascending key order. */
  entries(space: Space): Iterable<[string, Uint8Array]>;
  /** Up to `limit` keys of a space after `after` (exclusive; null: from the first), in ascending order. */
  keysAfter(space: Space, after: string | null, limit: number): string[];
  count(space: Space): number;
  /** Runs `fn` as one transaction: all of its writes land together or none do. */
  batch(fn: () => void): void;
  /** Removes everything (snapshot install, inside a batch). */
  clear(): void;
}

/** The in-memory store used by tests and the simulator. */
export class MemoryStore implements KvStore {
  private readonly spaces: Record<Space, Map<string, Uint8Array>> = { data: new Map(), session: new Map(), meta: new Map() };

  get(space: Space, key: string): Uint8Array | undefined {
    return this.spaces[space].get(key);
  }

  put(space: Space, key: string, value: Uint8Array): void {
    this.spaces[space].set(key, value);
  }

  delete(space: Space, key: string): boolean {
    return this.spaces[space].delete(key);
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

  batch(fn: () => void): void {
    fn();
  }

  clear(): void {
    for (const map of Object.values(this.spaces)) map.clear();
  }
}
