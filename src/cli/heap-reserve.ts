/**
 * A fixed block of V8's heap that a node holds for its whole life, so that V8 runs its full
 * (mark-compact) collections less often.
 *
 * V8 starts marking the old generation once what was promoted since the last full collection
 * nears a headroom proportional to the old generation's live size (a factor of 1.1 to 1.3 when
 * collections are cheap, as they are here). A node's own live heap is small — about 15 MB, its
 * state being in LMDB and its log entries' bytes outside the heap — so a leader at 25,000 writes
 * a second, promoting 3-4 MB a second (request objects that outlive two scavenges, Node's own
 * socket objects), was collected in full about three times a second: each a few milliseconds
 * of marking steps and a final pause on the event loop, with the helper threads marking beside
 * it, and every client of the cluster waiting. A block of `mib` MiB counts toward the live size,
 * so the headroom grows by a tenth to a third of it; it costs V8 nothing to mark (one flat
 * string: no pointers to follow) and the process `mib` MiB of memory.
 *
 * The same can be had with `node --initial-old-space-size=…`, but only on the command line (V8
 * refuses it from NODE_OPTIONS and reads it only at start); a node started the usual way gets it
 * from here.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

let held: string | null = null;

/**
 * Takes `mib` MiB of V8's heap for the rest of the process's life (once: a second call with
 * another size replaces the block). Returns how much V8's heap grew, in bytes.
 */
export function reserveHeap(mib: number): number {
  if (!Number.isInteger(mib) || mib < 0) throw new RangeError(`a heap reserve is a whole number of MiB, not ${mib}`);
  const before = getHeapStatistics().used_heap_size;
  if (mib === 0) {
    held = null;
    return 0;
  }
  const block = 'x'.repeat(mib * 1024 * 1024);
  // repeat() gives a rope of a few dozen nodes sharing their halves; reading a character
  // flattens it into one string of the whole length, on V8's heap (not outside it, as a Buffer's
  // bytes or a large string decoded from one would be).
  block.charCodeAt(block.length - 1);
  held = block;
  return getHeapStatistics().used_heap_size - before;
}

/** The size of the block held now, in bytes (0: none). */
export function heapReserveBytes(): number {
  return held?.length ?? 0;
}

/**
 * Lets V8's old generation grow by `percent` of its live size before V8 starts a full collection
 * (V8's `--heap-growing-percent`; 0: V8 chooses). V8's own choice is small when its collections
 * are cheap (10-30%, the reserve's reason above), so even with the reserve a node's old generation
 * reached its limit soon after each collection: after a 4 KiB load, a leader under the RESP loop
 * started 11-28 full collections in 18 s and each follower 10-26, against 7-8 and 1-3 at 100%
 * (performance item 42). Costs up to `percent` of the live heap (the reserve included) in memory.
 * Read by V8 at each collection, so it may be set after start.
 */
export function setHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`a heap growth is a whole number of percent, not ${percent}`);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
