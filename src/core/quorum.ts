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
  if (indexes.length < count) return 0;
  const sorted = [...indexes].sort((a, b) => b - a);
  return sorted[count - 1] as number;
}

/** How many voters an `ack` level needs, or null when it can never be met with this many voters. */
export function ackCount(ack: 'leader' | 'majority' | 'all' | number, voterCount: number): number | null {
  if (ack === 'leader') return 1;
  if (ack === 'majority') return majority(voterCount);
  if (ack === 'all') return voterCount;
  if (!Number.isInteger(ack) || ack < 1 || ack > voterCount) return null;
  return ack;
}
