/** Figures of a latency run, and the reading of redis-benchmark's report. */
import { quantile } from './cluster.js';

export interface LatencyFigure {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

/** The figures of a sorted list of latencies over `seconds`. */
export function figureOf(sorted: readonly number[], seconds: number): LatencyFigure {
  return { opsPerSecond: sorted.length / seconds, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), p999Ms: quantile(sorted, 0.999) };
}

/**
 * Reads redis-benchmark's report (not --csv, which has no p99.9): per test, the throughput, p50
 * and p99 of its summary, and for p99.9 the first line of its percentile distribution at or past
 * 99.9% (an HdrHistogram bucket bound, so an upper bound on the true p99.9).
 */
export function parseRedisBenchmark(out: string): Map<string, LatencyFigure> {
  const figures = new Map<string, LatencyFigure>();
  for (const section of out.split(/={6} /).slice(1)) {
    const name = section.slice(0, section.indexOf(' ='));
    const throughput = /throughput summary: ([\d.]+) requests per second/.exec(section);
    const summary = /avg\s+min\s+p50\s+p95\s+p99\s+max\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(section);
    let p999 = Number.NaN;
    for (const match of section.matchAll(/([\d.]+)% <= ([\d.]+) milliseconds/g)) {
      if (Number(match[1]) >= 99.9) {
        p999 = Number(match[2]);
        break;
      }
    }
    if (throughput === null || summary === null) continue;
    figures.set(name, { opsPerSecond: Number(throughput[1]), p50Ms: Number(summary[3]), p99Ms: Number(summary[5]), p999Ms: p999 });
  }
  return figures;
}
