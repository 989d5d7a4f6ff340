/**
 * The systems Tandem is measured beside, started on loopback under a temporary directory:
 * Redis 7 (a primary, two replicas, appendonly yes, appendfsync always; optionally three
 * Sentinels) and etcd 3.4 (three members, default settings).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RespConnection } from '../net/resp-connection.js';
import { freePort, waitFor } from './cluster.js';
import { stopOnSignal } from './children.js';

export interface Peers {
  /** Client ports, the first being the primary (Redis) or any member (etcd). */
  readonly ports: number[];
  readonly processes: ChildProcess[];
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/**
 * Makes sure `commands` exist: installs `packages` with apt-get when asked to and running as
 * root, otherwise says what to install and exits with status 2.
 */
export function ensureInstalled(what: string, commands: readonly string[], packages: readonly string[], install: boolean): void {
  if (commands.every(have)) return;
  if (install && process.getuid?.() === 0) {
    execFileSync('apt-get', ['install', '-y', ...packages], { stdio: 'inherit' });
    return;
  }
  process.stderr.write(`${what} needs ${commands.join(', ')}: apt-get install -y ${packages.join(' ')} (or run with --install as root)\n`);
  process.exit(2);
}

/** Redis: a primary and two replicas, appendonly yes, appendfsync always. */
export async function startRedis(root: string): Promise<Peers> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const processes = ports.map((port, k) => {
    const dir = join(root, `redis-${k}`);
    mkdirSync(dir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'];
    if (k > 0) args.push('--replicaof', '127.0.0.1', String(ports[0]));
    return stopOnSignal(spawn('redis-server', args, { stdio: 'ignore' }));
  });
  const primary = ports[0] as number;
  await waitFor('Redis with two connected replicas', 20_000, async () => {
    const connection = await RespConnection.open('127.0.0.1', primary, 500);
    const info = String(await connection.call(['INFO', 'replication']));
    connection.close();
    return /connected_slaves:2/.test(info) && (info.match(/state=online/g) ?? []).length === 2;
  });
  return { ports, processes };
}

/** The name the Sentinels know the Redis primary by. */
export const sentinelMaster = 'bench';

/** Three Sentinels watching `primaryPort` (quorum 2, down-after-milliseconds 1000). */
export async function startSentinels(root: string, primaryPort: number): Promise<Peers> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const processes = ports.map((port, k) => {
    const dir = join(root, `sentinel-${k}`);
    mkdirSync(dir, { recursive: true });
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${sentinelMaster} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${sentinelMaster} 1000`,
        `sentinel failover-timeout ${sentinelMaster} 10000`,
        `sentinel parallel-syncs ${sentinelMaster} 1`,
        '',
      ].join('\n'),
    );
    return stopOnSignal(spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' }));
  });
  await waitFor('every Sentinel to see the replicas and the other Sentinels', 20_000, async () => {
    for (const port of ports) {
      const connection = await RespConnection.open('127.0.0.1', port, 500);
      const answer = await connection.call(['SENTINEL', 'ckquorum', sentinelMaster]);
      const replicas = await connection.call(['SENTINEL', 'replicas', sentinelMaster]);
      connection.close();
      if (!String(answer).startsWith('OK') || !Array.isArray(replicas) || replicas.length < 2) return false;
    }
    return true;
  });
  return { ports, processes };
}

/** The primary's port as Sentinel `port` reports it. */
export async function sentinelPrimary(port: number, timeoutMs: number): Promise<number> {
  const connection = await RespConnection.open('127.0.0.1', port, timeoutMs);
  try {
    const answer = await connection.call(['SENTINEL', 'get-master-addr-by-name', sentinelMaster]);
    if (!Array.isArray(answer) || answer.length !== 2) throw new Error(`Sentinel answered ${String(answer)}`);
    return Number(String(answer[1]));
  } finally {
    connection.close();
  }
}

/** etcd: three members with default settings (every put majority-committed and fsynced). */
export async function startEtcd(root: string): Promise<Peers> {
  const names = ['e1', 'e2', 'e3'];
  const clientPorts = [await freePort(), await freePort(), await freePort()];
  const peerPorts = [await freePort(), await freePort(), await freePort()];
  const initialCluster = names.map((name, k) => `${name}=http://127.0.0.1:${peerPorts[k]}`).join(',');
  const processes = names.map((name, k) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const args = [
      '--name', name, '--data-dir', dir,
      '--listen-client-urls', `http://127.0.0.1:${clientPorts[k]}`, '--advertise-client-urls', `http://127.0.0.1:${clientPorts[k]}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPorts[k]}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[k]}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${process.pid}-${clientPorts[0]}`,
    ];
    return stopOnSignal(spawn('etcd', args, { stdio: 'ignore' }));
  });
  await waitFor('etcd to elect a leader', 30_000, async () => (await etcdPut(clientPorts[0] as number, 'probe', Buffer.from('x'), 1000)) === 200);
  return { ports: clientPorts, processes };
}

/** A put through etcd's JSON gateway; answers the HTTP status. */
export async function etcdPut(port: number, key: string, value: Uint8Array, timeoutMs: number): Promise<number> {
  const body = JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
  const response = await fetch(`http://127.0.0.1:${port}/v3/kv/put`, { method: 'POST', body, signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer();
  return response.status;
}

/** Every key under `prefix` that etcd member `port` holds (a serializable read of its own state). */
export async function etcdKeys(port: number, prefix: string): Promise<Set<string>> {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  const body = JSON.stringify({ key: Buffer.from(prefix).toString('base64'), range_end: end.toString('base64'), keys_only: true });
  const response = await fetch(`http://127.0.0.1:${port}/v3/kv/range`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
  const answer = (await response.json()) as { header?: { revision?: string }; kvs?: { key: string }[] };
  // Only a served range has a header: an error answer (no leader yet, say) must not read as "no keys".
  if (!response.ok || answer.header === undefined) throw new Error(`etcd member on port ${port} did not serve the range: HTTP ${response.status} ${JSON.stringify(answer).slice(0, 200)}`);
  return new Set((answer.kvs ?? []).map((kv) => Buffer.from(kv.key, 'base64').toString()));
}

/** Waits until every replica of the Redis primary at `port` has all of its replication stream. */
export async function redisReplicasCaughtUp(port: number, timeoutMs: number): Promise<void> {
  await waitFor('the Redis replicas to catch up', timeoutMs, async () => {
    const connection = await RespConnection.open('127.0.0.1', port, 1000);
    try {
      const info = String(await connection.call(['INFO', 'replication']));
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
      const replicas = info.match(/offset=(\d+)/g) ?? [];
      return replicas.length > 0 && replicas.every((o) => o === `offset=${offset}`);
    } finally {
      connection.close();
    }
  });
}

/** The client port of the member that leads. */
export async function etcdLeaderPort(ports: readonly number[]): Promise<number> {
  // Never a guess: a member killed as "the leader" that was not would make a failover of ~0 ms.
  // Every member must name the same leader (one that has just lost an election may still think
  // it leads) and that member must say so itself.
  return waitFor('an etcd member that every member names the leader', 10_000, async () => {
    const statuses = await Promise.all(
      ports.map(async (port) => {
        const response = await fetch(`http://127.0.0.1:${port}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
        return { port, status: (await response.json()) as { header?: { member_id?: string }; leader?: string } };
      }),
    );
    const named = new Set(statuses.map(({ status }) => status.leader));
    if (named.size !== 1) return undefined;
    return statuses.find(({ status }) => status.leader !== undefined && status.leader === status.header?.member_id)?.port;
  });
}
