import { request, Agent } from 'node:http';
import { LocalCluster, quantile } from './cluster.js';

/**
 * Write throughput and latency over HTTP: C concurrent clients (default 50) each PUT 100-byte
 * values at an ack level (default majority) to the leader of a three-node cluster for S seconds.
 * Usage: node dist/src/bench/http-load.js [seconds] [clients] [ack]
 */
const seconds = Number(process.argv[2] ?? 10);
const clients = Number(process.argv[3] ?? 50);
const ack = process.argv[4] ?? 'majority';
const value = Buffer.alloc(100, 'v');
const agent = new Agent({ keepAlive: true, maxSockets: clients });

function put(port: number, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: `/v1/kv/${key}?ack=${ack}`, agent, headers: { 'content-length': value.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(value);
  });
}

const cluster = new LocalCluster(['n1', 'n2', 'n3']);
await cluster.init();
for (const id of cluster.ids) cluster.start(id);
try {
  const leader = await cluster.leader();
  const port = Number(new URL(cluster.http(leader)).port);
  const latencies: number[] = [];
  let errors = 0;
  const warmupEnd = performance.now() + 1000;
  const end = warmupEnd + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let n = 0; performance.now() < end; n++) {
        const started = performance.now();
        const status = await put(port, `c${c}-${n % 1000}`);
        if (started < warmupEnd) continue;
        if (status === 200) latencies.push(performance.now() - started);
        else errors++;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  process.stdout.write(
    `HTTP PUT, ${clients} clients, 100-byte values, ack=${ack}, 3 nodes, ${seconds} s: ${(latencies.length / seconds).toFixed(0)} writes/s, ` +
      `p50 ${quantile(latencies, 0.5).toFixed(2)} ms, p99 ${quantile(latencies, 0.99).toFixed(2)} ms, p99.9 ${quantile(latencies, 0.999).toFixed(2)} ms, errors ${errors}\n`,
  );
} finally {
  agent.destroy();
  await cluster.stopAll();
}
