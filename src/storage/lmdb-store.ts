import { open, type Database, type RootDatabase } from 'lmdb';
import type { KvStore, Space } from '../kv/store.js';

/** Keys travel as latin1 strings (one char per byte); LMDB stores the bytes themselves. */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

/**
 * The state machine's store on LMDB: one named database per space, and one LMDB write
 * transaction per `batch`, so a batch's data and the applied index land together or not at all.
 * Commits return before the data is flushed (LMDB's overlapping sync); that is safe because the
 * log is the durable record and on restart the node replays it from the applied index found here.
 */
export class LmdbStore implements KvStore {
  private readonly root: RootDatabase;
  private readonly spaces: Record<Space, Database<Buffer, Buffer>>;

  constructor(path: string) {
    this.root = open({ path, noMemInit: true });
    const db = (name: Space): Database<Buffer, Buffer> => this.root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
    this.spaces = { data: db('data'), session: db('session'), meta: db('meta') };
  }

  get(space: Space, key: string): Uint8Array | undefined {
    return this.spaces[space].get(keyBytes(key));
  }

  put(space: Space, key: string, value: Uint8Array): void {
    this.spaces[space].putSync(keyBytes(key), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  delete(space: Space, key: string): boolean {
    return this.spaces[space].removeSync(keyBytes(key));
  }

  entries(space: Space): Iterable<[string, Uint8Array]> {
    const range = this.spaces[space].getRange({});
    return {
      *[Symbol.iterator]() {
        for (const { key, value } of range) yield [key.toString('latin1'), value] as [string, Uint8Array];
      },
    };
  }

  keysAfter(space: Space, after: string | null, limit: number): string[] {
    const keys: string[] = [];
    const start = after === null ? undefined : keyBytes(after);
    // One extra, since the range starts at `after` itself when it still exists.
    for (const key of this.spaces[space].getKeys({ start, limit: limit + 1 })) {
      const text = key.toString('latin1');
      if (text === after) continue;
      if (keys.length === limit) break;
      keys.push(text);
    }
    return keys;
  }

  count(space: Space): number {
    return this.spaces[space].getCount();
  }

  batch(fn: () => void): void {
    this.root.transactionSync(fn);
  }

  clear(): void {
    for (const db of Object.values(this.spaces)) db.clearSync();
  }

  /** Resolves once every committed batch is on disk. */
  flushed(): Promise<boolean> {
    return this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
