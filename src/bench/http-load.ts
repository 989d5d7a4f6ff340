import { LocalCluster } from './cluster.js';
import { httpLoop, send } from './http-loop.js';

/**
 * Write throughput and latency over HTTP: C concurrent clients (default 50) each PUT 100-byte
 * values at an ack level (default majority) to the leader of a three-node cluster for S seconds.
 * Usage: node dist/src/bench/http-load.js [seconds] [clients] [ack]
 */
const seconds = Number(process.argv[2] ?? 10);
const clients = Number(process.argv[3] ?? 50);
const ack = process.argv[4] ?? 'majority';
const value = Buffer.alloc(100, 'v');

const cluster = new LocalCluster(['n1', 'n2', 'n3']);
await cluster.init();
for (const id of cluster.ids) cluster.start(id);
try {
  const leader = await cluster.leader();
  const port = Number(new URL(cluster.http(leader)).port);
  const figure = await httpLoop(clients, seconds, (agent, c, n) => send(agent, port, 'PUT', `/v1/kv/c${c}-${n % 1000}?ack=${ack}`, value));
  process.stdout.write(
    `HTTP PUT, ${clients} clients, 100-byte values, ack=${ack}, 3 nodes, ${seconds} s: ${figure.opsPerSecond} writes/s, ` +
      `p50 ${figure.p50Ms.toFixed(2)} ms, p99 ${figure.p99Ms.toFixed(2)} ms, p99.9 ${figure.p999Ms.toFixed(2)} ms, errors ${figure.errors}\n`,
  );
} finally {
  await cluster.stopAll();
}
