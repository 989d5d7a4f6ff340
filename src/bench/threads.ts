/**
 * `npm run bench:cpu`: where a write's CPU goes, thread by thread. A fresh three-node cluster per
 * round takes 100-byte SETs from redis-benchmark (50 clients, unpipelined unless --pipeline);
 * after a warm-up, each node's event loop and its other threads (V8's collector helpers, libuv's
 * threadpool writing the log, the LMDB writer) are read from /proc over a window and divided by
 * the writes the leader answered in it. Medians of --rounds rounds. CPU per write moves by a few
 * per cent between runs on this shared machine where throughput moves by ten: the yardstick for
 * an A/B of a change (README, performance item 31).
 */
import { spawn } from 'node:child_process';
import { parseFlags } from '../cli/args.js';
import { LocalCluster, median } from './cluster.js';
import { pidsOf, readCpu, threadShares, writesAnswered, type NodeThreads } from './cpu.js';
import { ensureInstalled } from './peers.js';

const flags = parseFlags(process.argv.slice(2), {
  rounds: { type: 'int', help: 'rounds, each on a fresh cluster', min: 1, max: 20, default: 3 },
  seconds: { type: 'int', help: 'seconds measured per round (after 3 s of warm-up)', min: 1, max: 120, default: 5 },
  clients: { type: 'int', help: 'redis-benchmark connections', min: 1, max: 1000, default: 50 },
  pipeline: { type: 'int', help: 'redis-benchmark -P', min: 1, max: 1000, default: 1 },
  install: { type: 'switch', help: 'apt-get install redis-tools when missing (as root)' },
  help: { type: 'switch', help: 'show this help' },
});

/** One round: the leader's writes per second over the window, and each node's share. */
interface Round {
  readonly writesPerSecond: number;
  readonly nodes: readonly NodeThreads[];
}

/** All three nodes' CPU per write in a round. */
function totalUs(round: Round): number {
  return round.nodes.reduce((sum, n) => sum + n.mainUs + n.otherUs, 0);
}

async function round(): Promise<Round> {
  const tandem = new LocalCluster(['u1', 'u2', 'u3']);
  await tandem.init();
  for (const id of tandem.ids) tandem.start(id);
  try {
    const leader = await tandem.leader();
    const leaderPid = tandem.processes.get(leader)?.pid ?? -1;
    const pids = pidsOf(tandem.processes.values());
    const load = spawn('redis-benchmark', ['-p', String(tandem.respPort(leader)), '-t', 'set', '-c', String(flags['clients']), '-n', '100000000', '-d', '100', '-r', '100000', '-P', String(flags['pipeline'])], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const written = async (): Promise<number> => writesAnswered(await (await fetch(`${tandem.http(leader)}/metrics`)).text());
      const writesBefore = await written();
      const before = readCpu(pids);
      await new Promise((resolve) => setTimeout(resolve, (flags['seconds'] as number) * 1000));
      const after = readCpu(pids);
      const writes = (await written()) - writesBefore;
      if (before === null || after === null) throw new Error('bench:cpu reads /proc/PID/task/TID/schedstat (Linux only), and could not');
      return { writesPerSecond: writes / ((after.atMs - before.atMs) / 1000), nodes: threadShares(before, after, writes, leaderPid) };
    } finally {
      load.kill('SIGKILL');
    }
  } finally {
    await tandem.stopAll();
  }
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:cpu -- [--rounds N] [--seconds S] [--clients C] [--pipeline P] [--install]\n');
    return;
  }
  ensureInstalled('bench:cpu', ['redis-benchmark'], ['redis-tools'], flags['install'] === true);
  const rounds: Round[] = [];
  for (let r = 1; r <= (flags['rounds'] as number); r++) {
    const result = await round();
    rounds.push(result);
    process.stderr.write(`round ${r}: ${Math.round(result.writesPerSecond)} writes/s, ${totalUs(result).toFixed(1)} µs of CPU per write\n`);
  }
  const med = (pick: (r: Round) => number): string => median(rounds.map(pick)).toFixed(1);
  const followers = (r: Round): NodeThreads[] => r.nodes.filter((n) => n.role === 'follower');
  const leaderOf = (r: Round): NodeThreads => r.nodes.find((n) => n.role === 'leader') as NodeThreads;
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const lines = [
    `| 100-byte SETs, ${flags['clients']} clients, -P ${flags['pipeline']} (medians of ${rounds.length} rounds of ${flags['seconds']} s) | µs of CPU per write | event loop waiting for a core |`,
    '| --- | ---: | ---: |',
    `| leader, event loop | ${med((r) => leaderOf(r).mainUs)} | ${med((r) => leaderOf(r).mainWaitPct)}% |`,
    `| leader, other threads | ${med((r) => leaderOf(r).otherUs)} | |`,
    `| each follower, event loop (mean of two) | ${med((r) => mean(followers(r).map((n) => n.mainUs)))} | ${med((r) => mean(followers(r).map((n) => n.mainWaitPct)))}% |`,
    `| each follower, other threads | ${med((r) => mean(followers(r).map((n) => n.otherUs)))} | |`,
    `| **all three nodes** | **${med(totalUs)}** | |`,
    '',
    `Writes per second over the windows: ${rounds.map((r) => Math.round(r.writesPerSecond)).join(' / ')}.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
