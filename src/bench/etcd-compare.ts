/**
 * `npm run bench:etcd`: Tandem (3 nodes, ack=majority, over its HTTP API) beside etcd 3.4
 * (3 members, default settings: every put majority-committed and fsynced, over its JSON gateway)
 * on this machine, in one run, under one HTTP load generator: C keep-alive clients each sending
 * 100-byte puts one after another for S seconds. Rounds are interleaved; figures are medians.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../cli/args.js';
import { LocalCluster, quantile } from './cluster.js';
import { ensureInstalled, etcdLeaderPort, startEtcd } from './peers.js';
import { httpLoop, send, type LoadFigure } from './http-loop.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'interleaved rounds', min: 1, max: 20, default: 3 },
  seconds: { type: 'int', help: 'seconds of load per run', min: 1, max: 600, default: 10 },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 1000, default: 50 },
  install: { type: 'switch', help: 'apt-get install etcd-server when missing (as root)' },
  grpc: { type: 'switch', help: "also etcd through its own gRPC load tester: etcdctl check perf --load=xl (60 s)" },
  help: { type: 'switch', help: 'show this help' },
});

const value = Buffer.alloc(100, 0x76);
const valueBase64 = value.toString('base64');

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:etcd -- [--rounds N] [--seconds S] [--clients C] [--grpc] [--install]\n');
    return;
  }
  ensureInstalled('bench:etcd', ['etcd'], ['etcd-server'], flags['install'] === true);
  const root = mkdtempSync(join(tmpdir(), 'tandem-bench-etcd-'));
  const tandem = new LocalCluster(['t1', 't2', 't3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  const etcd = await startEtcd(root);
  const runs: Record<string, LoadFigure[]> = { tandem: [], etcd: [] };
  let grpcWritesPerSecond: number | null = null;
  const loop = (put: (agent: Agent, client: number, n: number) => Promise<number>): Promise<LoadFigure> =>
    // A refused connection counts as an error here, not as the end of the benchmark.
    httpLoop(flags['clients'] as number, flags['seconds'] as number, (agent, c, n) => put(agent, c, n).catch(() => 0));
  try {
    const leader = await tandem.leader();
    const tandemPort = Number(new URL(tandem.http(leader)).port);
    const etcdPort = await etcdLeaderPort(etcd.ports);
    for (let round = 1; round <= (flags['rounds'] as number); round++) {
      process.stderr.write(`round ${round}\n`);
      runs['tandem']?.push(await loop((agent, c, n) => send(agent, tandemPort, 'PUT', `/v1/kv/c${c}-${n % 1000}?ack=majority`, value, 'application/octet-stream')));
      runs['etcd']?.push(
        await loop((agent, c, n) => send(agent, etcdPort, 'POST', '/v3/kv/put', Buffer.from(JSON.stringify({ key: Buffer.from(`c${c}-${n % 1000}`).toString('base64'), value: valueBase64 })), 'application/json')),
      );
    }
    if (flags['grpc'] === true) {
      process.stderr.write('etcdctl check perf --load=xl (60 s)\n');
      const check = spawnSync('etcdctl', ['--endpoints', etcd.ports.map((p) => `127.0.0.1:${p}`).join(','), 'check', 'perf', '--load=xl'], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, ETCDCTL_API: '3' } });
      const match = /Throughput[^0-9]*(\d+) writes\/s/.exec(`${check.stdout}${check.stderr}`);
      grpcWritesPerSecond = match === null ? null : Number(match[1]);
      if (grpcWritesPerSecond === null) process.stderr.write(`etcdctl check perf gave no throughput: ${check.stderr.slice(-500)}\n`);
    }
  } finally {
    for (const child of etcd.processes) child.kill('SIGKILL');
    await tandem.stopAll();
    rmSync(root, { recursive: true, force: true });
  }
  const median = (values: number[]): number => quantile([...values].sort((a, b) => a - b), 0.5);
  const rows = Object.entries(runs).map(([name, figures]) => ({
    name,
    opsPerSecond: median(figures.map((f) => f.opsPerSecond)),
    p50Ms: Number(median(figures.map((f) => f.p50Ms)).toFixed(2)),
    p99Ms: Number(median(figures.map((f) => f.p99Ms)).toFixed(2)),
    errors: figures.reduce((sum, f) => sum + f.errors, 0),
    runs: figures.map((f) => f.opsPerSecond),
  }));
  const lines = ['| system (HTTP, 100-byte puts) | ops/s (median) | p50 ms | p99 ms | errors | each run |', '| --- | ---: | ---: | ---: | ---: | --- |'];
  for (const r of rows) lines.push(`| ${r.name} | ${r.opsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.runs.join(' / ')} |`);
  const [t, e] = [rows[0]?.opsPerSecond ?? 0, rows[1]?.opsPerSecond ?? 1];
  lines.push('', `Tandem (ack=majority) / etcd: ${(t / e).toFixed(2)}`);
  if (grpcWritesPerSecond !== null) {
    lines.push(`etcd through its own gRPC load tester (\`etcdctl check perf --load=xl\`, 60 s, one run): ${grpcWritesPerSecond} writes/s; Tandem over HTTP / that: ${(t / grpcWritesPerSecond).toFixed(2)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const version = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'etcd';
  const file = join('bench/results', `etcd-compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ settings: { clients: flags['clients'], seconds: flags['seconds'], rounds: flags['rounds'], tandem: '3 nodes, HTTP PUT, ack=majority', etcd: `${version}; 3 members, default settings, JSON gateway POST /v3/kv/put` }, rows, etcdGrpcWritesPerSecond: grpcWritesPerSecond }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
