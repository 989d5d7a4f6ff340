/**
 * `npm run bench:cpu`: where a write's CPU goes, thread by thread. A fresh three-node cluster per
 * round takes 100-byte SETs from redis-benchmark (50 clients, unpipelined unless --pipeline);
 * after a warm-up, each node's event loop and its other threads (V8's collector helpers, libuv's
 * threadpool writing the log, the LMDB writer) are read from /proc over a window and divided by
 * the writes the leader answered in it. Medians of --rounds rounds. CPU per write moves by a few
 * per cent between runs on this shared machine where throughput moves by ten: the yardstick for
 * an A/B of a change (README, performance item 31).
 *
 * With --floor, each round also runs the floor (floor-node.ts: three processes with the shape of
 * Tandem's write path and nothing else) under the same load, and the report sets Tandem beside
 * it: how far Tandem is from the least a majority write costs in Node.js on this machine.
 */
import { spawn } from 'node:child_process';
import { parseFlags } from '../cli/args.js';
import { LocalCluster, median } from './cluster.js';
import { startFloor } from './floor.js';
import { pidsOf, readCpu, threadShares, writesAnswered, type NodeThreads } from './cpu.js';
import { ensureInstalled } from './peers.js';
import { stopOnSignal } from './children.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'rounds, each on a fresh cluster', min: 1, max: 20, default: 3 },
  seconds: { type: 'int', help: 'seconds measured per round (after 3 s of warm-up)', min: 1, max: 120, default: 5 },
  clients: { type: 'int', help: 'redis-benchmark connections', min: 1, max: 1000, default: 50 },
  pipeline: { type: 'int', help: 'redis-benchmark -P', min: 1, max: 1000, default: 1 },
  'value-bytes': { type: 'int', help: "each SET's value size (redis-benchmark -d)", min: 1, max: 1024 * 1024, default: 100 },
  floor: { type: 'switch', help: 'also measure the floor (floor-node.ts) under the same load, each round' },
  install: { type: 'switch', help: 'apt-get install redis-tools when missing (as root)' },
  help: { type: 'switch', help: 'show this help' },
});

/** One system in one round: the leader's writes per second over the window, and each process's share. */
interface Round {
  readonly writesPerSecond: number;
  readonly nodes: readonly NodeThreads[];
}

/** All three processes' CPU per write in a round. */
function totalUs(round: Round): number {
  return round.nodes.reduce((sum, n) => sum + n.mainUs + n.otherUs, 0);
}

/** A system under test: its processes, its leader's process and RESP port, and a count of the writes it answered. */
interface System {
  readonly pids: readonly number[];
  readonly leaderPid: number;
  readonly respPort: number;
  written(): Promise<number>;
}

/** Puts the system under redis-benchmark's SETs; after a warm-up, reads every thread's CPU over the window. */
async function measure(system: System): Promise<Round> {
  const load = stopOnSignal(spawn('redis-benchmark', ['-p', String(system.respPort), '-t', 'set', '-c', String(flags['clients']), '-n', '100000000', '-d', String(flags['value-bytes']), '-r', '100000', '-P', String(flags['pipeline'])], { stdio: 'ignore' }));
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const writesBefore = await system.written();
    const before = readCpu(system.pids);
    await new Promise((resolve) => setTimeout(resolve, (flags['seconds'] as number) * 1000));
    const after = readCpu(system.pids);
    const writes = (await system.written()) - writesBefore;
    if (before === null || after === null) throw new Error('bench:cpu reads /proc/PID/task/TID/schedstat (Linux only), and could not');
    return { writesPerSecond: writes / ((after.atMs - before.atMs) / 1000), nodes: threadShares(before, after, writes, system.leaderPid) };
  } finally {
    load.kill('SIGKILL');
  }
}

async function tandemRound(): Promise<Round> {
  const tandem = new LocalCluster(['u1', 'u2', 'u3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  try {
    const leader = await tandem.leader();
    return await measure({
      pids: pidsOf(tandem.processes.values()),
      leaderPid: tandem.processes.get(leader)?.pid ?? -1,
      respPort: tandem.respPort(leader),
      written: async () => writesAnswered(await (await fetch(`${tandem.http(leader)}/metrics`)).text()),
    });
  } finally {
    await tandem.stopAll();
  }
}

async function floorRound(): Promise<Round> {
  const floor = await startFloor();
  try {
    return await measure({ pids: pidsOf(floor.processes), leaderPid: floor.leaderPid, respPort: floor.respPort, written: () => floor.answered() });
  } finally {
    floor.stop();
  }
}

/** The report's rows for one system's rounds: [label, µs per write, event loop's wait] (medians). */
function rows(rounds: readonly Round[]): [string, string, string][] {
  const med = (pick: (r: Round) => number): string => median(rounds.map(pick)).toFixed(1);
  const followers = (r: Round): NodeThreads[] => r.nodes.filter((n) => n.role === 'follower');
  const leaderOf = (r: Round): NodeThreads => r.nodes.find((n) => n.role === 'leader') as NodeThreads;
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return [
    ['leader, event loop', med((r) => leaderOf(r).mainUs), `${med((r) => leaderOf(r).mainWaitPct)}%`],
    ['leader, other threads', med((r) => leaderOf(r).otherUs), ''],
    ['each follower, event loop (mean of two)', med((r) => mean(followers(r).map((n) => n.mainUs))), `${med((r) => mean(followers(r).map((n) => n.mainWaitPct)))}%`],
    ['each follower, other threads', med((r) => mean(followers(r).map((n) => n.otherUs))), ''],
    ['**all three processes**', `**${med(totalUs)}**`, ''],
  ];
}

function report(tandem: readonly Round[], floor: readonly Round[]): string {
  const title = `${flags['value-bytes']}-byte SETs, ${flags['clients']} clients, -P ${flags['pipeline']} (medians of ${tandem.length} rounds of ${flags['seconds']} s)`;
  const perSecond = (rounds: readonly Round[]): string => rounds.map((r) => Math.round(r.writesPerSecond)).join(' / ');
  if (floor.length === 0) {
    const lines = [`| ${title} | µs of CPU per write | event loop waiting for a core |`, '| --- | ---: | ---: |', ...rows(tandem).map((cells) => `| ${cells.join(' | ')} |`)];
    return `${lines.join('\n')}\n\nWrites per second over the windows: ${perSecond(tandem)}.\n`;
  }
  const floorRows = rows(floor);
  const lines = [
    `| ${title} | Tandem: µs of CPU per write | waiting for a core | floor: µs of CPU per write | waiting for a core |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows(tandem).map(([label, us, wait], k) => `| ${label} | ${us} | ${wait} | ${floorRows[k]?.[1] ?? ''} | ${floorRows[k]?.[2] ?? ''} |`),
  ];
  // Rounds ran in pairs (Tandem, then the floor), so each pair's ratio is taken before the median.
  const ratio = median(tandem.map((t, k) => t.writesPerSecond / (floor[k] as Round).writesPerSecond)).toFixed(2);
  const cpuRatio = median(tandem.map((t, k) => totalUs(t) / totalUs(floor[k] as Round))).toFixed(2);
  return `${lines.join('\n')}\n\nWrites per second over the windows: Tandem ${perSecond(tandem)}; floor ${perSecond(floor)}. Tandem/floor: ${ratio}x the writes per second, ${cpuRatio}x the CPU per write (medians of each round's pair).\n`;
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:cpu -- [--rounds N] [--seconds S] [--clients C] [--pipeline P] [--value-bytes B] [--floor] [--install]\n');
    return;
  }
  ensureInstalled('bench:cpu', ['redis-benchmark'], ['redis-tools'], flags['install'] === true);
  const tandem: Round[] = [];
  const floor: Round[] = [];
  const say = (what: string, r: number, result: Round): void => {
    process.stderr.write(`round ${r}, ${what}: ${Math.round(result.writesPerSecond)} writes/s, ${totalUs(result).toFixed(1)} µs of CPU per write\n`);
  };
  for (let r = 1; r <= (flags['rounds'] as number); r++) {
    tandem.push(await tandemRound());
    say('Tandem', r, tandem[tandem.length - 1] as Round);
    if (flags['floor'] !== true) continue;
    floor.push(await floorRound());
    say('floor', r, floor[floor.length - 1] as Round);
  }
  process.stdout.write(report(tandem, floor));
}

await main();
