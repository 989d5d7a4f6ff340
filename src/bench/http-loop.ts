import { Agent, request } from 'node:http';
import { quantile } from './cluster.js';
import { cpuFigure, readCpu, type CpuFigure, type CpuReading } from './cpu.js';

/** What one load run measured. */
export interface LoadFigure extends Partial<CpuFigure> {
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
 * With `pids` (the system's processes), also the CPU they used per answered request over the
 * measured part (see cpu.ts).
 */
export async function httpLoop(clients: number, seconds: number, put: (agent: Agent, client: number, n: number) => Promise<number>, pids: readonly number[] = []): Promise<LoadFigure> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  let errors = 0;
  const warmupEnd = performance.now() + 1000;
  const end = warmupEnd + seconds * 1000;
  // Read when the first measured request starts, so the CPU covers what the latencies do.
  let cpuBefore: CpuReading | null | undefined;
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let n = 0; performance.now() < end; n++) {
          const started = performance.now();
          if (cpuBefore === undefined && started >= warmupEnd && pids.length > 0) cpuBefore = readCpu(pids);
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
  const cpu = pids.length > 0 ? cpuFigure(cpuBefore ?? null, readCpu(pids), latencies.length) : null;
  latencies.sort((a, b) => a - b);
  return { opsPerSecond: Math.round(latencies.length / seconds), p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), p999Ms: quantile(latencies, 0.999), errors, ...(cpu ?? {}) };
}
