import type { Space } from '../kv/store.js';

/** What a RecordIndex needs of the records it indexes: whether the record at an offset is of this space and key. */
export interface IndexedRecords {
  keyIs(offset: number, space: Space, key: string): boolean;
}

const empty = -1;
const spaceSeeds: Record<Space, number> = { data: 0x811c9dc5, session: 0x2b992ddf, meta: 0x6c8e9cf5 };
/** The fewest slots a table has; it doubles when half full. */
const slotsMin = 64;

/**
 * Where the newest record of each (space, key) of a group is: an open-addressing hash table (linear
 * probing) of record offsets in two Int32Arrays, the keys compared against the records' own bytes.
 *
 * Why not a Map from key to offset: a group holds up to 50,000 keys, and a Map kept each key's
 * string alive (the collector copied and promoted one per write) and looked each write up twice
 * (get, then set) through its bucket, entry and key string, each likely a cache miss in tables of
 * that size. Here one probe finds or claims the slot, and nothing per key is left for the collector.
 */
export class RecordIndex {
  private offsets = new Int32Array(slotsMin).fill(empty);
  private hashes = new Int32Array(slotsMin);
  private used = 0;

  constructor(private readonly records: IndexedRecords) {}

  /** How many keys it holds. */
  get size(): number {
    return this.used;
  }

  /** The offset of the newest record of (space, key), or undefined. */
  get(space: Space, key: string): number | undefined {
    const slot = this.find(space, key, hashOf(space, key));
    if (slot < 0) return undefined;
    return this.offsets[slot];
  }

  /** Makes `offset` the newest record of (space, key); returns the offset it replaced, or undefined. */
  set(space: Space, key: string, offset: number): number | undefined {
    if ((this.used + 1) * 2 > this.offsets.length) this.grow();
    const hash = hashOf(space, key);
    const slot = this.find(space, key, hash);
    if (slot >= 0) {
      const previous = this.offsets[slot];
      this.offsets[slot] = offset;
      return previous;
    }
    const free = ~slot;
    this.offsets[free] = offset;
    this.hashes[free] = hash;
    this.used++;
    return undefined;
  }

  /** Forgets (space, key) (a failed batch's new key). */
  delete(space: Space, key: string): void {
    let hole = this.find(space, key, hashOf(space, key));
    if (hole < 0) return;
    this.used--;
    // Backward shift: move up each later entry of the run whose home is at or before the hole, so
    // that every key stays reachable from its home slot without tombstones.
    const mask = this.offsets.length - 1;
    for (let next = (hole + 1) & mask; this.offsets[next] !== empty; next = (next + 1) & mask) {
      const home = (this.hashes[next] as number) & mask;
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (between) continue;
      this.offsets[hole] = this.offsets[next] as number;
      this.hashes[hole] = this.hashes[next] as number;
      hole = next;
    }
    this.offsets[hole] = empty;
  }

  /** The slot holding (space, key), or the complement (~slot) of the free slot where it would go. */
  private find(space: Space, key: string, hash: number): number {
    const offsets = this.offsets;
    const hashes = this.hashes;
    const mask = offsets.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const offset = offsets[slot] as number;
      if (offset === empty) return ~slot;
      if (hashes[slot] === hash && this.records.keyIs(offset, space, key)) return slot;
    }
  }

  private grow(): void {
    const offsets = this.offsets;
    const hashes = this.hashes;
    this.offsets = new Int32Array(offsets.length * 2).fill(empty);
    this.hashes = new Int32Array(offsets.length * 2);
    const mask = this.offsets.length - 1;
    for (let k = 0; k < offsets.length; k++) {
      const offset = offsets[k] as number;
      if (offset === empty) continue;
      let slot = (hashes[k] as number) & mask;
      while (this.offsets[slot] !== empty) slot = (slot + 1) & mask;
      this.offsets[slot] = offset;
      this.hashes[slot] = hashes[k] as number;
    }
  }
}

/** FNV-1a over the key's chars (latin1: one byte each), seeded by the space; well mixed at the end, as linear probing needs. */
function hashOf(space: Space, key: string): number {
  let hash = spaceSeeds[space];
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash | 0;
}
