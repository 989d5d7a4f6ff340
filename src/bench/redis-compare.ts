/**
 * `npm run bench:redis`: Tandem (3 nodes, majority) beside Redis 7 (a primary and two replicas,
 * appendonly yes, appendfsync always) on this machine, in one run, under the same load
 * generators: redis-benchmark for SET and GET with and without 16-deep pipelines, and our own RESP
 * loop for SET followed by WAIT 1 (Redis's nearest thing to semi-synchronous). Every figure is the
 * median of --rounds runs, interleaved so that drift on a shared machine hits every system alike.
 * With --floor, the floor (floor-node.ts: the least a majority write costs in Node.js here) takes
 * the same SET workloads, so the report says how far Tandem is from it and where the floor stands
 * against Redis.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RespErrorReply } from '../codec/resp.js';
import { RespConnection } from '../net/resp-connection.js';
import { parseFlags } from '../cli/args.js';
import { LocalCluster, median } from './cluster.js';
import { ensureInstalled, redisReplicasCaughtUp, startRedis } from './peers.js';
import { lineChart } from './svg.js';
import { fsyncMs } from './machine.js';
import { figureOf, parseRedisBenchmark, type LatencyFigure } from './redis-benchmark.js';
import { cpuCells, cpuFigure, medianCpu, pidsOf, readCpu, type CpuFigure } from './cpu.js';
import { startFloor, type Floor } from './floor.js';
import { removeOnSignal } from './children.js';

/** A run's latency figures, and what it cost in CPU where that was read (see cpu.ts). */
type Figure = LatencyFigure & Partial<CpuFigure>;

/** Client counts of the latency-against-throughput curve (points labelled with them). */
const curveClients = [1, 4, 16, 50, 128];

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'runs of each measurement', min: 1, max: 20, default: 3 },
  requests: { type: 'int', help: 'requests per redis-benchmark run (times the pipeline depth for a pipelined one)', min: 1000, max: 10_000_000, default: 100_000 },
  seconds: { type: 'int', help: 'seconds per SET+WAIT run', min: 1, max: 600, default: 5 },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 1000, default: 50 },
  install: { type: 'switch', help: 'apt-get install redis-server redis-tools when missing (as root)' },
  quick: { type: 'switch', help: 'one round of 20,000 requests and 2 s loops (about 20 s)' },
  matrix: { type: 'switch', help: 'also: a 90/10 GET/SET mix, one client, 4 KiB values' },
  curve: { type: 'switch', help: 'also: latency against throughput (1-128 clients) for Tandem, Redis and Redis+WAIT 1, drawn as SVG' },
  floor: { type: 'switch', help: 'also: the SET workloads against the floor (floor-node.ts), the least a majority write costs in Node.js here' },
  help: { type: 'switch', help: 'show this help' },
});

if (flags['quick'] === true) {
  flags['rounds'] = 1;
  flags['requests'] = 20_000;
  flags['seconds'] = 2;
}

/**
 * Runs redis-benchmark, SET then GET, one invocation each so that each has its CPU figure (what
 * `pids`, the system's processes, used per request: see cpu.ts): one figure per test. A pipelined
 * run sends `pipeline` times `requests` (as many round trips as an unpipelined one): 100,000
 * requests at -P 16 lasted about a second, a window a single LMDB group commit or snapshot could
 * swing by a sixth.
 */
function redisBenchmark(port: number, pids: readonly number[], pipeline: number, clients = flags['clients'] as number, valueBytes = 100, roundTrips = flags['requests'] as number, tests: readonly string[] = ['set', 'get']): Map<string, Figure> {
  const figures = new Map<string, Figure>();
  const requests = roundTrips * pipeline;
  for (const test of tests) {
    const args = ['-p', String(port), '-t', test, '-c', String(clients), '-n', String(requests), '-d', String(valueBytes), '-r', '100000', '-P', String(pipeline)];
    const before = readCpu(pids);
    const out = execFileSync('redis-benchmark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
    const cpu = cpuFigure(before, readCpu(pids), requests);
    for (const [name, figure] of parseRedisBenchmark(out)) figures.set(name, { ...figure, ...(cpu ?? {}) });
  }
  return figures;
}

/** The floor's round: redis-benchmark's SETs unpipelined and -P 16, and the RESP loop (it answers SET only). */
async function floorRound(floor: Floor, round: number, record: (name: string, figure: Figure | undefined) => void, failures: string[]): Promise<void> {
  const pids = pidsOf(floor.processes);
  for (const pipeline of [1, 16]) {
    try {
      record(`floor SET P${pipeline}`, redisBenchmark(floor.respPort, pids, pipeline, flags['clients'] as number, 100, flags['requests'] as number, ['set']).get('SET'));
    } catch (error) {
      failures.push(`floor redis-benchmark -P ${pipeline} (round ${round}): ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`);
    }
  }
  record('floor SET loop', await setLoop('floor SET loop', floor.respPort, pids, false));
}

/** `clients` connections, each sending 90% GETs and 10% SETs of 100-byte values one after another for `seconds`. */
async function mixLoop(port: number): Promise<Figure> {
  const connections = await Promise.all(Array.from({ length: flags['clients'] as number }, () => RespConnection.open('127.0.0.1', port, 2000)));
  const latencies: number[] = [];
  const value = Buffer.alloc(100, 0x61);
  const ends = performance.now() + (flags['seconds'] as number) * 1000;
  await Promise.all(
    connections.map(async (connection, c) => {
      for (let i = 0; performance.now() < ends; i++) {
        const started = performance.now();
        const key = `mix:${c}:${i % 100}`;
        await connection.call(i % 10 === 0 ? ['SET', key, value] : ['GET', key]);
        latencies.push(performance.now() - started);
      }
    }),
  );
  for (const connection of connections) connection.close();
  latencies.sort((a, b) => a - b);
  return figureOf(latencies, flags['seconds'] as number);
}

/**
 * `clients` connections, each sending SET (and WAIT 1 when asked) one after another for
 * `seconds`; `setup` is sent on each connection first (Tandem's TANDEM.OPTIONS ACK …). The CPU
 * that `pids` (the system's processes) used over the timed part is read from /proc.
 */
async function setLoop(label: string, port: number, pids: readonly number[], withWait: boolean, clients = flags['clients'] as number, setup: readonly string[] = []): Promise<Figure> {
  const connections = await Promise.all(Array.from({ length: clients }, () => RespConnection.open('127.0.0.1', port, 2000)));
  if (setup.length > 0) {
    for (const connection of connections) {
      const answer = await connection.call(setup);
      if (answer instanceof RespErrorReply) throw new Error(`${setup.join(' ')}: ${answer.message}`);
    }
  }
  const latencies: number[] = [];
  const value = Buffer.alloc(100, 0x61);
  const ends = performance.now() + (flags['seconds'] as number) * 1000;
  const cpuBefore = readCpu(pids);
  let failures = 0;
  await Promise.all(
    connections.map(async (connection, c) => {
      for (let i = 0; performance.now() < ends; i++) {
        const started = performance.now();
        const answer = await connection.call(['SET', `loop:${c}:${i % 1000}`, value]);
        const waited = withWait ? await connection.call(['WAIT', '1', '1000']) : 1n;
        if (answer instanceof RespErrorReply || typeof waited !== 'bigint' || waited < 1n) failures++;
        latencies.push(performance.now() - started);
      }
    }),
  );
  const cpu = cpuFigure(cpuBefore, readCpu(pids), latencies.length);
  for (const connection of connections) connection.close();
  if (failures > 0) process.stderr.write(`  ${label}: ${failures} SETs failed or were not confirmed by a replica\n`);
  latencies.sort((a, b) => a - b);
  return { ...figureOf(latencies, flags['seconds'] as number), ...(cpu ?? {}) };
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench -- [--quick] [--matrix] [--curve] [--floor] [--rounds N] [--requests N] [--seconds S] [--clients C] [--install]\n');
    return;
  }
  ensureInstalled('bench:redis', ['redis-server', 'redis-benchmark'], ['redis-server', 'redis-tools'], flags['install'] === true);
  const root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-bench-redis-')));
  const tandem = new LocalCluster(['b1', 'b2', 'b3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  const leader = await tandem.leader();
  const redis = await startRedis(root);
  const redisPort = redis.ports[0] as number;
  const tandemPort = tandem.respPort(leader);
  const tandemPids = pidsOf(tandem.processes.values());
  const redisPids = pidsOf(redis.processes);
  const floor: Floor | null = flags['floor'] === true ? await startFloor() : null;
  const runs: Record<string, Figure[]> = {};
  const curve: Record<string, (Figure & { clients: number })[]> = {};
  const failures: string[] = [];
  // Every measurement starts with every replica caught up: replicas still taking the last
  // workload's stream made the next one wait for them (Redis's WAIT 1 timed out at 1 s after the
  // 4 KiB workload, which once made Tandem look 2.2x Redis + WAIT 1).
  const settle = async (): Promise<void> => {
    await tandem.converged(120_000);
    await redisReplicasCaughtUp(redisPort, 120_000);
  };
  const record = (name: string, figure: Figure | undefined): void => {
    if (figure !== undefined) (runs[name] ??= []).push(figure);
  };
  try {
    const fsync = fsyncMs(root);
    process.stderr.write(`fdatasync of a 100-byte append: median ${fsync.toFixed(3)} ms\n`);
    for (let round = 1; round <= (flags['rounds'] as number); round++) {
      process.stderr.write(`round ${round}\n`);
      const termBefore = (await tandem.status(leader)).term;
      for (const [system, port, pids] of [['tandem', tandemPort, tandemPids], ['redis', redisPort, redisPids]] as const) {
        for (const pipeline of [1, 16]) {
          await settle();
          try {
            const figures = redisBenchmark(port, pids, pipeline);
            record(`${system} SET P${pipeline}`, figures.get('SET'));
            record(`${system} GET P${pipeline}`, figures.get('GET'));
          } catch (error) {
            failures.push(`${system} redis-benchmark -P ${pipeline} (round ${round}): ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`);
          }
        }
        await settle();
        record(`${system} SET loop`, await setLoop(`${system} SET loop`, port, pids, false));
        if (system === 'tandem') {
          for (const ack of ['leader', 'all']) {
            await settle();
            record(`tandem SET loop ack=${ack}`, await setLoop(`tandem SET loop ack=${ack}`, port, pids, false, flags['clients'] as number, ['TANDEM.OPTIONS', 'ACK', ack]));
          }
        }
        if (flags['matrix'] === true) {
          await settle();
          record(`${system} 90% GET / 10% SET loop`, await mixLoop(port));
          // Single-client latency, and 4 KiB values, unpipelined.
          for (const [clients, valueBytes] of [[1, 100], [1, 4096], [50, 4096]] as const) {
            await settle();
            try {
              const figures = redisBenchmark(port, pids, 1, clients, valueBytes, clients === 1 ? Math.max(2000, Math.floor((flags['requests'] as number) / 20)) : (flags['requests'] as number));
              record(`${system} SET c${clients} ${valueBytes}B`, figures.get('SET'));
              record(`${system} GET c${clients} ${valueBytes}B`, figures.get('GET'));
            } catch (error) {
              failures.push(`${system} redis-benchmark -c ${clients} -d ${valueBytes} (round ${round}): ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`);
            }
          }
        }
      }
      const status = await tandem.status(leader);
      if (status.term !== termBefore || status.role !== 'leader') failures.push(`round ${round}: Tandem's leadership changed during the run (term ${termBefore} → ${status.term}); its figures for this round include an election`);
      await settle();
      record('redis SET+WAIT 1 loop', await setLoop('redis SET+WAIT 1 loop', redisPort, redisPids, true));
      if (floor !== null) await floorRound(floor, round, record, failures);
    }
    if (flags['curve'] === true) {
      process.stderr.write('latency against throughput\n');
      for (const clients of curveClients) {
        for (const [name, port, pids, withWait] of [['Tandem, ack=majority', tandemPort, tandemPids, false], ['Redis, appendfsync always', redisPort, redisPids, false], ['Redis, SET + WAIT 1', redisPort, redisPids, true]] as const) {
          await settle();
          (curve[name] ??= []).push({ clients, ...(await setLoop(`${name}, ${clients} clients`, port, pids, withWait, clients)) });
        }
      }
    }
  } catch (error) {
    process.stderr.write(tandem.exits());
    throw error;
  } finally {
    for (const child of redis.processes) child.kill('SIGKILL');
    floor?.stop();
    await tandem.stopAll();
    rmSync(root, { recursive: true, force: true });
  }
  const rows = Object.entries(runs).map(([name, figures]) => ({
    name,
    opsPerSecond: Math.round(median(figures.map((f) => f.opsPerSecond))),
    p50Ms: Number(median(figures.map((f) => f.p50Ms)).toFixed(2)),
    p99Ms: Number(median(figures.map((f) => f.p99Ms)).toFixed(2)),
    p999Ms: Number(median(figures.map((f) => f.p999Ms)).toFixed(2)),
    ...medianCpu(figures),
    runs: figures.length,
  }));
  const ratio = (a: string, b: string): string => {
    const x = rows.find((r) => r.name === a);
    const y = rows.find((r) => r.name === b);
    return x === undefined || y === undefined ? '?' : (x.opsPerSecond / y.opsPerSecond).toFixed(2);
  };
  // Each Tandem (or floor) row against the Redis row of the same workload; Tandem's ack=majority
  // loop also against Redis SET + WAIT 1, the same durability (on two machines' disks before OK).
  const peerOf = (name: string): string | null => {
    const system = ['tandem ', 'floor '].find((prefix) => name.startsWith(prefix));
    return system === undefined ? null : `redis ${name.slice(system.length).replace(/ ack=\w+$/, '')}`;
  };
  const lines = [
    '| system, workload | ops/s (median) | p50 ms | p99 ms | p99.9 ms | CPU µs/op | main thread waiting for a core | runs | Tandem / Redis (ops/s) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const peer = peerOf(r.name);
      const versus = peer === null ? '' : r.name === 'tandem SET loop' || r.name === 'floor SET loop' ? `${ratio(r.name, peer)} (vs SET+WAIT 1: ${ratio(r.name, 'redis SET+WAIT 1 loop')})` : ratio(r.name, peer);
      return `| ${r.name} | ${r.opsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.p999Ms} | ${cpuCells(r)} | ${r.runs} | ${versus} |`;
    }),
  ];
  lines.push('', `Tandem majority SET / Redis always SET (redis-benchmark, unpipelined): ${ratio('tandem SET P1', 'redis SET P1')}`);
  lines.push(`Tandem majority SET / Redis always SET (redis-benchmark, -P 16): ${ratio('tandem SET P16', 'redis SET P16')}`);
  lines.push(`Tandem majority SET / Redis SET+WAIT 1 (same RESP loop): ${ratio('tandem SET loop', 'redis SET+WAIT 1 loop')}`);
  if (floor !== null) {
    lines.push(`Tandem / floor, SETs (redis-benchmark unpipelined, -P 16, RESP loop): ${ratio('tandem SET P1', 'floor SET P1')}, ${ratio('tandem SET P16', 'floor SET P16')}, ${ratio('tandem SET loop', 'floor SET loop')}`);
    lines.push(`Floor / Redis SET+WAIT 1 (same RESP loop): ${ratio('floor SET loop', 'redis SET+WAIT 1 loop')}`);
  }
  for (const failure of failures) lines.push(`note: ${failure}`);
  if (Object.keys(curve).length > 0) {
    lines.push('', '| latency against throughput (our RESP loop, 100-byte SETs) | clients | ops/s | p50 ms | p99 ms | p99.9 ms | CPU µs/op | main thread waiting for a core |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, points] of Object.entries(curve)) {
      for (const p of points) lines.push(`| ${name} | ${p.clients} | ${Math.round(p.opsPerSecond)} | ${p.p50Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${p.p999Ms.toFixed(2)} | ${cpuCells(p)} |`);
    }
    mkdirSync('bench/results', { recursive: true });
    for (const [quantileName, pick] of [['p50', (f: Figure) => f.p50Ms], ['p99', (f: Figure) => f.p99Ms]] as const) {
      const series = Object.entries(curve).map(([name, points]) => ({ name, points: points.map((p) => [p.opsPerSecond, pick(p)] as const), labels: points.map((p) => `${p.clients}`) }));
      const file = join('bench/results', `latency-throughput-${quantileName}.svg`);
      writeFileSync(file, lineChart({ title: `SET latency (${quantileName}) against throughput, 3 nodes each, one machine`, xLabel: 'acknowledged SETs per second (each point: its number of concurrent clients)', yLabel: `${quantileName} latency, ms (log scale)`, series, logY: true }));
      process.stderr.write(`wrote ${file}\n`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `redis-compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: { cores: (await import('node:os')).cpus().length }, curve, settings: { clients: flags['clients'], requests: flags['requests'], pipelinedRequests: 'requests × the pipeline depth', seconds: flags['seconds'], valueBytes: 100, tandem: '3 nodes, ack majority, consistency session', redis: `${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}; primary + 2 replicas, appendonly yes, appendfsync always`, ...(floor === null ? {} : { floor: 'floor-node.ts: 3 processes, a turn\'s SETs one entry, O_DSYNC append on leader and followers, +OK after the leader\'s and one follower\'s' }) }, rows, failures }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
