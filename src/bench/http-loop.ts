import { Agent, request } from 'node:http';
import { quantile } from './cluster.js';

/** What one load run measured. */
export interface LoadFigure {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly errors: number;
}

/** One HTTP request with a body over `agent`; resolves with the status. */
export function send(agent: Agent, port: number, method: string, path: string, body: Buffer, contentType = 'application/octet-stream'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { 'content-length': body.length, 'content-type': contentType } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The HTTP load generator of every benchmark: `clients` keep-alive loops, each sending one
 * request after another for `seconds` after a 1 s warm-up; a 200 counts, anything else is an error.
 */
export async function httpLoop(clients: number, seconds: number, put: (agent: Agent, client: number, n: number) => Promise<number>): Promise<LoadFigure> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  let errors = 0;
  const warmupEnd = performance.now() + 1000;
  const end = warmupEnd + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let n = 0; performance.now() < end; n++) {
          const started = performance.now();
          const status = await put(agent, c, n);
          if (started < warmupEnd) continue;
          if (status === 200) latencies.push(performance.now() - started);
          else errors++;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  latencies.sort((a, b) => a - b);
  return { opsPerSecond: Math.round(latencies.length / seconds), p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), p999Ms: quantile(latencies, 0.999), errors };
}
