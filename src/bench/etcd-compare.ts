/**
 * `npm run bench:etcd`: Tandem (3 nodes, ack=majority, over its HTTP API) beside etcd 3.4
 * (3 members, default settings: every put majority-committed and fsynced, over its JSON gateway)
 * on this machine, in one run, under one HTTP load generator: C keep-alive clients each sending
 * 100-byte puts one after another for S seconds. Rounds are interleaved; figures are medians.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../cli/args.js';
import { freePort, LocalCluster, quantile, waitFor } from './cluster.js';
import { httpLoop, send, type LoadFigure } from './http-loop.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'interleaved rounds', min: 1, max: 20, default: 3 },
  seconds: { type: 'int', help: 'seconds of load per run', min: 1, max: 600, default: 10 },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 1000, default: 50 },
  install: { type: 'switch', help: 'apt-get install etcd-server when missing (as root)' },
  help: { type: 'switch', help: 'show this help' },
});

const value = Buffer.alloc(100, 0x76);
const valueBase64 = value.toString('base64');

async function startEtcd(root: string): Promise<{ ports: number[]; processes: ChildProcess[] }> {
  const names = ['e1', 'e2', 'e3'];
  const clientPorts = [await freePort(), await freePort(), await freePort()];
  const peerPorts = [await freePort(), await freePort(), await freePort()];
  const initialCluster = names.map((name, k) => `${name}=http://127.0.0.1:${peerPorts[k]}`).join(',');
  const processes = names.map((name, k) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    return spawn(
      'etcd',
      [
        '--name', name, '--data-dir', dir,
        '--listen-client-urls', `http://127.0.0.1:${clientPorts[k]}`, '--advertise-client-urls', `http://127.0.0.1:${clientPorts[k]}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPorts[k]}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[k]}`,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${process.pid}`,
      ],
      { stdio: 'ignore' },
    );
  });
  await waitFor('etcd to elect a leader', 30_000, async () => {
    const response = await fetch(`http://127.0.0.1:${clientPorts[0]}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('probe').toString('base64'), value: valueBase64 }) });
    return response.status === 200;
  });
  return { ports: clientPorts, processes };
}

async function etcdLeaderPort(ports: readonly number[]): Promise<number> {
  for (const port of ports) {
    const response = await fetch(`http://127.0.0.1:${port}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    const status = (await response.json()) as { header?: { member_id?: string }; leader?: string };
    if (status.leader !== undefined && status.leader === status.header?.member_id) return port;
  }
  return ports[0] as number;
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:etcd -- [--rounds N] [--seconds S] [--clients C] [--install]\n');
    return;
  }
  if (spawnSync('sh', ['-c', 'command -v etcd']).status !== 0) {
    if (flags['install'] === true && process.getuid?.() === 0) execFileSync('apt-get', ['install', '-y', 'etcd-server'], { stdio: 'inherit' });
    else {
      process.stderr.write('bench:etcd needs etcd: apt-get install -y etcd-server (or run with --install as root)\n');
      process.exit(2);
    }
  }
  const root = mkdtempSync(join(tmpdir(), 'tandem-bench-etcd-'));
  const tandem = new LocalCluster(['t1', 't2', 't3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  const etcd = await startEtcd(root);
  const runs: Record<string, LoadFigure[]> = { tandem: [], etcd: [] };
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
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const version = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'etcd';
  const file = join('bench/results', `etcd-compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ settings: { clients: flags['clients'], seconds: flags['seconds'], rounds: flags['rounds'], tandem: '3 nodes, HTTP PUT, ack=majority', etcd: `${version}; 3 members, default settings, JSON gateway POST /v3/kv/put` }, rows }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
