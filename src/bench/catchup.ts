/**
 * `npm run bench:catchup`: a follower stopped while N keys (default 1,000,000, 100-byte values) are
 * written, then restarted: the time and MB/s until it has applied everything, once from the log
 * (snapshots off) and once through a snapshot (one every quarter of the keys' payload, so the
 * leader has compacted the log past the follower; checked in the follower's log). Also per node: peak RSS and bytes on disk per key at N keys — and the
 * same two figures for Redis (primary + 2 replicas, appendonly yes, appendfsync always) loaded
 * by the same writer — and the restarted follower's largest anonymous memory while it caught up.
 * `--value-bytes 4096 --keys 400000 --snapshot-only --snapshot-every-mb 64` (the nodes' own
 * snapshot default) lets snapshots grow towards the state's size, 1.6 GB.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../cli/args.js';
import { RespConnection } from '../net/resp-connection.js';
import { RespErrorReply } from '../codec/resp.js';
import { LocalCluster, waitFor } from './cluster.js';
import { ensureInstalled, redisReplicasCaughtUp, startRedis } from './peers.js';
import { removeOnSignal } from './children.js';

const flags = parseFlags(process.argv.slice(2), {
  keys: { type: 'int', help: 'keys written while the follower is down', min: 1000, max: 100_000_000, default: 1_000_000 },
  'value-bytes': { type: 'int', help: 'bytes per value', min: 1, max: 1024 * 1024, default: 100 },
  'snapshot-only': { type: 'switch', help: 'only the catch-up through a snapshot' },
  'snapshot-every-mb': { type: 'int', help: "the nodes' --snapshot-every-mb in the snapshot part (default: a quarter of the payload; 64, the node's own default, lets snapshots grow to the state's size)", min: 1, max: 1_000_000 },
  redis: { type: 'switch', help: 'also load Redis with the same keys for its RSS and bytes per key' },
  install: { type: 'switch', help: 'apt-get install redis-server when missing (as root)' },
  quick: { type: 'switch', help: '100,000 keys' },
  help: { type: 'switch', help: 'show this help' },
});
if (flags['quick'] === true) flags['keys'] = 100_000;

const keys = flags['keys'] as number;
const valueBytes = flags['value-bytes'] as number;
/**
 * Values of random bytes: repeated bytes would let Redis's RDB (LZF) compress them to almost
 * nothing, and its bytes per key would measure the compressor, not the store.
 */
const values = Array.from({ length: 4096 }, () => randomBytes(valueBytes));
const connectionsMax = 16;
const windowPerConnection = 64;

/** Writes keys 0..n-1 through `port` with pipelined SETs; answers the seconds it took. */
async function load(port: number, n: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const connections = await Promise.all(Array.from({ length: connectionsMax }, () => RespConnection.open('127.0.0.1', port, 5000)));
  await Promise.all(
    connections.map(async (connection) => {
      const inFlight = new Set<Promise<void>>();
      while (next < n) {
        const k = next++;
        const key = `key:${String(k).padStart(9, '0')}`;
        const call = connection.call(['SET', key, values[k % values.length] as Buffer]).then((answer) => {
          if (answer instanceof RespErrorReply || answer !== 'OK') throw new Error(`SET ${key} answered ${String(answer)}`);
        });
        const tracked: Promise<void> = call.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= windowPerConnection) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }),
  );
  for (const connection of connections) connection.close();
  return (performance.now() - started) / 1000;
}

/** Anonymous resident memory of a process now, in MiB (RssAnon: not LMDB's mapped file pages). */
function anonMiB(pid: number): number {
  const match = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) / 1024;
}

/** Peak resident set of a process, in MiB (VmHWM). */
function peakRssMiB(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) / 1024;
}

function diskBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

async function metric(cluster: LocalCluster, id: string, name: string): Promise<number> {
  const text = await (await cluster.request(id, 'GET', '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

interface CatchUp {
  readonly mode: string;
  readonly loadSeconds: number;
  readonly catchUpSeconds: number;
  readonly megabytes: number;
  readonly peakRssMiB: Record<string, number>;
  readonly diskBytesPerKey: Record<string, number>;
  /** The restarted follower's largest anonymous memory while it caught up, sampled every 100 ms. */
  readonly followerAnonPeakMiB: number;
  /** The largest snapshot the restarted follower received, in bytes (0 from the log). */
  readonly snapshotBytesMax: number;
  /** Set when the leader changed during the run. */
  readonly note: string | null;
}

/** About what one SET of the loader adds to the log: a 13-byte key, the value, framing. */
const payloadBytesPerKey = 30 + valueBytes;

async function catchUp(mode: 'log' | 'snapshot'): Promise<CatchUp> {
  // Snapshots off, or often enough that the leader compacts its log past the stopped follower:
  // every quarter of the keys' payload. Entries hold hundreds of pipelined writes each, so a
  // count of entries (N/4) is never reached; the byte rule is the one that fires.
  const quarterMiB = (flags['snapshot-every-mb'] as number | undefined) ?? Math.max(1, Math.floor((keys * payloadBytesPerKey) / 4 / 2 ** 20));
  const snapshots = ['--snapshot-every', String(Math.max(1000, Math.floor(keys / 4))), '--snapshot-every-mb', String(quarterMiB)];
  const cluster = new LocalCluster(['k1', 'k2', 'k3'], mode === 'log' ? ['--snapshot-every', '100000000', '--snapshot-every-mb', '1000000'] : snapshots);
  await cluster.init();
  for (const id of cluster.ids) cluster.start(id);
  try {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    await cluster.kill(follower);
    process.stderr.write(`${mode}: ${follower} stopped; writing ${keys} keys through ${leader}\n`);
    const termBefore = (await cluster.status(leader)).term;
    const loadSeconds = await load(cluster.respPort(leader), keys);
    const target = (await cluster.status(leader)).commitIndex;
    // Bytes sent by every running node: if the leader changed under the load, another one sends.
    const others = cluster.ids.filter((id) => id !== follower);
    const sent = async (): Promise<number> => (await Promise.all(others.map((id) => metric(cluster, id, 'tandem_peer_bytes_sent')))).reduce((a, b) => a + b, 0);
    const sentBefore = await sent();
    const started = performance.now();
    cluster.start(follower);
    let followerAnonPeakMiB = 0;
    const sampler = setInterval(() => {
      const pid = cluster.processes.get(follower)?.pid;
      try {
        if (pid !== undefined) followerAnonPeakMiB = Math.max(followerAnonPeakMiB, anonMiB(pid) || 0);
      } catch {
        // The process is not there (yet): nothing to sample.
      }
    }, 100);
    try {
      await waitFor(`${follower} to apply index ${target}`, 600_000, async () => (await cluster.status(follower)).appliedIndex >= target);
    } finally {
      clearInterval(sampler);
    }
    const catchUpSeconds = (performance.now() - started) / 1000;
    const output = cluster.output.get(follower) ?? '';
    const installed = /snapshot installed/.test(output);
    const snapshotBytesMax = Math.max(0, ...[...output.matchAll(/"receiving snapshot".*?"total":(\d+)/g)].map((m) => Number(m[1])));
    if (installed !== (mode === 'snapshot')) throw new Error(`${follower} ${installed ? 'installed' : 'did not install'} a snapshot catching up from the ${mode}`);
    const megabytes = ((await sent()) - sentBefore) / 1e6;
    const termAfter = Math.max(...(await Promise.all(others.map(async (id) => (await cluster.status(id)).term))));
    const stalls = cluster.loggedStalls();
    const evidence = stalls.length === 0 ? 'no node logged an event-loop stall' : `stalls logged: ${stalls.join(', ')}`;
    const note = termAfter === termBefore ? null : `${mode}: the leader changed during the run (term ${termBefore} → ${termAfter}); ${leader} is the node the load was sent to; ${evidence}`;
    if (note !== null) process.stderr.write(`${note}\n`);
    process.stderr.write(`${mode}: caught up ${target} entries in ${catchUpSeconds.toFixed(1)} s, ${megabytes.toFixed(1)} MB sent\n`);
    await cluster.converged(60_000);
    const peakRss: Record<string, number> = {};
    const perKey: Record<string, number> = {};
    for (const id of cluster.ids) {
      peakRss[id === leader ? `${id} (leader)` : id === follower ? `${id} (restarted)` : id] = Math.round(peakRssMiB(cluster.processes.get(id)?.pid as number));
      perKey[id] = Math.round(diskBytes(cluster.dir(id)) / keys);
    }
    return { mode, loadSeconds, catchUpSeconds, megabytes, peakRssMiB: peakRss, diskBytesPerKey: perKey, followerAnonPeakMiB: Math.round(followerAnonPeakMiB), snapshotBytesMax, note };
  } finally {
    await cluster.stopAll();
  }
}

async function redisResources(): Promise<{ loadSeconds: number; peakRssMiB: number[]; diskBytesPerKey: number[] }> {
  const root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-bench-catchup-redis-')));
  const redis = await startRedis(root);
  try {
    const loadSeconds = await load(redis.ports[0] as number, keys);
    // Let the replicas apply the stream before reading their memory.
    await redisReplicasCaughtUp(redis.ports[0] as number, 120_000);
    return {
      loadSeconds,
      peakRssMiB: redis.processes.map((child) => Math.round(peakRssMiB(child.pid as number))),
      diskBytesPerKey: redis.ports.map((_, k) => Math.round(diskBytes(join(root, `redis-${k}`)) / keys)),
    };
  } finally {
    for (const child of redis.processes) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench:catchup -- [--keys N] [--value-bytes B] [--snapshot-only] [--snapshot-every-mb M] [--quick] [--redis] [--install]\n');
    return;
  }
  if (flags['redis'] === true) ensureInstalled('bench:catchup --redis', ['redis-server'], ['redis-server'], flags['install'] === true);
  const results = flags['snapshot-only'] === true ? [await catchUp('snapshot')] : [await catchUp('log'), await catchUp('snapshot')];
  const redis = flags['redis'] === true ? await redisResources() : null;
  const lines = ['| catch-up of a follower stopped while the keys were written | load, keys/s | catch-up s | MB sent | MB/s | peak RSS MiB per node | disk bytes per key per node |', '| --- | ---: | ---: | ---: | ---: | --- | --- |'];
  for (const r of results) {
    const rss = Object.entries(r.peakRssMiB).map(([id, mib]) => `${id} ${mib}`).join(', ');
    const disk = Object.values(r.diskBytesPerKey).join(' / ');
    const how = `${r.mode === 'log' ? 'from the log (snapshots off)' : `through a snapshot (${flags['snapshot-every-mb'] === undefined ? 'one every quarter of the payload' : `--snapshot-every-mb ${String(flags['snapshot-every-mb'])}`}; the largest received ${(r.snapshotBytesMax / 1e6).toFixed(0)} MB)`}; the restarted follower's anonymous memory at most ${r.followerAnonPeakMiB} MiB`;
    lines.push(`| Tandem, ${keys} keys, ${how} | ${Math.round(keys / r.loadSeconds)} | ${r.catchUpSeconds.toFixed(1)} | ${r.megabytes.toFixed(1)} | ${(r.megabytes / r.catchUpSeconds).toFixed(1)} | ${rss} | ${disk} |`);
  }
  if (redis !== null) lines.push(`| Redis (primary + 2 replicas, AOF always), ${keys} keys (load only) | ${Math.round(keys / redis.loadSeconds)} | – | – | – | ${redis.peakRssMiB.join(', ')} | ${redis.diskBytesPerKey.join(' / ')} |`);
  lines.push('', `Keys: key:000000000… (13 bytes), ${valueBytes}-byte random values, written by one loader (${connectionsMax} connections × ${windowPerConnection} pipelined SETs). Catch-up: from the restart of the follower's process until it has applied the leader's commit index; MB sent: the peer bytes the other two nodes sent meanwhile.`);
  for (const r of results) if (r.note !== null) lines.push(`note: ${r.note}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `catchup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ keys, valueBytes, tandem: results, redis }, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
