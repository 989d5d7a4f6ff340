import { parentPort, workerData } from 'node:worker_threads';
import { runSeeds } from '../sim/batch.js';

/** Runs every `step`-th seed of a batch in a worker thread and posts the totals back. */
const { first, count, step, offset, nodes, bugs } = workerData as {
  first: number;
  count: number;
  step: number;
  offset: number;
  nodes: number | undefined;
  bugs: Record<string, boolean>;
};
parentPort?.postMessage(runSeeds(first, count, step, offset, nodes, bugs));
