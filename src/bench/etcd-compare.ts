/**
 * `npm run bench:etcd`: Tandem (3 nodes, ack=majority, over its HTTP API) beside etcd 3.4
 * (3 members, default settings: every put majority-committed and fsynced, over its JSON gateway)
 * on this machine, in one run, under one HTTP load generator: C keep-alive clients each sending
 * 100-byte puts one after another for S seconds (with --matrix also 4 KiB puts, a 90/10 mix of
 * linearizable reads and puts, reads only, and a single client; with --grpc also etcd's own
 * gRPC load tester). Rounds are interleaved; figures are medians.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../cli/args.js';
import { LocalCluster, median } from './cluster.js';
import { ensureInstalled, etcdLeaderPort, startEtcd } from './peers.js';
import { httpLoop, send, type LoadFigure } from './http-loop.js';
import { startFloor, type Floor } from './floor.js';
import { cpuCells, medianCpu, pidsOf } from './cpu.js';
import { removeOnSignal } from './children.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'interleaved rounds', min: 1, max: 20, default: 3 },
  seconds: { type: 'int', help: 'seconds of load per run', min: 1, max: 600, default: 10 },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 1000, default: 50 },
  install: { type: 'switch', help: 'apt-get install etcd-server when missing (as root)' },
  matrix: { type: 'switch', help: 'also: 4 KiB writes, 90% reads / 10% writes, reads only, one client' },
  grpc: { type: 'switch', help: "also etcd through its own gRPC load tester: etcdctl check perf --load=xl (60 s)" },
  floor: { type: 'switch', help: 'also: the write workloads against the floor (floor-node.ts) over HTTP, the least a majority write costs in Node.js here' },
  help: { type: 'switch', help: 'show this help' },
});

const value = Buffer.alloc(100, 0x76);
const bigValue = Buffer.alloc(4096, 0x77);
/** Keys each client writes and reads in turn. */
const keysPerClient = 100;

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:etcd -- [--rounds N] [--seconds S] [--clients C] [--matrix] [--grpc] [--floor] [--install]\n');
    return;
  }
  if (flags['grpc'] === true) ensureInstalled('bench:etcd --grpc', ['etcd', 'etcdctl'], ['etcd-server', 'etcd-client'], flags['install'] === true);
  else ensureInstalled('bench:etcd', ['etcd'], ['etcd-server'], flags['install'] === true);
  const root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-bench-etcd-')));
  const tandem = new LocalCluster(['t1', 't2', 't3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  const etcd = await startEtcd(root);
  const floor: Floor | null = flags['floor'] === true ? await startFloor() : null;
  const runs: Record<string, LoadFigure[]> = {};
  let grpcWritesPerSecond: number | null = null;
  try {
    const leader = await tandem.leader();
    const tandemPort = Number(new URL(tandem.http(leader)).port);
    const etcdPort = await etcdLeaderPort(etcd.ports);
    const key = (c: number, n: number): string => `c${c}-${n % keysPerClient}`;
    const pids: Record<string, number[]> = { tandem: pidsOf(tandem.processes.values()), etcd: pidsOf(etcd.processes), floor: floor === null ? [] : pidsOf(floor.processes) };
    // One request of each kind per system; every status but 200 counts as an error, and a
    // refused connection too (it does not end the benchmark).
    const ops: Record<string, { put(agent: Agent, c: number, n: number, body: Buffer): Promise<number>; get(agent: Agent, c: number, n: number): Promise<number> }> = {
      tandem: {
        put: (agent, c, n, body) => send(agent, tandemPort, 'PUT', `/v1/kv/${key(c, n)}?ack=majority`, body).catch(() => 0),
        get: (agent, c, n) => send(agent, tandemPort, 'GET', `/v1/kv/${key(c, n)}?consistency=linearizable`, Buffer.alloc(0)).catch(() => 0),
      },
      etcd: {
        put: (agent, c, n, body) => send(agent, etcdPort, 'POST', '/v3/kv/put', Buffer.from(JSON.stringify({ key: Buffer.from(key(c, n)).toString('base64'), value: body.toString('base64') })), 'application/json').catch(() => 0),
        get: (agent, c, n) => send(agent, etcdPort, 'POST', '/v3/kv/range', Buffer.from(JSON.stringify({ key: Buffer.from(key(c, n)).toString('base64') })), 'application/json').catch(() => 0),
      },
    };
    // The floor takes writes only: it runs the write workloads.
    if (floor !== null) {
      ops['floor'] = {
        put: (agent, c, n, body) => send(agent, floor.httpPort, 'PUT', `/v1/kv/${key(c, n)}?ack=majority`, body).catch(() => 0),
        get: () => Promise.resolve(0),
      };
    }
    const clients = flags['clients'] as number;
    const workloads: { name: string; clients: number; writesOnly?: true; run: (o: (typeof ops)[string]) => (agent: Agent, c: number, n: number) => Promise<number> }[] = [
      { name: 'writes, 100 B', clients, writesOnly: true, run: (o) => (agent, c, n) => o.put(agent, c, n, value) },
    ];
    if (flags['matrix'] === true) {
      workloads.push(
        { name: 'writes, 4 KiB', clients, writesOnly: true, run: (o) => (agent, c, n) => o.put(agent, c, n, bigValue) },
        { name: '90% reads / 10% writes, 100 B', clients, run: (o) => (agent, c, n) => (n % 10 === 0 ? o.put(agent, c, n, value) : o.get(agent, c, n)) },
        { name: 'reads only (linearizable)', clients, run: (o) => (agent, c, n) => o.get(agent, c, n) },
        { name: 'writes, 100 B', clients: 1, writesOnly: true, run: (o) => (agent, c, n) => o.put(agent, c, n, value) },
      );
      // Reads find every key they ask for.
      for (const o of Object.values(ops)) {
        const agent = new Agent({ keepAlive: true, maxSockets: 50 });
        await Promise.all(Array.from({ length: clients }, async (_, c) => {
          for (let n = 0; n < keysPerClient; n++) await o.put(agent, c, n, value);
        }));
        agent.destroy();
      }
    }
    for (let round = 1; round <= (flags['rounds'] as number); round++) {
      process.stderr.write(`round ${round}\n`);
      for (const workload of workloads) {
        for (const system of ['tandem', 'etcd', ...(floor !== null && workload.writesOnly === true ? ['floor'] : [])]) {
          (runs[`${system}: ${workload.name}, ${workload.clients} client${workload.clients === 1 ? '' : 's'}`] ??= []).push(await httpLoop(workload.clients, flags['seconds'] as number, workload.run(ops[system] as (typeof ops)[string]), pids[system]));
        }
      }
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
    floor?.stop();
    await tandem.stopAll();
    rmSync(root, { recursive: true, force: true });
  }
  const rows = Object.entries(runs).map(([name, figures]) => ({
    name,
    opsPerSecond: median(figures.map((f) => f.opsPerSecond)),
    p50Ms: Number(median(figures.map((f) => f.p50Ms)).toFixed(2)),
    p99Ms: Number(median(figures.map((f) => f.p99Ms)).toFixed(2)),
    p999Ms: Number(median(figures.map((f) => f.p999Ms)).toFixed(2)),
    errors: figures.reduce((sum, f) => sum + f.errors, 0),
    ...medianCpu(figures),
    runs: figures.map((f) => f.opsPerSecond),
  }));
  // Tandem's rows (and the floor's) against etcd's row of the same workload.
  const versus = (name: string): string => {
    const system = ['tandem: ', 'floor: '].find((prefix) => name.startsWith(prefix));
    if (system === undefined) return '';
    const peer = rows.find((row) => row.name === name.replace(system, 'etcd: '));
    const own = rows.find((row) => row.name === name);
    return peer === undefined || own === undefined ? '?' : (own.opsPerSecond / peer.opsPerSecond).toFixed(2);
  };
  const lines = ['| system: workload (HTTP) | ops/s (median) | p50 ms | p99 ms | p99.9 ms | CPU µs/op | main thread waiting for a core | errors | each run | Tandem (or floor) / etcd (ops/s) |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |'];
  for (const r of rows) lines.push(`| ${r.name} | ${r.opsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.p999Ms} | ${cpuCells(r)} | ${r.errors} | ${r.runs.join(' / ')} | ${versus(r.name)} |`);
  lines.push('');
  const t = rows[0]?.opsPerSecond ?? 0;
  if (grpcWritesPerSecond !== null) {
    lines.push(`etcd through its own gRPC load tester (\`etcdctl check perf --load=xl\`, 60 s, one run): ${grpcWritesPerSecond} writes/s; Tandem over HTTP / that: ${(t / grpcWritesPerSecond).toFixed(2)}`);
  }
  const floorWrites = rows.find((r) => r.name === `floor: writes, 100 B, ${flags['clients']} clients`);
  if (floorWrites !== undefined && t > 0) lines.push(`Tandem / floor (writes, 100 B, ${flags['clients']} clients, HTTP): ${(t / floorWrites.opsPerSecond).toFixed(2)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const version = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'etcd';
  const file = join('bench/results', `etcd-compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ settings: { clients: flags['clients'], seconds: flags['seconds'], rounds: flags['rounds'], tandem: '3 nodes, HTTP PUT ack=majority, GET consistency=linearizable', etcd: `${version}; 3 members, default settings, JSON gateway POST /v3/kv/put and /v3/kv/range (linearizable)`, ...(floor === null ? {} : { floor: 'floor-node.ts over HTTP: PUT /v1/kv/<key>, a turn\'s writes one entry, O_DSYNC append on leader and followers, 200 after the leader\'s and one follower\'s (write workloads only)' }) }, rows, etcdGrpcWritesPerSecond: grpcWritesPerSecond }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
