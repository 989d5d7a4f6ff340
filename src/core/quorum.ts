/** Quorum arithmetic over voters. Pure functions, unit tested. */

/** The size of a majority of `voterCount` voters. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index that at least `count` of the given indexes reach: the count-th largest.
 * Returns 0 when fewer than `count` indexes are given.
 */
export function indexReachedBy(indexes: readonly number[], count: number): number {
  if (count <= 0) return Number.MAX_SAFE_INTEGER;
  const n = indexes.length;
  if (n < count) return 0;
  // The largest index that at least `count` of them reach. A leader asks on every acknowledgement,
  // for the commit index and each ack level, over a handful of voters: counting for each
  // candidate allocates nothing, where a sorted copy made an array and a comparator each time.
  let best = -Infinity;
  for (let i = 0; i < n; i++) {
    const candidate = indexes[i] as number;
    if (candidate <= best) continue;
    let reached = 0;
    for (let j = 0; j < n; j++) if ((indexes[j] as number) >= candidate) reached++;
    if (reached >= count) best = candidate;
  }
  return best;
}

/** How many voters an `ack` level needs, or null when it can never be met with this many voters. */
export function ackCount(ack: 'leader' | 'majority' | 'all' | number, voterCount: number): number | null {
  if (ack === 'leader') return 1;
  if (ack === 'majority') return majority(voterCount);
  if (ack === 'all') return voterCount;
  if (!Number.isInteger(ack) || ack < 1 || ack > voterCount) return null;
  return ack;
}
