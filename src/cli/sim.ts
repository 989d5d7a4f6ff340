import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PlantedBugs } from '../core/raft.js';
import { emptySummary, mergeSummaries, type BatchSummary } from '../sim/batch.js';
import { runSeed } from '../sim/run.js';
import { flagHelp, parseFlags, UsageError, type FlagSpec } from './args.js';

const flags: Record<string, FlagSpec> = {
  seeds: { type: 'int', help: 'how many seeds to run', min: 1, max: 10_000_000, default: 100 },
  'first-seed': { type: 'int', help: 'the first seed', min: 0, max: 2 ** 31, default: 1 },
  seed: { type: 'int', help: 'replay this one seed', min: 0, max: 2 ** 31 },
  nodes: { type: 'int', help: 'cluster size (otherwise drawn from each seed, 1-7)', min: 1, max: 7 },
  trace: { type: 'switch', help: 'with --seed: print the whole trace' },
  workers: { type: 'int', help: 'worker threads', min: 1, max: 64, default: Math.max(1, availableParallelism()) },
  bug: { type: 'string', help: 'plant a bug to show the checkers catch it: up-to-date | current-term | ack-majority | session' },
  help: { type: 'switch', help: 'show this help' },
};

const usage = `tandem sim: run the deterministic simulator over many seeds

Each seed draws a cluster (1-7 nodes, maybe a learner), a workload of concurrent clients and a
fault schedule (crashes with torn disks, pauses, partitions, loss, transfers, membership
changes), then checks: one leader per term, identical committed prefixes, equal state digests,
no acknowledged write lost, exactly-once retries, rollback records, liveness after healing, and
linearizability of the history.

Usage: tandem sim [--seeds N] [--first-seed S] [--nodes K] [--workers W]
       tandem sim --seed S [--trace]

${flagHelp(flags)}
`;

function plantedBugs(name: string | undefined): PlantedBugs {
  if (name === undefined) return {};
  if (name === 'up-to-date') return { skipUpToDateCheck: true };
  if (name === 'current-term') return { skipCurrentTermCommitRule: true };
  if (name === 'ack-majority') return { ackMajorityOnLeaderFsync: true };
  if (name === 'session') return { sessionReadsWithoutWaiting: true };
  throw new UsageError(`--bug must be up-to-date, current-term, ack-majority or session, not '${name}'`);
}

/** `tandem sim`: returns the process exit code. */
export async function simCommand(argv: readonly string[]): Promise<number> {
  const values = parseFlags(argv, flags);
  if (values['help'] === true) {
    process.stdout.write(usage);
    return 0;
  }
  const bugs = plantedBugs(values['bug'] as string | undefined);
  const nodes = values['nodes'] as number | undefined;
  if (values['seed'] !== undefined) return replay(values['seed'] as number, nodes, bugs, values['trace'] === true);
  if (values['trace'] === true) throw new UsageError('--trace goes with --seed');
  const seeds = values['seeds'] as number;
  const first = values['first-seed'] as number;
  const workers = Math.min(values['workers'] as number, seeds);
  const started = performance.now();
  const summary = await runParallel(first, seeds, workers, nodes, bugs);
  const seconds = (performance.now() - started) / 1000;
  report(summary, seconds, values['bug'] as string | undefined);
  return summary.failedSeeds.length === 0 ? 0 : 1;
}

function replay(seed: number, nodes: number | undefined, bugs: PlantedBugs, trace: boolean): number {
  let result;
  try {
    result = runSeed(nodes === undefined ? { seed, trace, bugs } : { seed, nodes, trace, bugs });
  } catch (error) {
    process.stdout.write(`VIOLATION seed ${seed}: crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
  if (trace || result.violations.length > 0) for (const line of result.trace) process.stdout.write(`${line}\n`);
  for (const v of result.violations) process.stdout.write(`VIOLATION seed ${seed}: ${v}\n`);
  process.stdout.write(
    `seed ${seed}: ${result.nodes} nodes (${result.learners} learners), ${result.opsChecked} ops checked (${result.counts.ok} ok, ${result.counts.unknown} unknown, ${result.counts.failed} failed), ` +
      `${result.faults} faults, ${result.leaderChanges} leader changes, ${result.entriesApplied} entries (${result.batchedWrites} writes shared an entry), ${result.snapshotsInstalled} snapshots installed, ${result.simulatedMs.toFixed(0)} simulated ms, ${result.violations.length} violations\n`,
  );
  return result.violations.length === 0 ? 0 : 1;
}

async function runParallel(first: number, count: number, workers: number, nodes: number | undefined, bugs: PlantedBugs): Promise<BatchSummary> {
  const summary = emptySummary();
  const chunkSeeds = Math.max(1, Math.min(50, Math.ceil(count / (workers * 8))));
  let next = first;
  const end = first + count;
  await Promise.all(
    Array.from({ length: workers }, () =>
      new Promise<void>((resolve, reject) => {
        const worker = new Worker(new URL('./sim-worker.js', import.meta.url), { workerData: { nodes, bugs } });
        worker.on('message', (part: BatchSummary | null) => {
          if (part !== null) mergeSummaries(summary, part);
          if (next >= end) {
            worker.postMessage(null);
            return;
          }
          const chunk = { first: next, count: Math.min(chunkSeeds, end - next) };
          next += chunk.count;
          worker.postMessage(chunk);
        });
        worker.once('error', reject);
        worker.once('exit', () => resolve());
      }),
    ),
  );
  summary.failedSeeds.sort((a, b) => a.seed - b.seed);
  return summary;
}

function report(summary: BatchSummary, seconds: number, bug: string | undefined): void {
  const first = summary.failedSeeds[0];
  if (first !== undefined && first.traceTail.length > 0) {
    process.stdout.write(`the last ${first.traceTail.length} trace lines of seed ${first.seed}:\n${first.traceTail.map((l) => `  ${l}`).join('\n')}\n`);
  }
  for (const failed of summary.failedSeeds.slice(0, 20)) {
    process.stdout.write(`VIOLATION seed ${failed.seed}: ${failed.violations.slice(0, 3).join(' | ')}\n  replay: npm run sim -- --seed ${failed.seed} --trace${bug === undefined ? '' : ` --bug ${bug}`}\n`);
  }
  if (summary.failedSeeds.length > 20) process.stdout.write(`… and ${summary.failedSeeds.length - 20} more failing seeds\n`);
  const opsPerSecond = Math.round(summary.opsChecked / seconds);
  const speedup = summary.simulatedMs / 1000 / seconds;
  process.stdout.write(
    `faults ${summary.faults}, leader changes ${summary.leaderChanges}, entries applied ${summary.entriesApplied} (writes that shared an entry ${summary.batchedWrites}), torn tails cut ${summary.tornTailsCut}, snapshots installed ${summary.snapshotsInstalled} (sent from disk ${summary.snapshotsSentFromDisk}), log entries read back from disk ${summary.entriesReadFromDisk} (to apply ${summary.entriesReadToApply}), lost leader-ack writes found in rollback/ ${summary.lostLeaderAckWritesRecorded}\n`,
  );
  process.stdout.write(
    `sim: ${summary.seeds} seeds, ${summary.failedSeeds.length} violations, ${summary.opsChecked} ops checked, ${seconds.toFixed(1)} s wall, ${opsPerSecond} simulated ops/s, ${speedup.toFixed(0)}x real time\n`,
  );
}
