/**
 * `npm run bench:redis`: Tandem (3 nodes, majority) beside Redis 7 (a primary and two replicas,
 * appendonly yes, appendfsync always) on this machine, in one run, under the same load
 * generators: redis-benchmark for SET and GET with and without 16-deep pipelines, and our own RESP
 * loop for SET followed by WAIT 1 (Redis's nearest thing to semi-synchronous). Every figure is the
 * median of --rounds runs, interleaved so that drift on a shared machine hits every system alike.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RespErrorReply } from '../codec/resp.js';
import { RespConnection } from '../net/resp-connection.js';
import { parseFlags } from '../cli/args.js';
import { freePort, LocalCluster, quantile, waitFor } from './cluster.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'runs of each measurement', min: 1, max: 20, default: 3 },
  requests: { type: 'int', help: 'requests per redis-benchmark run', min: 1000, max: 10_000_000, default: 100_000 },
  seconds: { type: 'int', help: 'seconds per SET+WAIT run', min: 1, max: 600, default: 5 },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 1000, default: 50 },
  install: { type: 'switch', help: 'apt-get install redis-server redis-tools when missing (as root)' },
  quick: { type: 'switch', help: 'one round of 20,000 requests and 2 s loops (about 20 s)' },
  matrix: { type: 'switch', help: 'also: a 90/10 GET/SET mix, one client, 4 KiB values' },
  help: { type: 'switch', help: 'show this help' },
});

if (flags['quick'] === true) {
  flags['rounds'] = 1;
  flags['requests'] = 20_000;
  flags['seconds'] = 2;
}

interface Figure {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

function ensureRedis(): void {
  if (have('redis-server') && have('redis-benchmark')) return;
  if (flags['install'] === true && process.getuid?.() === 0) {
    execFileSync('apt-get', ['install', '-y', 'redis-server', 'redis-tools'], { stdio: 'inherit' });
    return;
  }
  process.stderr.write('bench:redis needs redis-server and redis-benchmark: apt-get install -y redis-server redis-tools (or run with --install as root)\n');
  process.exit(2);
}

/** fdatasync of a 100-byte append, median over 200, in ms: what one durable write costs here. */
function fsyncMs(dir: string): number {
  const file = join(dir, 'fsync-probe');
  const fd = openSync(file, 'a');
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const started = performance.now();
    writeSync(fd, Buffer.alloc(100, 1));
    fdatasyncSync(fd);
    times.push(performance.now() - started);
  }
  closeSync(fd);
  return quantile(times.sort((a, b) => a - b), 0.5);
}

/** Runs redis-benchmark and reads its CSV: one figure per test (SET, GET). */
function redisBenchmark(port: number, pipeline: number, clients = flags['clients'] as number, valueBytes = 100, requests = flags['requests'] as number): Map<string, Figure> {
  const args = ['-p', String(port), '-t', 'set,get', '-c', String(clients), '-n', String(requests), '-d', String(valueBytes), '-r', '100000', '-P', String(pipeline), '--csv'];
  const out = execFileSync('redis-benchmark', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
  const figures = new Map<string, Figure>();
  for (const line of out.split('\n')) {
    const cells = line.split(',').map((c) => c.replace(/"/g, ''));
    if (cells.length < 7 || cells[0] === 'test') continue;
    figures.set(cells[0] as string, { opsPerSecond: Number(cells[1]), p50Ms: Number(cells[4]), p99Ms: Number(cells[6]) });
  }
  return figures;
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
  return { opsPerSecond: latencies.length / (flags['seconds'] as number), p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}

/** `clients` connections, each sending SET (and WAIT 1 when asked) one after another for `seconds`. */
async function setLoop(port: number, withWait: boolean): Promise<Figure> {
  const connections = await Promise.all(Array.from({ length: flags['clients'] as number }, () => RespConnection.open('127.0.0.1', port, 2000)));
  const latencies: number[] = [];
  const value = Buffer.alloc(100, 0x61);
  const ends = performance.now() + (flags['seconds'] as number) * 1000;
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
  for (const connection of connections) connection.close();
  if (failures > 0) process.stderr.write(`  (${failures} SETs failed or were not confirmed by a replica)\n`);
  latencies.sort((a, b) => a - b);
  return { opsPerSecond: latencies.length / (flags['seconds'] as number), p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}

async function startRedis(root: string): Promise<{ port: number; processes: ChildProcess[] }> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const processes = ports.map((port, k) => {
    const dir = join(root, `redis-${k}`);
    mkdirSync(dir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'];
    if (k > 0) args.push('--replicaof', '127.0.0.1', String(ports[0]));
    return spawn('redis-server', args, { stdio: 'ignore' });
  });
  const primary = ports[0] as number;
  await waitFor('Redis with two connected replicas', 20_000, async () => {
    const connection = await RespConnection.open('127.0.0.1', primary, 500);
    const info = String(await connection.call(['INFO', 'replication']));
    connection.close();
    return /connected_slaves:2/.test(info) && (info.match(/state=online/g) ?? []).length === 2;
  });
  return { port: primary, processes };
}

function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench -- [--quick] [--matrix] [--rounds N] [--requests N] [--seconds S] [--clients C] [--install]\n');
    return;
  }
  ensureRedis();
  const root = mkdtempSync(join(tmpdir(), 'tandem-bench-redis-'));
  const tandem = new LocalCluster(['b1', 'b2', 'b3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  const leader = await tandem.leader();
  const redis = await startRedis(root);
  const tandemPort = tandem.respPort(leader);
  const runs: Record<string, Figure[]> = {};
  const failures: string[] = [];
  const record = (name: string, figure: Figure | undefined): void => {
    if (figure !== undefined) (runs[name] ??= []).push(figure);
  };
  try {
    const fsync = fsyncMs(root);
    process.stderr.write(`fdatasync of a 100-byte append: median ${fsync.toFixed(3)} ms\n`);
    for (let round = 1; round <= (flags['rounds'] as number); round++) {
      process.stderr.write(`round ${round}\n`);
      const termBefore = (await tandem.status(leader)).term;
      for (const [system, port] of [['tandem', tandemPort], ['redis', redis.port]] as const) {
        for (const pipeline of [1, 16]) {
          try {
            const figures = redisBenchmark(port, pipeline);
            record(`${system} SET P${pipeline}`, figures.get('SET'));
            record(`${system} GET P${pipeline}`, figures.get('GET'));
          } catch (error) {
            failures.push(`${system} redis-benchmark -P ${pipeline} (round ${round}): ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`);
          }
        }
        record(`${system} SET loop`, await setLoop(port, false));
        if (flags['matrix'] === true) {
          record(`${system} 90% GET / 10% SET loop`, await mixLoop(port));
          // Single-client latency, and 4 KiB values, unpipelined.
          for (const [clients, valueBytes] of [[1, 100], [1, 4096], [50, 4096]] as const) {
            try {
              const figures = redisBenchmark(port, 1, clients, valueBytes, clients === 1 ? Math.max(2000, Math.floor((flags['requests'] as number) / 20)) : (flags['requests'] as number));
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
      record('redis SET+WAIT 1 loop', await setLoop(redis.port, true));
    }
  } finally {
    for (const child of redis.processes) child.kill('SIGKILL');
    await tandem.stopAll();
    rmSync(root, { recursive: true, force: true });
  }
  const rows = Object.entries(runs).map(([name, figures]) => ({
    name,
    opsPerSecond: Math.round(median(figures.map((f) => f.opsPerSecond))),
    p50Ms: Number(median(figures.map((f) => f.p50Ms)).toFixed(2)),
    p99Ms: Number(median(figures.map((f) => f.p99Ms)).toFixed(2)),
    runs: figures.length,
  }));
  const lines = ['| system, workload | ops/s (median) | p50 ms | p99 ms | runs |', '| --- | ---: | ---: | ---: | ---: |', ...rows.map((r) => `| ${r.name} | ${r.opsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.runs} |`)];
  const ratio = (a: string, b: string): string => {
    const x = rows.find((r) => r.name === a);
    const y = rows.find((r) => r.name === b);
    return x === undefined || y === undefined ? '?' : (x.opsPerSecond / y.opsPerSecond).toFixed(2);
  };
  lines.push('', `Tandem majority SET / Redis always SET (redis-benchmark, unpipelined): ${ratio('tandem SET P1', 'redis SET P1')}`);
  lines.push(`Tandem majority SET / Redis always SET (redis-benchmark, -P 16): ${ratio('tandem SET P16', 'redis SET P16')}`);
  lines.push(`Tandem majority SET / Redis SET+WAIT 1 (same RESP loop): ${ratio('tandem SET loop', 'redis SET+WAIT 1 loop')}`);
  for (const failure of failures) lines.push(`note: ${failure}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `redis-compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: { cores: (await import('node:os')).cpus().length }, settings: { clients: flags['clients'], requests: flags['requests'], seconds: flags['seconds'], valueBytes: 100, tandem: '3 nodes, ack majority, consistency session', redis: `${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}; primary + 2 replicas, appendonly yes, appendfsync always` }, rows, failures }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
