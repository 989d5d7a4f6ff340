import type { SnapshotMeta } from '../core/types.js';
import type { SnapshotReader } from './interfaces.js';

/** A reader over state bytes already in memory (a snapshot not yet on disk, or the simulator's). */
export function memorySnapshotReader(meta: SnapshotMeta, data: Uint8Array): SnapshotReader {
  return {
    meta,
    bytes: data.length,
    read(offset, length, done) {
      done(null, data.subarray(offset, offset + length));
    },
    close() {},
  };
}

/** Reads a reader's bytes in one piece and closes it: a snapshot small enough for one message, or the simulator's. */
export function readWhole(reader: SnapshotReader, done: (error: Error | null, data: Uint8Array | null) => void): void {
  reader.read(0, reader.bytes, (error, chunk) => {
    reader.close();
    done(error, chunk);
  });
}
