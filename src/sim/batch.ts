import type { PlantedBugs } from '../core/raft.js';
import { runSeed, type SimResult } from './run.js';

/** Trace lines kept for each failing seed, to show what led up to the violation. */
const traceTailLines = 30;

/** The totals of many seeds. */
export interface BatchSummary {
  seeds: number;
  /** Each failing seed with its violations and the last lines of its trace. */
  failedSeeds: { seed: number; violations: readonly string[]; traceTail: readonly string[] }[];
  opsChecked: number;
  faults: number;
  leaderChanges: number;
  entriesApplied: number;
  batchedWrites: number;
  simulatedMs: number;
  lostLeaderAckWritesRecorded: number;
  tornTailsCut: number;
  snapshotsSentFromDisk: number;
  entriesReadFromDisk: number;
  entriesReadToApply: number;
  snapshotsInstalled: number;
}

export function emptySummary(): BatchSummary {
  return { seeds: 0, failedSeeds: [], opsChecked: 0, faults: 0, leaderChanges: 0, entriesApplied: 0, batchedWrites: 0, simulatedMs: 0, lostLeaderAckWritesRecorded: 0, tornTailsCut: 0, snapshotsInstalled: 0, snapshotsSentFromDisk: 0, entriesReadFromDisk: 0, entriesReadToApply: 0 };
}

/** Adds one run to the totals. */
export function addResult(summary: BatchSummary, result: SimResult): void {
  mergeSummaries(summary, {
    seeds: 1,
    failedSeeds: result.violations.length > 0 ? [{ seed: result.seed, violations: result.violations, traceTail: result.trace.slice(-traceTailLines) }] : [],
    opsChecked: result.opsChecked,
    faults: result.faults,
    leaderChanges: result.leaderChanges,
    entriesApplied: result.entriesApplied,
    batchedWrites: result.batchedWrites,
    simulatedMs: result.simulatedMs,
    lostLeaderAckWritesRecorded: result.lostLeaderAckWritesRecorded,
    tornTailsCut: result.tornTailsCut,
    snapshotsSentFromDisk: result.snapshotsSentFromDisk,
    entriesReadFromDisk: result.entriesReadFromDisk,
    entriesReadToApply: result.entriesReadToApply,
    snapshotsInstalled: result.snapshotsInstalled,
  });
}

/** Merges totals (from another run or a worker). */
export function mergeSummaries(into: BatchSummary, from: BatchSummary): void {
  into.failedSeeds.push(...from.failedSeeds);
  for (const key of ['seeds', 'opsChecked', 'faults', 'leaderChanges', 'entriesApplied', 'batchedWrites', 'simulatedMs', 'lostLeaderAckWritesRecorded', 'tornTailsCut', 'snapshotsInstalled', 'snapshotsSentFromDisk', 'entriesReadFromDisk', 'entriesReadToApply'] as const) {
    into[key] += from[key];
  }
}

/** Runs the seeds first, first + step, first + 2·step, … below first + count. */
export function runSeeds(first: number, count: number, step: number, offset: number, nodes: number | undefined, bugs: PlantedBugs): BatchSummary {
  const summary = emptySummary();
  for (let k = offset; k < count; k += step) {
    const seed = first + k;
    try {
      addResult(summary, runSeed(nodes === undefined ? { seed, bugs } : { seed, nodes, bugs }));
    } catch (error) {
      // An assertion inside the protocol is a bug found: report the seed like any violation.
      summary.seeds++;
      summary.failedSeeds.push({ seed, violations: [`crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`], traceTail: [] });
    }
  }
  return summary;
}
