import { readFileSync } from 'node:fs';
import type { NodeId } from '../core/types.js';
import type { PeerAddress } from '../net/transport.js';
import { parseAck, splitAddress } from '../server/http.js';
import { TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { backlogBytesMaxDefault } from '../storage/lmdb-store.js';
import type { TlsMaterial } from '../shared/security.js';
import { flagHelp, parseFlags, UsageError, type FlagSpec } from './args.js';
import { reserveHeap, setHeapGrowth } from './heap-reserve.js';
import { createLogger, type LogFormat } from './log.js';
import { joinIfAsked } from './join.js';
import { startNode, type NodeConfig } from './node.js';

const flags: Record<string, FlagSpec> = {
  id: { type: 'string', help: "this node's id (one of the ids in --peers)" },
  dir: { type: 'string', help: 'data directory (log, snapshots, state, rollback/)' },
  peers: { type: 'string', help: 'every node of the cluster, this one included: ID=HOST:PORT,… (peer ports)' },
  'http-port': { type: 'int', help: 'HTTP API port', min: 1, max: 65535 },
  'http-host': { type: 'string', help: 'address the HTTP and RESP ports listen on (with 0.0.0.0, other nodes are told the host of this node’s --peers entry)', default: '127.0.0.1' },
  'resp-port': { type: 'int', help: 'Redis-protocol (RESP) port, on the --http-host address (0: none)', min: 0, max: 65535, default: 0 },
  'cluster-name': { type: 'string', help: 'the master name Sentinel clients ask for', default: 'tandem' },
  'follower-writes': { type: 'string', help: 'what a write sent to a follower does: forward (to the leader) | reject (READONLY)', default: 'forward' },
  'password-file': { type: 'string', help: 'a file holding the client password: RESP AUTH and the HTTP bearer token (also TANDEM_PASSWORD)' },
  'cluster-secret-file': { type: 'string', help: 'a file holding the secret every node shares; peer handshakes must prove it (also TANDEM_CLUSTER_SECRET)' },
  'tls-cert': { type: 'string', help: "this node's TLS certificate (PEM): TLS on the RESP, HTTP and peer ports" },
  'tls-key': { type: 'string', help: "this node's TLS private key (PEM)" },
  'tls-ca': { type: 'string', help: 'the CA (PEM) that signs every node’s certificate (default: the certificate itself, for a self-signed one)' },
  'resp-bulk-bytes-max': { type: 'int', help: 'the largest RESP bulk string accepted (bigger closes the connection)', min: 1024, max: 512 * 1024 * 1024, default: 16 * 1024 * 1024 },
  config: { type: 'string', help: 'a JSON file of flags ({"id": "n1", "peers": "…", …}); command-line flags override it' },
  join: { type: 'string', help: "join a running cluster through any member's HTTP address (instead of --peers); needs --peer-address" },
  'peer-address': { type: 'string', help: "this node's own peer address HOST:PORT, with --join" },
  learners: { type: 'string', help: 'ids among --peers that are learners (non-voting), comma-separated; the same on every node', default: '' },
  'cluster-id': { type: 'string', help: 'refuse peers of any other cluster', default: 'tandem' },
  ack: { type: 'string', help: 'default ack level for writes: leader | majority | all | N', default: 'majority' },
  'tick-ms': { type: 'int', help: 'length of a protocol tick', min: 1, max: 10_000, default: 25 },
  'election-ticks': { type: 'int', help: 'election timeout in ticks (randomized up to twice this)', min: 3, max: 10_000, default: 12 },
  'heartbeat-ticks': { type: 'int', help: 'heartbeat interval in ticks', min: 1, max: 1000, default: 2 },
  priority: { type: 'int', help: '0 = never a candidate (except as a last resort)', min: 0, max: 100, default: 1 },
  'request-timeout-ms': { type: 'int', help: 'how long a write or read may wait for its level', min: 10, max: 600_000, default: 5000 },
  'snapshot-every': { type: 'int', help: 'take a snapshot after this many applied entries (once they hold a quarter of the last snapshot\'s bytes)', min: 10, max: 100_000_000, default: 100_000 },
  'snapshot-every-mb': { type: 'int', help: 'also take one once this many MiB of entries were applied since the last (or the last snapshot\'s size, if larger)', min: 1, max: 1_000_000, default: 64 },
  'log-cache-mb': { type: 'int', help: 'keep this many MiB of committed log entries in memory; a follower further behind is sent entries read back from the log on disk', min: 0, max: 1_000_000, default: limits.logCacheBytes / (1024 * 1024) },
  'store-backlog-mb': { type: 'int', help: 'hold new writes back while more than this many MiB of applied writes wait for the state store (LMDB) to commit them', min: 1, max: 1_000_000, default: backlogBytesMaxDefault / (1024 * 1024) },
  'digest-every': { type: 'int', help: 'record the state digest every this many entries and let the leader compare replicas (0: never; each checkpoint closes an LMDB commit group: at 1, writes ran about 7% slower)', min: 0, max: 100_000_000, default: 10_000 },
  'heap-reserve-mb': { type: 'int', help: 'hold this many MiB of V8 heap for the life of the process, so that V8 collects the old generation less often (fewer pauses; costs as much memory; 0: none)', min: 0, max: 4096, default: 64 },
  'heap-growth-percent': { type: 'int', help: 'let V8\'s old generation grow by this share of its live size (the reserve included) before a full collection (fewer pauses; costs up to that share in memory; 0: V8 chooses)', min: 0, max: 1000, default: 100 },
  'log-format': { type: 'string', help: 'json | pretty (default: pretty on a terminal, json otherwise)' },
  help: { type: 'switch', help: 'show this help' },
};

const usage = `tandem start: run one node

Usage: tandem start --id ID --dir DIR --peers ID=HOST:PORT,... --http-port P [options]

The node's own peer port is its entry in --peers. Every node of a cluster must be started with
the same --peers, --learners and --cluster-id.

${flagHelp(flags)}
`;

/** Parses --peers; throws a UsageError naming the bad part. */
export function parsePeers(text: string): Map<NodeId, PeerAddress> {
  const peers = new Map<NodeId, PeerAddress>();
  for (const part of text.split(',').filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--peers entry '${part}' is not ID=HOST:PORT`);
    const id = part.slice(0, eq);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new UsageError(`--peers: node id '${id}' may use only letters, digits, '_', '.', '-' (at most 64)`);
    if (peers.has(id)) throw new UsageError(`--peers names ${id} twice`);
    let host: string;
    let port: number;
    try {
      [host, port] = splitAddress(part.slice(eq + 1));
    } catch {
      throw new UsageError(`--peers entry '${part}' is not ID=HOST:PORT`);
    }
    peers.set(id, { host, port });
  }
  if (peers.size === 0) throw new UsageError('--peers is empty');
  if (peers.size > 7) throw new UsageError(`--peers names ${peers.size} nodes; at most 7 are supported`);
  return peers;
}

/** A secret: the first line of `file`, else the environment variable, else none. */
function readSecret(flag: string, file: string | undefined, variable: string): string | null {
  if (file === undefined) {
    const value = process.env[variable];
    return value === undefined || value === '' ? null : value;
  }
  const secret = readText(flag, file).split('\n', 1)[0]?.trim() ?? '';
  if (secret === '') throw new UsageError(`${flag}: ${file} is empty`);
  return secret;
}

function readText(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}

function readTls(cert: string | undefined, key: string | undefined, ca: string | undefined): TlsMaterial | null {
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key');
    return null;
  }
  if (cert === undefined || key === undefined) throw new UsageError('TLS needs both --tls-cert and --tls-key');
  const certText = readText('--tls-cert', cert);
  return { cert: Buffer.from(certText), key: Buffer.from(readText('--tls-key', key)), ca: Buffer.from(ca === undefined ? certText : readText('--tls-ca', ca)) };
}

/**
 * --config FILE: a JSON object whose keys are flag names ({"id": "n1", "http-port": 8001, …}).
 * They come first, so flags on the command line override them.
 */
function configFileFlags(argv: readonly string[]): string[] {
  const at = argv.findIndex((arg) => arg === '--config' || arg.startsWith('--config='));
  if (at === -1) return [];
  const arg = argv[at] as string;
  const file = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[at + 1];
  if (file === undefined) throw new UsageError('--config needs a file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText('--config', file));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--config: ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`--config: ${file} must hold one JSON object of flag names and values`);
  const out: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === 'config' || flags[name] === undefined) throw new UsageError(`--config: ${file} names '${name}', which is not a flag of tandem start`);
    if (value === true && flags[name]?.type === 'switch') out.push(`--${name}`);
    else if (typeof value === 'string' || typeof value === 'number') out.push(`--${name}=${String(value)}`);
    else throw new UsageError(`--config: ${file}: '${name}' must be a string or a number`);
  }
  return out;
}

/** Turns flags into a node configuration; throws a UsageError naming the problem. */
export function configFromFlags(commandLine: readonly string[]): NodeConfig | null {
  const argv = [...configFileFlags(commandLine), ...commandLine];
  const v = parseFlags(argv, flags);
  if (v['help'] === true) return null;
  const joining = v['join'] !== undefined;
  for (const required of ['id', 'dir', joining ? 'peer-address' : 'peers', 'http-port']) if (v[required] === undefined) throw new UsageError(`--${required} is required${joining ? ' with --join' : ''}`);
  if (joining && v['peers'] !== undefined) throw new UsageError('give either --peers (a founding member) or --join (a new member), not both');
  const peers = parsePeers(joining ? `${v['id'] as string}=${v['peer-address'] as string}` : (v['peers'] as string));
  const id = v['id'] as string;
  if (!peers.has(id)) throw new UsageError(`--id ${id} is not one of the ids in --peers (${[...peers.keys()].join(', ')})`);
  const learners = (v['learners'] as string).split(',').filter((x) => x !== '');
  for (const learner of learners) if (!peers.has(learner)) throw new UsageError(`--learners names ${learner}, which is not in --peers`);
  if (learners.length >= peers.size) throw new UsageError('--learners leaves no voter');
  let ack;
  try {
    ack = parseAck(v['ack'] as string, 'majority');
  } catch (error) {
    throw new UsageError(`--ack: ${(error as TandemError).message}`);
  }
  const followerWrites = v['follower-writes'] as string;
  if (followerWrites !== 'forward' && followerWrites !== 'reject') throw new UsageError(`--follower-writes must be forward or reject, not '${followerWrites}'`);
  const electionTicks = v['election-ticks'] as number;
  const heartbeatTicks = v['heartbeat-ticks'] as number;
  if (heartbeatTicks >= electionTicks) throw new UsageError('--heartbeat-ticks must be less than --election-ticks');
  return {
    id,
    dir: v['dir'] as string,
    clusterId: v['cluster-id'] as string,
    peers,
    learners,
    join: joining ? (v['join'] as string) : null,
    httpHost: v['http-host'] as string,
    httpPort: v['http-port'] as number,
    respPort: v['resp-port'] as number,
    clusterName: v['cluster-name'] as string,
    followerWrites,
    security: {
      password: readSecret('--password-file', v['password-file'] as string | undefined, 'TANDEM_PASSWORD'),
      clusterSecret: readSecret('--cluster-secret-file', v['cluster-secret-file'] as string | undefined, 'TANDEM_CLUSTER_SECRET'),
      tls: readTls(v['tls-cert'] as string | undefined, v['tls-key'] as string | undefined, v['tls-ca'] as string | undefined),
    },
    respBulkBytesMax: v['resp-bulk-bytes-max'] as number,
    ack,
    tickMs: v['tick-ms'] as number,
    electionTimeoutTicks: electionTicks,
    heartbeatTicks,
    priority: v['priority'] as number,
    requestTimeoutMs: v['request-timeout-ms'] as number,
    snapshotEveryEntries: v['snapshot-every'] as number,
    snapshotEveryBytes: (v['snapshot-every-mb'] as number) * 1024 * 1024,
    digestEveryEntries: v['digest-every'] as number,
    storeBacklogBytes: (v['store-backlog-mb'] as number) * 1024 * 1024,
    logCacheBytes: (v['log-cache-mb'] as number) * 1024 * 1024,
  };
}

/** `tandem start`: runs until SIGINT/SIGTERM; returns the exit code. */
export async function startCommand(argv: readonly string[]): Promise<number> {
  const config = configFromFlags(argv);
  if (config === null) {
    process.stdout.write(usage);
    return 0;
  }
  const parsed = parseFlags(argv, flags);
  const formatFlag = parsed['log-format'] as string | undefined;
  if (formatFlag !== undefined && formatFlag !== 'json' && formatFlag !== 'pretty') throw new UsageError(`--log-format must be json or pretty, not '${formatFlag}'`);
  const format: LogFormat = (formatFlag as LogFormat | undefined) ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const log = createLogger(config.id, format);
  setHeapGrowth(parsed['heap-growth-percent'] as number);
  const reserveMiB = parsed['heap-reserve-mb'] as number;
  if (reserveMiB > 0) log('info', 'heap reserve held', { mib: reserveMiB, heapGrewBytes: reserveHeap(reserveMiB) });
  let failed: Error | null = null;
  const node = await startNode(await joinIfAsked(config, log), log, (error) => {
    failed = error;
    process.kill(process.pid, 'SIGTERM');
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log('info', 'stopping', { signal });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await node.close();
  if (failed !== null) {
    process.stderr.write(`tandem: node ${config.id} stopped: ${(failed as Error).message}\n`);
    return 1;
  }
  return 0;
}
