import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RespErrorReply, type RespValue } from '../codec/resp.js';
import { commandsOfEntry, decodeCommand } from '../kv/commands.js';
import { RespConnection } from '../net/resp-connection.js';
import { Prng } from '../shared/prng.js';
import { checkKeyValueHistory, type HistoryOp, type RegisterInput, type RegisterOutput } from '../sim/linearizability.js';
import { quantile, waitFor } from '../bench/cluster.js';
import { ChaosCluster } from './cluster.js';
import { within, timedOut } from '../shared/deadline.js';

/**
 * The fault-injection harness on real processes: a cluster of `tandem start` processes whose
 * peer links run through proxies it controls, concurrent clients speaking RESP to random nodes,
 * a nemesis drawing faults from a seed, then healing, convergence and the checks of DESIGN.md §4.
 */

export interface ChaosOptions {
  readonly seed: number;
  readonly seconds: number;
  readonly nodes: number;
  readonly clients: number;
  /** Add one more node as a learner (non-voting) to the voters. */
  readonly learner?: boolean;
  /** A planted bug the nodes run with (TANDEM_PLANTED_BUG), to show the checks catch it. */
  readonly bug: string | null;
  /** How long the healed cluster has to converge (default 30 s). */
  readonly convergeTimeoutMs?: number;
  /** Only these fault kinds (default: all of faultKinds). */
  readonly faults?: readonly string[];
  /**
   * Bytes of padding after each written value (default 0): with some, the state outgrows one
   * message, so the snapshots the faults cause are streamed in chunks and staged in files.
   */
  readonly padBytes?: number;
  /**
   * The nodes' --log-cache-mb (default: theirs): at 0, a follower the faults set back is fed
   * entries read back from the leader's disk, and held entries are read back to be applied.
   */
  readonly logCacheMb?: number;
  readonly log: (line: string) => void;
}

/** One fault as it was injected, with times in ms from the start of the run. */
export interface FaultRecord {
  readonly name: string;
  readonly nodes: readonly string[];
  readonly startMs: number;
  endMs: number;
}

export interface ChaosReport {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultRecord[];
  readonly ops: { ok: number; failed: number; unknown: number; reads: number; writes: number };
  readonly acknowledgedDurable: number;
  readonly acknowledgedLost: readonly string[];
  readonly linearizability: { readonly violations: readonly string[]; readonly undecided: readonly string[]; readonly opsChecked: number };
  readonly phantomReads: readonly string[];
  readonly rollback: { readonly entries: number; readonly writes: number; readonly leaderAcked: number; readonly unacknowledged: number; readonly violations: readonly string[] };
  readonly failoverMs: readonly number[];
  readonly converged: boolean;
  /** Replica checking under the faults: checkpoints the nodes recorded at the end, and alarms they raised. */
  readonly replicaChecks: { readonly checkpoints: number; readonly alarms: readonly string[] };
  /** Snapshots the nodes installed (from their logs), and how many came staged in a file. */
  readonly snapshots: { readonly installed: number; readonly staged: number };
  /** Log entries the nodes read back from disk (for followers, and to apply), by their metrics at the end (a restart zeroes a node's). */
  readonly entriesReadBack: { readonly follower: number; readonly apply: number };
  readonly violations: readonly string[];
}

type Ack = 'leader' | 'majority' | 'all';

interface Op extends HistoryOp<RegisterInput, RegisterOutput> {
  readonly key: string;
  call: number;
  ret: number;
  output: RegisterOutput | undefined;
}

interface WriteRecord {
  readonly key: string;
  readonly value: string;
  readonly ack: Ack;
  outcome: 'ok' | 'failed' | 'unknown';
}

/** Register keys the linearizability check covers; few, so operations on each overlap. */
const registerKeys = 12;
const requestTimeoutMs = 2000;
/** A client gives up on one operation after this long (then its outcome is unknown). */
const opTimeoutMs = 4000;
/** A client pauses this long after a failure, as a real one would, rather than spin on a dead node. */
const backoffMs = 20;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const prng = new Prng(options.seed);
  const ids = Array.from({ length: options.nodes + (options.learner === true ? 1 : 0) }, (_, k) => `c${k + 1}`);
  const learnerFlags = options.learner === true ? ['--learners', ids[ids.length - 1] as string] : [];
  const faultDir = mkdtempSync(join(tmpdir(), 'tandem-chaos-faults-'));
  const env = { ...process.env, TANDEM_PLANTED_BUG: options.bug ?? '', TANDEM_FAULT_FILE: join(faultDir, '{id}.json') };
  // Checkpoints every 100 entries: replica checking runs through the faults too, and must not cry wolf.
  // With padded values, a snapshot every 200 entries (20 kept behind it), so that a follower the
  // faults set back for a few seconds catches up by a staged snapshot rather than from the log.
  const snapshotFlags = (options.padBytes ?? 0) > 0 ? ['--snapshot-every', '200', '--snapshot-every-mb', '1'] : ['--snapshot-every', '2000'];
  const cacheFlags = options.logCacheMb === undefined ? [] : ['--log-cache-mb', String(options.logCacheMb)];
  const cluster = new ChaosCluster(ids, ['--request-timeout-ms', String(requestTimeoutMs), ...snapshotFlags, ...cacheFlags, '--digest-every', '100', ...learnerFlags], env);
  await cluster.init();
  for (const id of ids) cluster.start(id);
  await cluster.leader();
  const started = performance.now();
  const now = (): number => performance.now() - started;
  const ends = options.seconds * 1000;
  const ops: Op[] = [];
  const padding = '.'.repeat(options.padBytes ?? 0);
  const writes = new Map<string, WriteRecord>();
  const faults: FaultRecord[] = [];
  const down = new Set<string>();
  const paused = new Set<string>();
  const killsOfLeader: number[] = [];
  const counts = { ok: 0, failed: 0, unknown: 0, reads: 0, writes: 0 };

  const worker = async (w: number): Promise<void> => {
    const random = new Prng(options.seed * 1000 + w);
    const connections = new Map<string, RespConnection>();
    const clientId = `w${w}`;
    let seq = 0;
    let n = 0;
    /** A node that could not be reached: the request never left, so it definitely did not happen. */
    const unreachable = new Error('no connection');
    const call = async (id: string, args: (string | Uint8Array)[]): Promise<RespValue | Error> => {
      let connection = connections.get(id);
      if (connection === undefined || !connection.open) {
        try {
          connection = await RespConnection.open('127.0.0.1', cluster.respPort(id), 1000);
        } catch {
          await sleep(backoffMs);
          return unreachable;
        }
        connections.set(id, connection);
      }
      try {
        const answer = await within(connection.call(args), opTimeoutMs);
        if (answer === timedOut) {
          connection.close();
          return new Error('client timeout');
        }
        return answer;
      } catch (error) {
        return error as Error;
      }
    };
    while (now() < ends) {
      const id = ids[random.int(0, ids.length - 1)] as string;
      const roll = random.float();
      if (roll < 0.35) {
        const key = `r${random.int(0, registerKeys - 1)}`;
        const op: Op = { id: ops.length, key, call: now(), ret: Number.POSITIVE_INFINITY, input: { op: 'get' }, output: undefined };
        const answer = await call(id, ['TANDEM.READ', 'linearizable', 'GET', key]);
        counts.reads++;
        if (Array.isArray(answer) && !(answer[1] instanceof RespErrorReply)) {
          op.ret = now();
          op.output = answer[1] === null ? null : String(answer[1]);
          ops.push(op);
          counts.ok++;
        } else {
          counts.failed++;
          await sleep(backoffMs);
        }
        continue;
      }
      const durable = roll >= 0.85;
      const key = durable ? `d:${clientId}:${n}` : `r${random.int(0, registerKeys - 1)}`;
      const value = `${clientId}-${n++}${padding}`;
      const ackRoll = random.float();
      const ack: Ack = ackRoll < 0.1 ? 'leader' : ackRoll < 0.2 ? 'all' : 'majority';
      const tag = `${clientId}:${++seq}`;
      const record: WriteRecord = { key, value, ack, outcome: 'unknown' };
      writes.set(tag, record);
      const op: Op = { id: ops.length, key, call: now(), ret: Number.POSITIVE_INFINITY, input: { op: 'put', value }, output: undefined };
      const answer = await call(id, ['TANDEM.EXEC', clientId, String(seq), ack, 'SET', key, value]);
      counts.writes++;
      if (Array.isArray(answer) && answer[1] === 'OK') {
        record.outcome = 'ok';
        counts.ok++;
        // A leader-acknowledged write may be lost by design, so its outcome stays open.
        if (ack !== 'leader') {
          op.ret = now();
          op.output = null;
        }
      } else if (answer === unreachable || (answer instanceof RespErrorReply && answer.code === 'NOT_LEADER')) {
        record.outcome = 'failed';
        counts.failed++;
        continue;
      } else {
        counts.unknown++;
        await sleep(backoffMs);
      }
      if (!durable) ops.push(op);
    }
    for (const connection of connections.values()) connection.close();
  };

  const nemesis = async (): Promise<void> => {
    while (now() < ends - 3000) {
      await sleep(500 + prng.int(0, 1000 - 1));
      const fault = await injectFault(cluster, prng, ids, down, paused, options.faults ?? faultKinds, faultDir);
      if (fault === null) continue;
      const record: FaultRecord = { name: fault.name, nodes: fault.nodes, startMs: Math.round(now()), endMs: -1 };
      faults.push(record);
      // Failover is measured where one is possible at once: the leader alone killed.
      if (fault.name === 'kill-leader') killsOfLeader.push(now());
      options.log(`${(record.startMs / 1000).toFixed(1)}s  ${fault.name} ${fault.nodes.join(',')}`);
      await sleep(Math.min(1000 + prng.int(0, 2000 - 1), Math.max(0, ends - now() - 1000)));
      await fault.heal();
      record.endMs = Math.round(now());
    }
  };

  try {
    await Promise.all([nemesis(), ...Array.from({ length: options.clients }, (_, w) => worker(w))]);
    // Heal everything: links, paused and dead nodes; then every node must converge.
    cluster.healAll();
    for (const id of ids) writeFileSync(join(faultDir, `${id}.json`), '{}');
    for (const id of paused) cluster.processes.get(id)?.kill('SIGCONT');
    for (const id of down) cluster.start(id);
    let converged = true;
    try {
      await cluster.converged(options.convergeTimeoutMs ?? 30_000);
    } catch {
      converged = false;
    }
    return await check(cluster, options, ids, ops, writes, faults, killsOfLeader, counts, converged, now);
  } finally {
    await cluster.stopAll();
    rmSync(faultDir, { recursive: true, force: true });
  }
}

/** The faults the nemesis draws from. */
export const faultKinds = ['kill-leader', 'kill-follower', 'kill-majority', 'pause-leader', 'pause-node', 'isolate-leader', 'isolate-node', 'split', 'bridge', 'one-way', 'slow-links', 'disk-full', 'slow-disk', 'switchover', 'remove-readd'] as const;

interface Fault {
  readonly name: string;
  readonly nodes: readonly string[];
  heal(): Promise<void>;
}

async function leaderOf(cluster: ChaosCluster, among: readonly string[]): Promise<string | null> {
  try {
    return await within(cluster.leader(among), 3000).then((id) => (id === timedOut ? null : id));
  } catch {
    return null;
  }
}

/** Picks and injects one fault; returns how to heal it (null when none applies right now). */
async function injectFault(cluster: ChaosCluster, prng: Prng, ids: readonly string[], down: Set<string>, paused: Set<string>, kinds: readonly string[], faultDir: string): Promise<Fault | null> {
  const leader = await leaderOf(cluster, ids);
  const pick = <T>(list: readonly T[]): T => list[prng.int(0, list.length - 1)] as T;
  const shuffled = [...ids].sort(() => prng.float() - 0.5);
  const kind = pick(kinds);
  const restart = (nodes: readonly string[]) => async (): Promise<void> => {
    for (const id of nodes) {
      cluster.start(id);
      down.delete(id);
    }
  };
  const resume = (nodes: readonly string[]) => async (): Promise<void> => {
    for (const id of nodes) {
      cluster.processes.get(id)?.kill('SIGCONT');
      paused.delete(id);
    }
  };
  const heal = async (): Promise<void> => cluster.healAll();
  const target = leader ?? pick(ids);
  switch (kind) {
    case 'kill-leader':
    case 'kill-follower':
    case 'kill-majority': {
      const victims = kind === 'kill-majority' ? [target, ...ids.filter((id) => id !== target)].slice(0, Math.floor(ids.length / 2) + 1) : kind === 'kill-leader' ? [target] : [pick(ids.filter((id) => id !== target))];
      for (const id of victims) {
        await cluster.kill(id, 'SIGKILL');
        down.add(id);
      }
      return { name: kind, nodes: victims, heal: restart(victims) };
    }
    case 'pause-leader':
    case 'pause-node': {
      const victim = kind === 'pause-leader' ? target : pick(ids);
      cluster.processes.get(victim)?.kill('SIGSTOP');
      paused.add(victim);
      return { name: kind, nodes: [victim], heal: resume([victim]) };
    }
    case 'isolate-leader':
    case 'isolate-node': {
      const victim = kind === 'isolate-leader' ? target : pick(ids);
      cluster.cutBetween([victim], ids.filter((id) => id !== victim));
      return { name: kind, nodes: [victim], heal };
    }
    case 'split': {
      const minority = shuffled.slice(0, Math.floor((ids.length - 1) / 2));
      cluster.cutBetween(minority, ids.filter((id) => !minority.includes(id)));
      return { name: 'split', nodes: minority, heal };
    }
    case 'bridge': {
      const [bridge, ...rest] = shuffled as [string, ...string[]];
      const left = rest.slice(0, Math.floor(rest.length / 2));
      const right = rest.slice(left.length);
      cluster.cutBetween(left, right);
      return { name: 'bridge', nodes: [bridge], heal };
    }
    case 'one-way': {
      const victim = target;
      for (const other of ids) if (other !== victim) cluster.blackholeFrom(victim, other);
      return { name: 'one-way (leader cannot send)', nodes: [victim], heal };
    }
    case 'remove-readd': {
      // A membership change under load: a follower is removed, then added back as a learner
      // (with its real peer address, so its links bypass the proxies from then on) and promoted.
      if (leader === null) return null;
      const victim = pick(ids.filter((id) => id !== leader));
      const wasVoter = (await cluster.status(leader).catch(() => null))?.config.voters.includes(victim) ?? true;
      const removed = await clusterCall(cluster, leader, 'POST', `/v1/members/remove?id=${victim}`);
      if (!removed) return null;
      return { name: 'remove-readd', nodes: [victim], heal: async () => readd(cluster, ids, victim, wasVoter) };
    }
    case 'disk-full':
    case 'slow-disk': {
      const victim = kind === 'disk-full' && prng.chance(0.5) ? target : pick(ids);
      const fault = kind === 'disk-full' ? { full: true } : { writeDelayMs: 20 + prng.int(0, 60) };
      writeFileSync(join(faultDir, `${victim}.json`), JSON.stringify(fault));
      return { name: kind, nodes: [victim], heal: async () => writeFileSync(join(faultDir, `${victim}.json`), '{}') };
    }
    case 'slow-links': {
      cluster.delayAll(20 + prng.int(0, 40 - 1));
      return { name: 'slow-links', nodes: [], heal };
    }
    default: {
      if (leader === null) return null;
      const to = pick(ids.filter((id) => id !== leader));
      await fetch(`${cluster.http(leader)}/v1/switchover?to=${to}`, { method: 'POST', signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      return { name: 'switchover', nodes: [leader, to], heal: async () => undefined };
    }
  }
}

/** Reads that returned a value no write ever carried for that key (as "key=value"). */
export function phantomReads(
  ops: readonly (HistoryOp<RegisterInput, RegisterOutput> & { readonly key: string })[],
  writes: Iterable<{ readonly key: string; readonly value: string }>,
): string[] {
  const written = new Map<string, Set<string>>();
  for (const write of writes) {
    const set = written.get(write.key) ?? new Set<string>();
    set.add(write.value);
    written.set(write.key, set);
  }
  return ops.filter((op) => op.input.op === 'get' && op.output !== null && op.output !== undefined && !written.get(op.key)?.has(String(op.output))).map((op) => `${op.key}=${String(op.output)}`);
}

/** A POST or GET to a node's HTTP API; true when it answered 200. */
async function clusterCall(cluster: ChaosCluster, id: string, method: string, path: string, body?: string): Promise<boolean> {
  try {
    const response = await cluster.request(id, method, path, body);
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Adds `victim` back (join as a learner, then promote it if it was a voter), trying for up to 20 s. */
async function readd(cluster: ChaosCluster, ids: readonly string[], victim: string, wasVoter: boolean): Promise<void> {
  const member = JSON.stringify({ id: victim, peer: `127.0.0.1:${cluster.peerPorts.get(victim)}`, http: `127.0.0.1:${new URL(cluster.http(victim)).port}`, resp: `127.0.0.1:${cluster.respPort(victim)}` });
  const deadline = performance.now() + 20_000;
  let joined = false;
  while (performance.now() < deadline) {
    const leader = await leaderOf(cluster, ids.filter((id) => id !== victim));
    if (leader !== null) {
      if (!joined) joined = await clusterCall(cluster, leader, 'POST', '/v1/members/join', member);
      if (joined && !wasVoter) return;
      if (joined && (await clusterCall(cluster, leader, 'POST', `/v1/members/promote?id=${victim}`))) return;
    }
    await sleep(200);
  }
}

async function check(
  cluster: ChaosCluster,
  options: ChaosOptions,
  ids: readonly string[],
  ops: Op[],
  writes: Map<string, WriteRecord>,
  faults: FaultRecord[],
  killsOfLeader: readonly number[],
  counts: ChaosReport['ops'],
  converged: boolean,
  now: () => number,
): Promise<ChaosReport> {
  const violations: string[] = [];
  if (!converged) violations.push(`the nodes did not converge to one state within ${(options.convergeTimeoutMs ?? 30_000) / 1000} s of healing`);
  // Every node's final state, read locally (stale) once all have converged. A node that could not
  // be read is left out of the checks below (its state is unknown, not lost) and is a violation.
  const finals = new Map<string, Map<string, string | null>>();
  const keys = [...new Set([...writes.values()].map((w) => w.key))];
  for (const id of ids) {
    try {
      finals.set(id, await readFinalState(cluster.respPort(id), keys));
    } catch (error) {
      violations.push(`could not read the final state of ${id}: ${(error as Error).message}`);
    }
  }
  // Replica checking: a leader that compared a follower's checkpoint with its own and found them
  // different raised an alarm; after these faults, with no replica corrupted, none may have.
  const replicaChecks = { checkpoints: 0, alarms: [] as string[] };
  const entriesReadBack = { follower: 0, apply: 0 };
  for (const id of ids) {
    try {
      const status = await cluster.status(id);
      replicaChecks.checkpoints += status.checkpoints.length;
      for (const alarm of status.alarms) replicaChecks.alarms.push(`${id} at ${alarm.index}: ${JSON.stringify(alarm.digests)}`);
      const metrics = await (await cluster.request(id, 'GET', '/metrics')).text();
      for (const purpose of ['follower', 'apply'] as const) {
        entriesReadBack[purpose] += Number(new RegExp(`^tandem_log_entries_read_from_disk_total\\{for="${purpose}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
      }
    } catch (error) {
      violations.push(`could not read the status of ${id}: ${(error as Error).message}`);
    }
  }
  if (replicaChecks.alarms.length > 0) violations.push(`replica checking raised ${replicaChecks.alarms.length} alarm(s), the first: ${replicaChecks.alarms.slice(0, 3).join('; ')}`);
  // Acknowledged durable writes (majority or all) must be on every node. Each durable key is written once.
  const lost: string[] = [];
  let acknowledgedDurable = 0;
  for (const [tag, write] of writes) {
    if (write.outcome !== 'ok' || write.ack === 'leader' || !write.key.startsWith('d:')) continue;
    acknowledgedDurable++;
    const missing = [...finals].filter(([, state]) => state.get(write.key) !== write.value).map(([id]) => id);
    if (missing.length > 0) lost.push(`${tag} (${write.key}, ack ${write.ack}) missing on ${missing.join(', ')}`);
  }
  if (lost.length > 0) violations.push(`${lost.length} acknowledged writes lost`);
  // No read may return a value that was never written.
  const phantoms = phantomReads(ops, writes.values());
  if (phantoms.length > 0) violations.push(`${phantoms.length} reads returned values never written`);
  // Linearizability of the register keys. A write of unknown outcome that no read (and no final
  // state) ever saw can be dropped: placed just before the end, it explains nothing and breaks nothing.
  const seen = new Set(ops.filter((op) => op.input.op === 'get' && typeof op.output === 'string').map((op) => `${op.key}=${op.output as string}`));
  const end = now();
  const finalReads: Op[] = [...(finals.values().next().value ?? new Map<string, string | null>())].filter(([key]) => key.startsWith('r')).map(([key, value], k) => ({ id: 1_000_000 + k, key, call: end, ret: end, input: { op: 'get' }, output: value }));
  for (const read of finalReads) if (read.output !== null) seen.add(`${read.key}=${String(read.output)}`);
  const history = [...ops.filter((op) => op.input.op === 'get' || op.ret !== Number.POSITIVE_INFINITY || seen.has(`${op.key}=${(op.input as { value: string }).value}`)), ...finalReads];
  const verdict = checkKeyValueHistory(history, 2_000_000);
  if (verdict.violations.length > 0) violations.push(`not linearizable on keys ${verdict.violations.join(', ')}`);
  // As in the simulator, a history the search could not decide within its budget is not a pass.
  if (verdict.unknown.length > 0) violations.push(`linearizability undecided on keys ${verdict.unknown.join(', ')}`);
  // Every entry in rollback/ is reported with the ack level it had been acknowledged at.
  const rollback = { entries: 0, writes: 0, leaderAcked: 0, unacknowledged: 0, violations: [] as string[] };
  for (const id of ids) {
    const file = join(cluster.dir(id), 'rollback', 'rollback.jsonl');
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')) {
      const entry = JSON.parse(line) as { index: number; term: number; kind: string; payloadBase64: string };
      rollback.entries++;
      if (entry.kind !== 'command') continue;
      // An entry may hold several writes (those that reached the leader in one turn).
      for (const part of commandsOfEntry(Buffer.from(entry.payloadBase64, 'base64'))) {
        const command = decodeCommand(part);
        rollback.writes++;
        const write = writes.get(`${command.clientId}:${command.seq}`);
        const acked = write?.outcome === 'ok';
        options.log(`rollback on ${id}: index ${entry.index} term ${entry.term} ${command.clientId}:${command.seq} ${acked ? `acknowledged at ${write?.ack}` : 'never acknowledged'}`);
        if (!acked) rollback.unacknowledged++;
        else if (write?.ack === 'leader') rollback.leaderAcked++;
        else rollback.violations.push(`${id}: ${command.clientId}:${command.seq} acknowledged at ${write?.ack} is in rollback/ (index ${entry.index})`);
      }
    }
  }
  if (rollback.violations.length > 0) violations.push(`${rollback.violations.length} writes acknowledged at majority/all were rolled back`);
  // Failover: from each kill of a leader to the first write that was sent after it and succeeded.
  const failoverMs = killsOfLeader
    .map((killed) => {
      const firstOk = [...writes.values()].length === 0 ? undefined : ops.filter((op) => op.input.op === 'put' && op.call >= killed && op.ret !== Number.POSITIVE_INFINITY).reduce((best, op) => Math.min(best, op.ret), Number.POSITIVE_INFINITY);
      return firstOk === undefined || firstOk === Number.POSITIVE_INFINITY ? -1 : Math.round(firstOk - killed);
    })
    .filter((ms) => ms >= 0);
  return {
    seed: options.seed,
    nodes: ids.length,
    faults,
    ops: counts,
    acknowledgedDurable,
    acknowledgedLost: lost,
    linearizability: { violations: verdict.violations, undecided: verdict.unknown, opsChecked: history.length },
    phantomReads: phantoms,
    rollback,
    failoverMs,
    converged,
    replicaChecks,
    snapshots: snapshotsInstalled(ids.map((id) => cluster.output.get(id) ?? '')),
    entriesReadBack,
    violations,
  };
}

/** Counts the "snapshot installed" lines of the nodes' logs, and those restored from a staged file. */
function snapshotsInstalled(logs: readonly string[]): { installed: number; staged: number } {
  const sources = logs.flatMap((log) => [...log.matchAll(/"event":"snapshot installed".*?"restoredFrom":"(\w+)"/g)].map((m) => m[1]));
  return { installed: sources.length, staged: sources.filter((source) => source === 'file').length };
}

/**
 * The values of `keys` on the node at `port`, read at `stale` (its own state), tried again until
 * `deadlineMs`: a node that loses its leadership closes its client connections (see
 * RespServer.disconnectClients), and a late election after the healing did that to a final read
 * once, which then counted every write as lost on that node.
 */
export function readFinalState(port: number, keys: readonly string[], deadlineMs = 10_000): Promise<Map<string, string | null>> {
  return waitFor(`the final state of the node at port ${port}`, deadlineMs, async () => {
    const connection = await RespConnection.open('127.0.0.1', port, 2000);
    try {
      await connection.call(['TANDEM.OPTIONS', 'CONSISTENCY', 'stale']);
      const values = keys.length === 0 ? [] : await connection.call(['MGET', ...keys]);
      if (!Array.isArray(values)) throw new Error(`MGET answered ${String(values)}`);
      return new Map(keys.map((key, k) => [key, values[k] === null || values[k] === undefined ? null : String(values[k])]));
    } finally {
      connection.close();
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A one-paragraph summary of a report. */
export function describeReport(report: ChaosReport): string {
  const sorted = [...report.failoverMs].sort((a, b) => a - b);
  const failover = sorted.length === 0 ? 'none measured' : `${sorted.length} measured, p50 ${quantile(sorted, 0.5)} ms, max ${sorted[sorted.length - 1]} ms (each: ${sorted.join(', ')} ms)`;
  return [
    `seed ${report.seed}, ${report.nodes} nodes: ${report.faults.length} faults (${[...new Set(report.faults.map((f) => f.name))].join(', ')})`,
    `ops: ${report.ops.ok} ok, ${report.ops.failed} failed, ${report.ops.unknown} unknown (${report.ops.writes} writes, ${report.ops.reads} linearizable reads)`,
    `acknowledged majority/all writes checked on every node: ${report.acknowledgedDurable}, lost: ${report.acknowledgedLost.length}`,
    `linearizability: ${report.linearizability.violations.length === 0 ? 'ok' : `VIOLATED on ${report.linearizability.violations.join(', ')}`} (${report.linearizability.opsChecked} ops checked${report.linearizability.undecided.length > 0 ? `; undecided on ${report.linearizability.undecided.join(', ')}` : ''})`,
    `reads of values never written: ${report.phantomReads.length}`,
    `rollback/ entries: ${report.rollback.entries}, holding ${report.rollback.writes} writes (${report.rollback.unacknowledged} never acknowledged, ${report.rollback.leaderAcked} acknowledged at leader, ${report.rollback.violations.length} at majority/all)`,
    `failovers (kill of the leader to the next successful write): ${failover}`,
    `converged: ${report.converged ? 'yes, equal digests' : 'NO'}`,
    `replica checking (checkpoints every 100 entries): ${report.replicaChecks.checkpoints} checkpoints held at the end, ${report.replicaChecks.alarms.length} alarms`,
    `snapshots installed: ${report.snapshots.installed} (${report.snapshots.staged} staged in a file)`,
    `log entries read back from disk (by the metrics at the end): ${report.entriesReadBack.follower} for followers, ${report.entriesReadBack.apply} to apply`,
    report.violations.length === 0 ? 'RESULT: ok' : `RESULT: VIOLATIONS: ${report.violations.join('; ')}`,
    ...report.acknowledgedLost.slice(0, 10).map((line) => `  lost: ${line}`),
    ...report.rollback.violations.slice(0, 10).map((line) => `  rolled back: ${line}`),
  ].join('\n');
}

