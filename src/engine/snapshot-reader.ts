import type { SnapshotMeta } from '../core/types.js';
import type { SnapshotReader } from './interfaces.js';

/**
 * A reader over state bytes already in memory, whole or in the parts a snapshot was built in (a
 * snapshot not yet on disk, or the simulator's). A read within one part is a view of it; one
 * across parts is copied.
 */
export function memorySnapshotReader(meta: SnapshotMeta, data: Uint8Array | readonly Uint8Array[]): SnapshotReader {
  const parts = data instanceof Uint8Array ? [data] : data;
  // starts[k]: the offset of parts[k] in the state bytes; starts[parts.length]: their length.
  const starts = [0];
  for (const part of parts) starts.push((starts[starts.length - 1] as number) + part.length);
  const bytes = starts[parts.length] as number;
  return {
    meta,
    bytes,
    file: null,
    read(offset, length, done) {
      let k = partAt(starts, offset);
      const first = parts[k];
      const within = offset - (starts[k] as number);
      if (first === undefined || within + length <= first.length) {
        done(null, (first ?? new Uint8Array(0)).subarray(within, within + length));
        return;
      }
      const chunk = new Uint8Array(length);
      let filled = 0;
      for (let from = within; filled < length; k++, from = 0) {
        const part = parts[k] as Uint8Array;
        const piece = part.subarray(from, from + length - filled);
        chunk.set(piece, filled);
        filled += piece.length;
      }
      done(null, chunk);
    },
    close() {},
  };
}

/** The part that holds byte `offset`: the last k with starts[k] <= offset (binary search). */
function partAt(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Reads a reader's bytes in one piece and closes it: a snapshot small enough for one message, or the simulator's. */
export function readWhole(reader: SnapshotReader, done: (error: Error | null, data: Uint8Array | null) => void): void {
  reader.read(0, reader.bytes, (error, chunk) => {
    reader.close();
    done(error, chunk);
  });
}
