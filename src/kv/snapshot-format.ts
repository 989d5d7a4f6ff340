import { ErrorCode, TandemError } from '../shared/errors.js';
import type { Space } from './store.js';

/** The version byte that starts a snapshot's state bytes. */
export const snapshotVersion = 1;

/** What the snapshot parser reads from: a ByteReader over a buffer, or a file read in pieces. */
export interface SnapshotSource {
  u8(): number;
  u32(): number;
  u64(): number;
  /** A length-prefixed field. */
  bytes(): Uint8Array;
  /** Throws unless every byte was read. */
  end(): void;
}

/**
 * Reads a snapshot's state bytes — [version][applied index][digest a][digest b], then for the data
 * and the session space [count] and that many (key, value) fields — calling `pair` for each pair,
 * in order. Returns the applied index and the digest the snapshot claims (the caller checks it
 * against what it computed).
 */
export function readSnapshotState(source: SnapshotSource, pair: (space: Space, key: Uint8Array, value: Uint8Array) => void): { readonly applied: number; readonly a: number; readonly b: number } {
  const version = source.u8();
  if (version !== snapshotVersion) throw new TandemError(ErrorCode.corrupt, `snapshot: unknown version ${version}`);
  const applied = source.u64();
  const a = source.u32();
  const b = source.u32();
  for (const space of ['data', 'session'] as const) {
    const count = source.u32();
    for (let i = 0; i < count; i++) {
      const key = source.bytes();
      pair(space, key, source.bytes());
    }
  }
  source.end();
  return { applied, a, b };
}
