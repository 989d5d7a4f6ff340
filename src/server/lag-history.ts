/** The parts of a log the lag history reads. */
export interface SampledLog {
  readonly lastIndex: number;
  /** Entries at or below this index are not in memory (compacted away, or on disk only). */
  readonly notHeldThrough: number;
  /** The payload size of a held entry (notHeldThrough < index <= lastIndex). */
  entryBytes(index: number): number;
}

/** One sample: when the log first reached `index`, and the payload bytes of the entries up to it since the history began. */
interface Sample {
  readonly index: number;
  readonly at: number;
  readonly bytes: number;
}

/** Samples kept: 10 minutes at one per 100 ms. */
const samplesMax = 6000;

/**
 * What a follower's lag is in time and bytes, from samples of the leader's log taken on a timer.
 * Lag in ms is the age of the oldest entry a follower lacks (when the log first reached past its
 * match index). Lag in bytes is the payload of the entries it lacks: exact at sample points, so
 * entries compacted away since are still counted at their own sizes; between two samples it is
 * interpolated, and before the first sample it is extrapolated at the history's average.
 */
export class LagHistory {
  private readonly samples: Sample[] = [];

  /** Records the log's last index, once per new index; forgets samples past a log cut back by a new leader. */
  sample(log: SampledLog, now: number): void {
    const samples = this.samples;
    while (samples.length > 0 && samples[samples.length - 1]!.index > log.lastIndex) samples.pop();
    const latest = samples[samples.length - 1];
    if (latest !== undefined && latest.index === log.lastIndex) return;
    const bytes = latest === undefined ? 0 : this.bytesAt(log, log.lastIndex);
    samples.push({ index: log.lastIndex, at: now, bytes });
    if (samples.length > samplesMax) samples.splice(0, samples.length - samplesMax);
  }

  /** How long ago the log first held an entry past `match` (0 when nothing is missing). */
  lagMs(log: SampledLog, match: number, now: number): number {
    if (match >= log.lastIndex) return 0;
    const oldestMissing = this.samples.find((sample) => sample.index > match) ?? this.samples[0];
    return Math.round(now - (oldestMissing?.at ?? now));
  }

  /** The payload bytes of the entries after `match`. */
  lagBytes(log: SampledLog, match: number): number {
    if (match >= log.lastIndex) return 0;
    return Math.max(0, Math.round(this.bytesAt(log, log.lastIndex) - this.bytesAt(log, match)));
  }

  /** The bytes of the entries through `index`, on the history's scale. */
  private bytesAt(log: SampledLog, index: number): number {
    const samples = this.samples;
    const latest = samples[samples.length - 1];
    if (latest === undefined) return 0;
    if (index >= latest.index) return latest.bytes + heldBytes(log, latest.index + 1, index, this.averageBytes(log));
    // The last sample at or below index, by binary search (indexes grow along the history).
    let low = 0;
    let high = samples.length - 1;
    if (index < samples[0]!.index) return samples[0]!.bytes - (samples[0]!.index - index) * this.averageBytes(log);
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (samples[middle]!.index <= index) low = middle;
      else high = middle - 1;
    }
    const before = samples[low]!;
    const after = samples[low + 1]!;
    return before.bytes + ((index - before.index) * (after.bytes - before.bytes)) / (after.index - before.index);
  }

  /** Bytes per entry over the history, or of the newest held entries when the history is too short. */
  private averageBytes(log: SampledLog): number {
    const first = this.samples[0];
    const latest = this.samples[this.samples.length - 1];
    if (first !== undefined && latest !== undefined && latest.index > first.index) return (latest.bytes - first.bytes) / (latest.index - first.index);
    const from = Math.max(log.notHeldThrough + 1, log.lastIndex - 99);
    const count = log.lastIndex - from + 1;
    return count <= 0 ? 0 : heldBytes(log, from, log.lastIndex, 0) / count;
  }
}

/** The payload bytes of entries from..to; an entry already compacted away counts as `average`. */
function heldBytes(log: SampledLog, from: number, to: number, average: number): number {
  let bytes = 0;
  for (let index = from; index <= to; index++) bytes += index > log.notHeldThrough ? log.entryBytes(index) : average;
  return bytes;
}
