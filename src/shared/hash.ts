/**
 * Small, fast, deterministic hashing used for state digests. Not cryptographic: a digest
 * detects divergence between replicas, it does not defend against an adversary.
 */

/** 32-bit FNV-1a over bytes, continuing from `seed`. */
export function fnv1a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A 32-bit finalizer (murmur3 fmix32) that spreads the bits of `h`. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Renders a 32-bit number as 8 hex digits. */
export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
