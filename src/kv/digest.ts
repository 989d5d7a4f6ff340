import { ByteReader, ByteWriter } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { hex32 } from '../shared/hash.js';
import type { Space } from './store.js';

const seedA = 0x811c9dc5;
const seedB = 0x050c5d1f;
const prime = 0x01000193;
const spaceTags: Record<Space, number> = { data: 1, session: 2, meta: 3 };

/**
 * The state digest: the sum, over every item (space, key, value) of the data and session spaces,
 * of its hash, in two independent 32-bit lanes. A sum, so it is kept up to date item by item
 * (add the new value's hash, take away the old one's) and does not depend on order.
 *
 * One item's hash is two FNV-1a lanes over (space tag, key length, key, value), computed in one
 * pass without copying the key: a key is a latin1 string (one byte a char) or its bytes.
 */
export class StateDigest {
  a: number;
  b: number;

  constructor(a = 0, b = 0) {
    this.a = a;
    this.b = b;
  }

  /** Adds (sign 1) or takes away (sign -1) one item's hash. */
  mix(space: Space, key: string | Uint8Array, value: Uint8Array, sign: 1 | -1): void {
    const length = key.length;
    let a = seedA;
    let b = seedB;
    const head = [spaceTags[space], length & 0xff, (length >>> 8) & 0xff] as const;
    for (const byte of head) {
      a = Math.imul(a ^ byte, prime);
      b = Math.imul(b ^ byte, prime);
    }
    if (typeof key === 'string') {
      for (let i = 0; i < length; i++) {
        const byte = key.charCodeAt(i);
        a = Math.imul(a ^ byte, prime);
        b = Math.imul(b ^ byte, prime);
      }
    } else {
      for (let i = 0; i < length; i++) {
        const byte = key[i] as number;
        a = Math.imul(a ^ byte, prime);
        b = Math.imul(b ^ byte, prime);
      }
    }
    for (let i = 0; i < value.length; i++) {
      const byte = value[i] as number;
      a = Math.imul(a ^ byte, prime);
      b = Math.imul(b ^ byte, prime);
    }
    this.a = (this.a + sign * (a >>> 0)) >>> 0;
    this.b = (this.b + sign * (b >>> 0)) >>> 0;
  }

  /** As 16 hex digits. */
  hex(): string {
    return hex32(this.a) + hex32(this.b);
  }
}

/**
 * The state machine's record of its state (meta/state): the applied index (u64), then the digest's
 * two lanes (u32 each), little-endian. A store that keeps the digest is first given the index alone
 * (see KvStore.digests): then `digest` is null.
 */
export function encodeStateRecord(index: number, digest: StateDigest | null): Uint8Array {
  const w = new ByteWriter(16).u64(index);
  if (digest !== null) w.u32(digest.a).u32(digest.b);
  return w.finish();
}

/**
 * The committed state a store holds: its state record's index and digest (zero for an empty store).
 * A committed record always carries its digest; throws CORRUPT when it does not.
 */
export function committedState(record: Uint8Array | undefined): { readonly index: number; readonly digest: StateDigest } {
  if (record === undefined) return { index: 0, digest: new StateDigest() };
  const { index, digest } = readStateRecord(record);
  if (digest === null) throw new TandemError(ErrorCode.corrupt, 'the committed state record has no digest');
  return { index, digest };
}

/** Reads a state record (see encodeStateRecord); throws CORRUPT when it has the wrong length. */
export function readStateRecord(record: Uint8Array): { readonly index: number; readonly digest: StateDigest | null } {
  if (record.length !== 8 && record.length !== 16) throw new TandemError(ErrorCode.corrupt, `a state record of ${record.length} bytes, not 8 or 16`);
  const r = new ByteReader(record, 'state record');
  const index = r.u64();
  return { index, digest: record.length === 16 ? new StateDigest(r.u32(), r.u32()) : null };
}

/** Throws CORRUPT unless the digest computed over a snapshot's pairs is the one it claims. */
export function checkSnapshotDigest(applied: number, computed: StateDigest, a: number, b: number): void {
  if (computed.a !== a || computed.b !== b) {
    throw new TandemError(ErrorCode.corrupt, `snapshot at ${applied}: digest ${computed.hex()} does not match ${hex32(a)}${hex32(b)}`);
  }
}
