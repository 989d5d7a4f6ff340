import { parentPort, workerData } from 'node:worker_threads';
import { runSeeds } from '../sim/batch.js';

/**
 * A simulator worker: asks for a chunk of seeds, runs them, posts the totals, asks again. Handing
 * out small chunks keeps both cores busy even when some seeds take much longer than others.
 */
const { nodes, bugs } = workerData as { nodes: number | undefined; bugs: Record<string, boolean> };
const port = parentPort;
if (port !== null) {
  port.on('message', (chunk: { first: number; count: number } | null) => {
    if (chunk === null) {
      port.close();
      return;
    }
    port.postMessage(runSeeds(chunk.first, chunk.count, 1, 0, nodes, bugs));
  });
  port.postMessage(null);
}
