/**
 * `npm run bench:failover`: kill -9 of the leader under write load, N runs per system, each on a
 * fresh three-node cluster: the time from the old leader's exit until the first write is accepted
 * again, and the acknowledged writes the system lost.
 *
 * - Tandem: 3 nodes, default settings, SET at ack=majority over RESP; the writers rotate through
 *   the nodes (a follower forwards to the leader).
 * - Redis 7: a primary and two replicas (appendonly yes, appendfsync always), three Sentinels
 *   (quorum 2, down-after-milliseconds 1000); the writers ask the Sentinels for the primary.
 * - etcd 3.4: 3 members, default settings, puts through the JSON gateway, rotating members.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parseFlags } from '../cli/args.js';
import { RespConnection } from '../net/resp-connection.js';
import { within } from '../shared/deadline.js';
import { LocalCluster, quantile, waitFor } from './cluster.js';
import { ensureInstalled, etcdKeys, etcdLeaderPort, etcdPut, sentinelPrimary, startEtcd, startRedis, startSentinels } from './peers.js';
import { removeOnSignal } from './children.js';

const flags = parseFlags(process.argv.slice(2), {
  runs: { type: 'int', help: 'runs per system', min: 1, max: 200, default: 20 },
  systems: { type: 'string', help: 'comma-separated: tandem,redis,etcd', default: 'tandem,redis,etcd' },
  writers: { type: 'int', help: 'concurrent writers', min: 1, max: 200, default: 8 },
  install: { type: 'switch', help: 'apt-get install redis-server etcd-server when missing (as root)' },
  quick: { type: 'switch', help: '3 runs per system' },
  help: { type: 'switch', help: 'show this help' },
});
if (flags['quick'] === true) flags['runs'] = 3;

const value = Buffer.alloc(100, 0x66);
/**
 * How long one write may take before the writer gives up on it and tries again (the next
 * member, for etcd). The same for every system: a healthy write here takes a few ms, and etcd
 * silently drops a proposal made while it has no leader, so a long timeout would measure the
 * writer's patience instead of the failover.
 */
const callTimeoutMs = 250;
/** The longest failover waited for. */
const recoveryMaxMs = 30_000;

/** One system under test, started fresh for each run. */
interface System {
  /** Writes `key`; true when the system acknowledged it. Never throws. */
  write(writer: number, key: string): Promise<boolean>;
  /** kill -9 of the leader (primary); resolves once the process has exited. */
  killLeader(): Promise<void>;
  /** Which of `keys` the system holds now (read from the new leader). */
  holds(keys: readonly string[]): Promise<Set<string>>;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** One RESP connection per writer, reopened (through `target`) after any failure. */
class RespWriters {
  private readonly connections = new Map<number, RespConnection>();
  constructor(private readonly target: (writer: number, attempt: number) => Promise<number>) {}
  private attempts = 0;

  async write(writer: number, key: string): Promise<boolean> {
    try {
      let connection = this.connections.get(writer);
      if (connection === undefined || !connection.open) {
        const port = await this.target(writer, this.attempts++);
        connection = await RespConnection.open('127.0.0.1', port, callTimeoutMs);
        this.connections.set(writer, connection);
      }
      const answer = await within(connection.call(['SET', key, value]), callTimeoutMs);
      if (answer === 'OK') return true;
      this.drop(writer);
      return false;
    } catch {
      this.drop(writer);
      return false;
    }
  }

  private drop(writer: number): void {
    this.connections.get(writer)?.close();
    this.connections.delete(writer);
  }

  closeAll(): void {
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
  }
}

async function respHolds(port: number, keys: readonly string[]): Promise<Set<string>> {
  const connection = await RespConnection.open('127.0.0.1', port, 5000);
  const held = new Set<string>();
  try {
    for (let k = 0; k < keys.length; k += 500) {
      const chunk = keys.slice(k, k + 500);
      const answer = await connection.call(['MGET', ...chunk]);
      if (!Array.isArray(answer)) throw new Error(`MGET answered ${String(answer)}`);
      answer.forEach((v, i) => {
        if (v !== null) held.add(chunk[i] as string);
      });
    }
  } finally {
    connection.close();
  }
  return held;
}

async function startTandem(): Promise<System> {
  const cluster = new LocalCluster(['f1', 'f2', 'f3']);
  await cluster.init();
  for (const id of cluster.ids) cluster.start(id);
  await cluster.leader();
  const writers = new RespWriters(async (writer, attempt) => cluster.respPort(cluster.ids[(writer + attempt) % cluster.ids.length] as string));
  return {
    write: (writer, key) => writers.write(writer, key),
    killLeader: async () => cluster.kill(await cluster.leader()),
    holds: async (keys) => respHolds(cluster.respPort(await cluster.leader(cluster.ids.filter((id) => cluster.processes.get(id)?.exitCode === null && cluster.processes.get(id)?.signalCode === null))), keys),
    stop: async () => {
      writers.closeAll();
      await cluster.stopAll();
    },
  };
}

async function startRedisWithSentinels(): Promise<System> {
  const root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-bench-failover-redis-')));
  const redis = await startRedis(root);
  const sentinels = await startSentinels(root, redis.ports[0] as number);
  const writers = new RespWriters(async (_writer, attempt) => sentinelPrimary(sentinels.ports[attempt % sentinels.ports.length] as number, callTimeoutMs));
  return {
    write: (writer, key) => writers.write(writer, key),
    killLeader: async () => {
      const primary = await sentinelPrimary(sentinels.ports[0] as number, callTimeoutMs);
      const child = redis.processes[redis.ports.indexOf(primary)] as ChildProcess;
      child.kill('SIGKILL');
      await exited(child);
    },
    holds: async (keys) => respHolds(await sentinelPrimary(sentinels.ports[0] as number, callTimeoutMs), keys),
    stop: async () => {
      writers.closeAll();
      for (const child of [...redis.processes, ...sentinels.processes]) child.kill('SIGKILL');
      await Promise.all([...redis.processes, ...sentinels.processes].map(exited));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function startEtcdSystem(): Promise<System> {
  const root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-bench-failover-etcd-')));
  const etcd = await startEtcd(root);
  const member = new Map<number, number>();
  let killed = -1;
  return {
    write: async (writer, key) => {
      const index = member.get(writer) ?? writer % etcd.ports.length;
      try {
        if ((await etcdPut(etcd.ports[index] as number, key, value, callTimeoutMs)) === 200) return true;
      } catch {
        // down or timed out: try the next member
      }
      member.set(writer, (index + 1) % etcd.ports.length);
      return false;
    },
    killLeader: async () => {
      killed = etcd.ports.indexOf(await etcdLeaderPort(etcd.ports));
      const child = etcd.processes[killed] as ChildProcess;
      child.kill('SIGKILL');
      await exited(child);
    },
    holds: async (keys) => {
      // From whichever surviving member serves the range first (a member may still be catching up).
      const alive = etcd.ports.filter((_, i) => i !== killed);
      let next = 0;
      const held = await waitFor('a surviving etcd member to serve the keys written', 10_000, () => etcdKeys(alive[next++ % alive.length] as number, 'fo:'));
      return new Set(keys.filter((k) => held.has(k)));
    },
    stop: async () => {
      for (const child of etcd.processes) child.kill('SIGKILL');
      await Promise.all(etcd.processes.map(exited));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

interface RunResult {
  readonly failoverMs: number | null;
  readonly acknowledged: number;
  readonly lost: number;
  readonly failedAttempts: number;
}

async function oneRun(system: System): Promise<RunResult> {
  const acknowledged: string[] = [];
  let killedAt: number | null = null;
  let firstAfterKill: number | null = null;
  let stopping = false;
  let failedAttempts = 0;
  const loops = Array.from({ length: flags['writers'] as number }, async (_, writer) => {
    for (let i = 0; !stopping; i++) {
      const key = `fo:${writer}:${i}`;
      if (await system.write(writer, key)) {
        acknowledged.push(key);
        const at = performance.now();
        if (killedAt !== null && firstAfterKill === null && at > killedAt) firstAfterKill = at;
      } else {
        failedAttempts++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  });
  const until = async (condition: () => boolean, ms: number): Promise<void> => {
    const deadline = performance.now() + ms;
    while (!condition() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  // Load first, so the leader dies with writes in flight.
  await until(() => acknowledged.length >= 200, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await system.killLeader();
  killedAt = performance.now();
  await until(() => firstAfterKill !== null, recoveryMaxMs);
  await new Promise((resolve) => setTimeout(resolve, 300));
  stopping = true;
  await Promise.all(loops);
  const held = await system.holds(acknowledged);
  return {
    failoverMs: firstAfterKill === null || killedAt === null ? null : (firstAfterKill as number) - killedAt,
    acknowledged: acknowledged.length,
    lost: acknowledged.length - held.size,
    failedAttempts,
  };
}

const starters: Record<string, { readonly label: string; readonly start: () => Promise<System>; readonly needs?: () => void }> = {
  tandem: { label: 'Tandem (3 nodes, SET at ack=majority)', start: startTandem },
  redis: {
    label: 'Redis (primary + 2 replicas, appendfsync always, 3 Sentinels, down-after 1000 ms)',
    start: startRedisWithSentinels,
    needs: () => ensureInstalled('bench:failover', ['redis-server'], ['redis-server'], flags['install'] === true),
  },
  etcd: { label: 'etcd (3 members, defaults, JSON gateway)', start: startEtcdSystem, needs: () => ensureInstalled('bench:failover', ['etcd'], ['etcd-server'], flags['install'] === true) },
};

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:failover -- [--runs N] [--systems tandem,redis,etcd] [--writers W] [--quick] [--install]\n');
    return;
  }
  const names = String(flags['systems']).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of names) {
    if (starters[name] === undefined) throw new Error(`unknown system '${name}' (tandem, redis, etcd)`);
    starters[name]?.needs?.();
  }
  const results: Record<string, RunResult[]> = {};
  for (let run = 1; run <= (flags['runs'] as number); run++) {
    // Interleaved: run k of every system, then run k+1.
    for (const name of names) {
      const starter = starters[name] as (typeof starters)[string];
      const system = await starter.start();
      try {
        const result = await oneRun(system);
        (results[name] ??= []).push(result);
        process.stderr.write(`${name} run ${run}: ${result.failoverMs === null ? 'no write accepted within 30 s' : `${result.failoverMs.toFixed(0)} ms`}, ${result.acknowledged} acknowledged, ${result.lost} lost\n`);
      } finally {
        await system.stop();
      }
    }
  }
  const lines = ['| system | runs | failover p50 ms | min | max | runs without recovery | acknowledged writes | lost |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  const rows = names.map((name) => {
    const all = results[name] ?? [];
    const times = all.flatMap((r) => (r.failoverMs === null ? [] : [r.failoverMs])).sort((a, b) => a - b);
    return {
      system: name,
      settings: starters[name]?.label,
      runs: all.length,
      p50Ms: Math.round(quantile(times, 0.5)),
      minMs: Math.round(times[0] ?? Number.NaN),
      maxMs: Math.round(times[times.length - 1] ?? Number.NaN),
      unrecovered: all.length - times.length,
      acknowledged: all.reduce((n, r) => n + r.acknowledged, 0),
      lost: all.reduce((n, r) => n + r.lost, 0),
      perRun: all,
    };
  });
  for (const r of rows) lines.push(`| ${r.settings} | ${r.runs} | ${r.p50Ms} | ${r.minMs} | ${r.maxMs} | ${r.unrecovered} | ${r.acknowledged} | ${r.lost} |`);
  lines.push('', `Failover: from the old leader's exit (kill -9) until the first write acknowledged again; ${flags['writers']} writers, 100-byte values. Lost: acknowledged writes the new leader does not hold.`);
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ writers: flags['writers'], rows }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
