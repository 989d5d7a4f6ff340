import { resp } from '../codec/resp.js';
import type { NodeId } from '../core/types.js';
import { RespCommandError } from './resp-commands.js';

/**
 * The replies that describe the node and the cluster in Redis's terms: INFO, ROLE, HELLO, the
 * Sentinel discovery commands, COMMAND and CONFIG GET. The leader is Redis's "master", the
 * followers its "slaves", and a replication offset is a log index.
 */

/** The cluster as one node sees it, for these replies. */
export interface Topology {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** The name Sentinel clients ask for (default "tandem"). */
  readonly clusterName: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: NodeId | null;
  readonly leaderRespAddress: string | null;
  readonly selfRespAddress: string;
  readonly lastIndex: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** The leader's view of its followers (empty elsewhere). */
  readonly followers: readonly { readonly id: NodeId; readonly respAddress: string | null; readonly matchIndex: number; readonly lastContactMs: number | null }[];
  /** Every other member with its RESP address, when known. */
  readonly peers: readonly { readonly id: NodeId; readonly respAddress: string | null }[];
  /** How many keys are stored: asked only by INFO keyspace (over LMDB it reads each key written since the last commit). */
  keys(): number;
  readonly readOnlyFollower: boolean;
  readonly uptimeSeconds: number;
  readonly connectedClients: number;
  readonly commandsProcessed: number;
  readonly bulkBytesMax: number;
}

/** The version reported to clients that check one (Redis 7.2 command set, Tandem's own version beside it). */
export const redisVersion = '7.2.0';
export const tandemVersion = '0.1.0';

const bulk = (value: string | number): Buffer => resp.bulk(String(value));

function splitHostPort(address: string): [string, string] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), address.slice(colon + 1)];
}

/** A 40-hex-digit replication id derived from the cluster id (Redis shows one per primary). */
function replicationId(clusterId: string): string {
  return Buffer.from(clusterId).toString('hex').padEnd(40, '0').slice(0, 40);
}

function isLeader(t: Topology): boolean {
  return t.role === 'leader';
}

/** INFO [section …]: Redis's sections server, clients, persistence, stats, replication, keyspace. */
export function infoText(t: Topology, sections: readonly string[]): string {
  const wanted = sections.length === 0 || sections.some((s) => ['all', 'everything', 'default'].includes(s)) ? null : new Set(sections);
  // Each section is made only when asked for: counting the keys may read the store.
  const blocks: [string, () => string[]][] = [
    ['server', () => [`redis_version:${redisVersion}`, `tandem_version:${tandemVersion}`, 'redis_mode:standalone', `run_id:${replicationId(t.nodeId)}`, `process_id:${process.pid}`, `tcp_port:${splitHostPort(t.selfRespAddress)[1]}`, `uptime_in_seconds:${t.uptimeSeconds}`, `tandem_node_id:${t.nodeId}`, `tandem_cluster_id:${t.clusterId}`]],
    ['clients', () => [`connected_clients:${t.connectedClients}`]],
    ['persistence', () => ['loading:0', 'async_loading:0', 'aof_enabled:1', 'rdb_bgsave_in_progress:0']],
    ['stats', () => [`total_commands_processed:${t.commandsProcessed}`]],
    ['replication', () => replicationLines(t)],
    ['keyspace', () => keyspaceLines(t.keys())],
  ];
  const out: string[] = [];
  for (const [name, lines] of blocks) {
    if (wanted !== null && !wanted.has(name)) continue;
    out.push(`# ${name[0]?.toUpperCase()}${name.slice(1)}`, ...lines(), '');
  }
  return out.join('\r\n');
}

function keyspaceLines(keys: number): string[] {
  return keys === 0 ? [] : [`db0:keys=${keys},expires=0,avg_ttl=0`];
}

function replicationLines(t: Topology): string[] {
  const tandem = [`tandem_role:${t.role}`, `tandem_term:${t.term}`, `tandem_commit_index:${t.commitIndex}`, `tandem_applied_index:${t.appliedIndex}`];
  if (isLeader(t)) {
    const replicas = t.followers.map((f, k) => {
      const [ip, port] = f.respAddress === null ? ['?', '0'] : splitHostPort(f.respAddress);
      const lagSeconds = f.lastContactMs === null ? -1 : Math.floor(f.lastContactMs / 1000);
      return `slave${k}:ip=${ip},port=${port},state=${f.lastContactMs === null ? 'wait_bgsave' : 'online'},offset=${f.matchIndex},lag=${lagSeconds}`;
    });
    return ['role:master', `connected_slaves:${t.followers.length}`, ...replicas, 'master_failover_state:no-failover', `master_replid:${replicationId(t.clusterId)}`, `master_repl_offset:${t.lastIndex}`, ...tandem];
  }
  const [host, port] = t.leaderRespAddress === null ? ['', '0'] : splitHostPort(t.leaderRespAddress);
  return [
    'role:slave',
    `master_host:${host}`,
    `master_port:${port}`,
    `master_link_status:${t.leaderRespAddress === null ? 'down' : 'up'}`,
    'master_sync_in_progress:0',
    `slave_repl_offset:${t.lastIndex}`,
    `slave_read_only:${t.readOnlyFollower ? 1 : 0}`,
    `master_replid:${replicationId(t.clusterId)}`,
    `master_repl_offset:${t.lastIndex}`,
    ...tandem,
  ];
}

/** ROLE: ["master", offset, [[ip, port, offset] …]] on the leader; ["slave", ip, port, state, offset] elsewhere. */
export function roleReply(t: Topology): Buffer {
  if (isLeader(t)) {
    const replicas = t.followers
      .filter((f) => f.respAddress !== null)
      .map((f) => {
        const [ip, port] = splitHostPort(f.respAddress as string);
        return resp.array([bulk(ip), bulk(port), bulk(f.matchIndex)]);
      });
    return resp.array([bulk('master'), resp.integer(t.lastIndex), resp.array(replicas)]);
  }
  const [host, port] = t.leaderRespAddress === null ? ['', '0'] : splitHostPort(t.leaderRespAddress);
  const state = t.leaderRespAddress === null ? 'connect' : 'connected';
  return resp.array([bulk('slave'), bulk(host), resp.integer(Number(port)), bulk(state), resp.integer(t.lastIndex)]);
}

/** HELLO's reply. */
export function helloReply(t: Topology, clientId: number, protocol: 2 | 3): Buffer {
  const pairs: [Buffer, Buffer][] = [
    [bulk('server'), bulk('redis')],
    [bulk('version'), bulk(redisVersion)],
    [bulk('proto'), resp.integer(protocol)],
    [bulk('id'), resp.integer(clientId)],
    [bulk('mode'), bulk('standalone')],
    [bulk('role'), bulk(isLeader(t) ? 'master' : 'replica')],
    [bulk('modules'), resp.array([])],
  ];
  return resp.map(pairs, protocol === 3);
}

function fieldsReply(fields: readonly (readonly [string, string | number])[], resp3: boolean): Buffer {
  return resp.map(
    fields.map(([k, v]) => [bulk(k), bulk(v)] as const),
    resp3,
  );
}

function masterFields(t: Topology): [string, string | number][] {
  const [ip, port] = splitHostPort(t.leaderRespAddress as string);
  return [
    ['name', t.clusterName],
    ['ip', ip],
    ['port', port],
    ['runid', replicationId(t.leaderId ?? '')],
    ['flags', 'master'],
    ['num-slaves', t.peers.length],
    ['num-other-sentinels', t.peers.length],
    ['quorum', Math.floor((t.peers.length + 1) / 2) + 1],
    ['tandem-node-id', t.leaderId ?? ''],
    ['tandem-term', t.term],
  ];
}

/**
 * SENTINEL: every node answers the discovery commands for its cluster's name, with the leader
 * it knows as the master and the other members as replicas and sentinels.
 */
export function sentinelReply(t: Topology, args: readonly string[], resp3: boolean): Buffer {
  const sub = (args[0] ?? '').toLowerCase();
  const name = args[1];
  const known = name === t.clusterName;
  const noSuchMaster = (): never => {
    throw new RespCommandError('ERR No such master with that name');
  };
  switch (sub) {
    case 'get-master-addr-by-name': {
      if (!known || t.leaderRespAddress === null) return resp.nilArray(resp3);
      const [ip, port] = splitHostPort(t.leaderRespAddress);
      return resp.array([bulk(ip), bulk(port)]);
    }
    case 'masters':
      return resp.array(t.leaderRespAddress === null ? [] : [fieldsReply(masterFields(t), resp3)]);
    case 'master':
      if (!known || t.leaderRespAddress === null) return noSuchMaster();
      return fieldsReply(masterFields(t), resp3);
    case 'replicas':
    case 'slaves': {
      if (!known) return noSuchMaster();
      const members = [{ id: t.nodeId, respAddress: t.selfRespAddress }, ...t.peers];
      const replicas = members.filter((m) => m.id !== t.leaderId && m.respAddress !== null);
      return resp.array(
        replicas.map((m) => {
          const [ip, port] = splitHostPort(m.respAddress as string);
          const fields: [string, string | number][] = [['name', m.respAddress as string], ['ip', ip], ['port', port], ['runid', replicationId(m.id)], ['flags', 'slave'], ['master-link-status', t.leaderRespAddress === null ? 'err' : 'ok'], ['tandem-node-id', m.id]];
          return fieldsReply(fields, resp3);
        }),
      );
    }
    case 'sentinels': {
      if (!known) return noSuchMaster();
      return resp.array(
        t.peers
          .filter((p) => p.respAddress !== null)
          .map((p) => {
            const [ip, port] = splitHostPort(p.respAddress as string);
            return fieldsReply([['name', p.id], ['ip', ip], ['port', port], ['runid', replicationId(p.id)], ['flags', 'sentinel']], resp3);
          }),
      );
    }
    case 'myid':
      return bulk(replicationId(t.nodeId));
    case 'ckquorum':
      if (!known) return noSuchMaster();
      return resp.simple(`OK ${t.peers.length + 1} usable Sentinels. Quorum and failover authorization can be reached`);
    default:
      throw new RespCommandError(`ERR Unknown sentinel subcommand '${args[0] ?? ''}'`);
  }
}

/** CONFIG GET: the few settings clients and redis-benchmark ask about, read-only. */
export function configGetReply(t: Topology, pattern: string, resp3: boolean, match: (pattern: string, key: string) => boolean): Buffer {
  const settings: [string, string][] = [
    ['appendonly', 'yes'],
    ['appendfsync', 'always'],
    ['save', ''],
    ['databases', '1'],
    ['maxmemory', '0'],
    ['proto-max-bulk-len', String(t.bulkBytesMax)],
    ['replica-read-only', t.readOnlyFollower ? 'yes' : 'no'],
    ['slave-read-only', t.readOnlyFollower ? 'yes' : 'no'],
  ];
  return fieldsReply(
    settings.filter(([key]) => match(pattern.toLowerCase(), key)),
    resp3,
  );
}

/** One COMMAND INFO entry: [name, arity, flags, first key, last key, step, categories, tips, key specs, subcommands]. */
export function commandInfo(name: string, arity: number, flags: readonly string[], firstKey: number, lastKey: number): Buffer {
  return resp.array([
    bulk(name.toLowerCase()),
    resp.integer(arity),
    resp.array(flags.map((f) => resp.simple(f))),
    resp.integer(firstKey),
    resp.integer(lastKey),
    resp.integer(firstKey === 0 ? 0 : 1),
    resp.array([]),
    resp.array([]),
    resp.array([]),
    resp.array([]),
  ]);
}

/** A COMMAND DOCS entry: a summary and group, enough for redis-cli's hints and clients' checks. */
export function commandDocs(names: readonly string[], resp3: boolean): Buffer {
  return resp.map(
    names.map((name) => [bulk(name.toLowerCase()), resp.map([[bulk('summary'), bulk(`Tandem's ${name.toUpperCase()}`)], [bulk('since'), bulk('1.0.0')], [bulk('group'), bulk('string')]], resp3)] as const),
    resp3,
  );
}
