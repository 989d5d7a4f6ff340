import type { Server } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { PlantedBugs } from '../core/raft.js';
import type { Ack, ClusterConfig, NodeId } from '../core/types.js';
import { Engine } from '../engine/engine.js';
import type { Runtime } from '../engine/interfaces.js';
import { KvStateMachine } from '../kv/machine.js';
import { snapshotChunkBytes, TcpTransport, type PeerAddress } from '../net/transport.js';
import { crc32cImplementation } from '../codec/crc32c.js';
import { defaultRespLimits } from '../codec/resp.js';
import { DigestCheck } from '../server/digest-check.js';
import { AddressBook, hostPort, Membership } from '../server/membership.js';
import { createHttpServer } from '../server/http.js';
import { RespServer } from '../server/resp-server.js';
import { LagHistory, type SampledLog } from '../server/lag-history.js';
import { Metrics } from '../server/metrics.js';
import type { ElectionRecord, FollowerStatus, NodeStatus } from '../server/status.js';
import { Prng } from '../shared/prng.js';
import { FileStorage, type DiskFaults } from '../storage/file-storage.js';
import { LmdbStore } from '../storage/lmdb-store.js';
import { fnv1a } from '../shared/hash.js';
import type { Security } from '../shared/security.js';
import type { Logger } from './log.js';
import { heapReserveBytes } from './heap-reserve.js';

/** Everything `tandem start` needs to run one node. */
export interface NodeConfig {
  readonly id: NodeId;
  readonly dir: string;
  readonly clusterId: string;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly learners: readonly NodeId[];
  /** A member's HTTP address to join the cluster through (a new member), or null. */
  readonly join: string | null;
  /** The configuration to start from when the data directory is empty (a joined node's); default: --peers and --learners. */
  readonly bootstrap?: ClusterConfig;
  readonly httpHost: string;
  readonly httpPort: number;
  /** The RESP port (0: no RESP front end). */
  readonly respPort: number;
  readonly clusterName: string;
  readonly followerWrites: 'forward' | 'reject';
  /** Client password, cluster secret, TLS. */
  readonly security: Security;
  readonly respBulkBytesMax: number;
  readonly ack: Ack;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly priority: number;
  readonly requestTimeoutMs: number;
  readonly snapshotEveryEntries: number;
  /** Also take a snapshot once this many payload bytes were applied since the last one. */
  readonly snapshotEveryBytes: number;
  /** Record the state digest at every multiple of this index and compare replicas there (0: never). */
  readonly digestEveryEntries: number;
  /** Hold new writes back while the state store holds more than this many bytes uncommitted. */
  readonly storeBacklogBytes: number;
  /** Payload bytes of committed log entries kept in memory (older ones are read from disk when a follower needs them). */
  readonly logCacheBytes: number;
}

/** The process's memory now, for the status (see NodeStatus.memory). */
function memoryNow(logPayloadBytes: number): NodeStatus['memory'] {
  const usage = process.memoryUsage();
  return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed, heapReserveBytes: heapReserveBytes(), externalBytes: usage.external, logPayloadBytes };
}

/** A running node. */
export interface RunningNode {
  readonly engine: Engine;
  readonly httpAddress: string;
  readonly respAddress: string | null;
  close(): Promise<void>;
}

/** How often follower lag and the metrics gauges are sampled. */
const statusSampleMs = 100;
/** How often the event loop is probed for stalls, and the lateness that is logged. */
const stallProbeMs = 50;
const stallWarnMs = 150;
/** How often the event-loop delay metric samples the loop. */
const loopDelaySampleMs = 10;
/** Elections kept for the status API and the dashboard. */
const electionsKept = 20;
/** How often a leader compares its followers' checkpoint digests with its own. */
const digestPollMs = 1000;

/** Real time for the engine: a monotonic clock, setImmediate for "after this turn", timers. */
export const realRuntime: Runtime = {
  now: () => performance.now(),
  defer: (fn) => setImmediate(fn),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/**
 * The host other nodes and clients are told to use for this node's HTTP and RESP ports: the
 * listen address, unless that is a wildcard (0.0.0.0, ::), then the host of this node's own peer
 * address — the name the other nodes already reach it by.
 */
export function advertisedHost(config: Pick<NodeConfig, 'httpHost' | 'peers' | 'id'>): string {
  if (config.httpHost !== '0.0.0.0' && config.httpHost !== '::' && config.httpHost !== '') return config.httpHost;
  return config.peers.get(config.id)?.host ?? config.httpHost;
}

/**
 * Test-only: TANDEM_FAULT_FILE names a JSON file {"writeDelayMs": n, "full": true|false} ("{id}"
 * in the name is replaced by the node's id) that the log's writer reads whenever it changes, to
 * delay each write or fail it as a full disk would.
 */
function injectedDiskFaults(log: Logger, id: NodeId): (() => DiskFaults) | undefined {
  const pattern = process.env['TANDEM_FAULT_FILE'];
  if (pattern === undefined || pattern === '') return undefined;
  const file = pattern.replaceAll('{id}', id);
  log('warn', 'disk faults can be injected through TANDEM_FAULT_FILE (test only)', { file });
  let cached: DiskFaults = { writeDelayMs: 0, full: false };
  let seen = '';
  return () => {
    let stamp: string;
    try {
      const stat = statSync(file);
      stamp = `${stat.mtimeMs}/${stat.size}`;
    } catch {
      stamp = 'none';
    }
    if (stamp === seen) return cached;
    seen = stamp;
    try {
      const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<DiskFaults>;
      cached = { writeDelayMs: Number(value.writeDelayMs ?? 0) || 0, full: value.full === true };
    } catch {
      cached = { writeDelayMs: 0, full: false };
    }
    return cached;
  };
}

/**
 * Test-only: TANDEM_PLANTED_BUG=ack-majority|up-to-date|current-term|session breaks the protocol
 * on purpose, so the fault-injection harness can show that its checks catch a broken build.
 */
function plantedBugs(log: Logger): PlantedBugs {
  const name = process.env['TANDEM_PLANTED_BUG'];
  if (name === undefined || name === '' || name.startsWith('diverge:')) return {};
  const bugs: Record<string, PlantedBugs> = {
    'ack-majority': { ackMajorityOnLeaderFsync: true },
    'up-to-date': { skipUpToDateCheck: true },
    'current-term': { skipCurrentTermCommitRule: true },
    session: { sessionReadsWithoutWaiting: true },
  };
  const bug = bugs[name];
  if (bug === undefined) throw new Error(`TANDEM_PLANTED_BUG=${name} is not one of ${Object.keys(bugs).join(', ')}`);
  log('warn', 'THIS NODE RUNS WITH A PLANTED BUG (test only); it can lose acknowledged writes', { bug: name });
  return bug;
}

/**
 * Test-only: TANDEM_PLANTED_BUG=diverge:ID makes node ID drop every 50th SET it applies, so its
 * state silently differs from the others' (the harness's convergence check must notice).
 */
function plantedDivergence(id: NodeId, log: Logger): number {
  const name = process.env['TANDEM_PLANTED_BUG'] ?? '';
  if (name !== `diverge:${id}`) return 0;
  log('warn', 'THIS NODE RUNS WITH A PLANTED BUG (test only): it drops every 50th SET', { bug: name });
  return 50;
}

/** Opens the data directory, recovers, and starts the engine, the peer transport and the HTTP API. */
export async function startNode(config: NodeConfig, log: Logger, onFatal: (error: Error) => void): Promise<RunningNode> {
  const metrics = new Metrics();
  const started = performance.now();
  const store = new LmdbStore(join(config.dir, 'state'), (error) => {
    log('error', 'the state store could not commit; the node stops', { error: error.message });
    onFatal(error);
  }, config.storeBacklogBytes);
  const kv = new KvStateMachine(store, plantedDivergence(config.id, log));
  // Entries the state machine has applied stay on disk: they are read back only for a follower.
  const { storage, recovered, report } = FileStorage.open(config.dir, { onSync: (ms) => metrics.fsyncLatency.observe(ms / 1000), faults: injectedDiskFaults(log, config.id),
    keepEntriesFrom: kv.appliedIndex + 1,
    onRecoveryProgress: (read, total) => {
      if (total >= 4) log('info', 'reading the log', { segments: `${read}/${total}`, percent: Math.floor((100 * read) / total) });
    },
  });
  if (report.tornBytesCut > 0) log('warn', 'torn tail cut at recovery', { file: report.tornFile, bytes: report.tornBytesCut });
  log('info', 'recovered', {
    term: recovered.hardState.term,
    snapshot: recovered.snapshot?.meta.index ?? 0,
    entries: report.entries,
    entriesInMemory: recovered.entries.length,
    segments: report.segments,
    applied: kv.appliedIndex,
    ms: Math.round(performance.now() - started),
  });

  const host = advertisedHost(config);
  const httpAddress = `${host}:${config.httpPort}`;
  // Where every member lives: --peers, plus members that joined later (kept in members.json).
  const book = new AddressBook(join(config.dir, 'members.json'));
  for (const [id, address] of config.peers) book.set({ id, peer: `${address.host}:${address.port}`, http: null, resp: null });
  const respAddress = config.respPort === 0 ? null : `${host}:${config.respPort}`;
  const own = book.get(config.id);
  if (own !== undefined) book.set({ ...own, http: httpAddress, resp: respAddress });
  let respServer: RespServer | null = null;
  let membership: Membership | null = null;
  let engine: Engine | null = null;
  let snapshotReceive = { from: '', received: 0, total: 0 };
  const transport = new TcpTransport({
    id: config.id,
    clusterId: config.clusterId,
    peers: new Map(book.all().map((m) => [m.id, hostPort(m.peer)])),
    httpAddress,
    respAddress: respAddress ?? '',
    security: config.security,
    onMessage: (message) => engine?.receive(message),
    snapshotStageDir: join(config.dir, 'snapshots'),
    log: (level, event, fields) => log(level, event, fields),
    onSnapshotSendProgress(to, sent, total) {
      const step = Math.floor((10 * sent) / total);
      if (sent === total || step > Math.floor((10 * (sent - snapshotChunkBytes)) / total)) {
        log('info', 'sending snapshot', { to, sent, total, percent: Math.floor((100 * sent) / total) });
      }
    },
    onSnapshotProgress(from, received, total) {
      const step = Math.floor((10 * received) / total);
      if (received === total || step > Math.floor((10 * snapshotReceive.received) / Math.max(1, snapshotReceive.total)) || snapshotReceive.total !== total) {
        log('info', 'receiving snapshot', { from, received, total, percent: Math.floor((100 * received) / total) });
      }
      snapshotReceive = { from, received, total };
    },
  });
  const digestCheck = new DigestCheck(config.id, metrics, (level, event, fields) => log(level, event, fields));
  let lastLeader: NodeId | null = null;
  let wasLeader = false;
  let diskProblem: string | null = null;
  const elections: ElectionRecord[] = [];
  let electionSince: { at: number; reason: string } | null = null;
  const voters = [...config.peers.keys()].filter((id) => !config.learners.includes(id));
  const bootstrap = config.bootstrap ?? { voters, learners: [...config.learners] };
  engine = new Engine(
    {
      raft: {
        id: config.id,
        prng: new Prng(Number.parseInt(config.id.replace(/\W/g, '').slice(0, 6), 36) ^ Math.floor(Date.now() % 1e9)),
        electionTimeoutTicks: config.electionTimeoutTicks,
        heartbeatTicks: config.heartbeatTicks,
        tickMs: config.tickMs,
        priority: config.priority,
        logCacheBytes: config.logCacheBytes,
        bugs: plantedBugs(log),
      },
      bootstrap,
      tickMs: config.tickMs,
      requestTimeoutMs: config.requestTimeoutMs,
      snapshotEveryEntries: config.snapshotEveryEntries,
      snapshotKeepEntries: Math.floor(config.snapshotEveryEntries / 10),
      snapshotEveryBytes: config.snapshotEveryBytes,
      // Up to a quarter longer, from the node's id: the nodes do not all snapshot at once.
      snapshotStagger: (fnv1a(Buffer.from(config.id)) % 1000) / 4000,
      digestEveryEntries: config.digestEveryEntries,
    },
    recovered,
    kv,
    storage,
    transport,
    realRuntime,
    {
      roleChanged(role, term, leader) {
        log('info', 'role changed', { role, term, leader });
        metrics.term.set(term);
        metrics.isLeader.set(role === 'leader' ? 1 : 0);
        if (role === 'candidate') metrics.elections.inc();
        if (leader !== null && leader !== lastLeader) metrics.leaderChanges.inc();
        if (leader === null && electionSince === null) {
          electionSince = { at: performance.now(), reason: lastLeader === null ? 'no leader known yet' : role === 'follower' ? `${lastLeader} stepped down or was deposed` : `no word from ${lastLeader} within an election timeout` };
        }
        if (leader !== null && leader !== lastLeader) {
          const since = electionSince ?? { at: performance.now(), reason: lastLeader === null ? 'first leader this node heard of' : `leadership handed over by ${lastLeader}` };
          elections.push({ term, leader, endedAt: new Date().toISOString(), durationMs: Math.round(performance.now() - since.at), reason: since.reason });
          if (elections.length > electionsKept) elections.shift();
          log('info', 'new leader', { term, leader, previous: lastLeader, electionMs: Math.round(performance.now() - since.at), reason: since.reason });
        }
        if (leader !== null) electionSince = null;
        // Clients of a leader that lost its role are cut off, so Sentinel clients ask again.
        if (wasLeader && role !== 'leader') respServer?.disconnectClients();
        wasLeader = role === 'leader';
        lastLeader = leader ?? lastLeader;
      },
      truncated(entries) {
        metrics.truncated.inc(entries.length);
        log('warn', 'entries cut from the log and written to rollback/', { from: entries[0]?.index, count: entries.length, term: entries[0]?.term });
      },
      stateRebuilt(applied, logEnd) {
        log('warn', 'state machine is ahead of the recovered log; rebuilding it from the snapshot and the log', { applied, logEnd });
      },
      applied(entry) {
        if (entry.kind === 'config') membership?.applied(entry);
      },
      checkpoint(index, digest) {
        digestCheck.record(index, digest);
      },
      snapshotTaken(meta, bytes, ms) {
        log('info', 'snapshot taken', { index: meta.index, bytes, ms: Math.round(ms) });
      },
      entriesLoaded(count, bytes, purpose) {
        metrics.entriesReadFromDisk.inc({ for: purpose }, count);
        metrics.entryBytesReadFromDisk.inc({ for: purpose }, bytes);
      },
      snapshotInstalled(meta, _digest, staged) {
        log('info', 'snapshot installed', { index: meta.index, term: meta.term, restoredFrom: staged ? 'file' : 'memory' });
      },
      storageStalled(error) {
        diskProblem = `${error.message}; not acknowledging anything until the write succeeds (retried every second)`;
        log('error', 'the log cannot be written: disk full; the node stops acknowledging until space returns', { error: error.message });
      },
      storageRecovered() {
        diskProblem = null;
        log('info', 'the log can be written again; the node carries on', {});
      },
      fatal(error) {
        log('error', 'storage failed; the node stops', { error: error.message });
        onFatal(error);
      },
    },
  );
  await transport.start();
  membership = new Membership(config.id, engine, book, transport, (event, fields) => log('info', event, fields), (id) => ({
    http: transport.httpAddresses.get(id) ?? null,
    resp: transport.respAddresses.get(id) ?? null,
  }));
  const memberIds = (): NodeId[] => {
    const current = (engine as Engine).raft.config;
    return [...current.voters, ...current.learners];
  };

  // Follower lag and the gauges are sampled on a timer, so /metrics stays true whether or not
  // anyone asks for the status. The samples of the log (lag-history.ts) make lag in ms the age of
  // the oldest entry a follower lacks, so a follower a few entries behind under steady load shows
  // milliseconds, not the time since it last held every entry.
  const lagHistory = new LagHistory();
  const sampledLog = (raft: Engine['raft']): SampledLog => ({
    lastIndex: raft.lastIndex,
    notHeldThrough: raft.log.coldThrough,
    entryBytes: (index) => raft.log.entryAt(index).data.length,
  });
  const sampleFollowers = (): FollowerStatus[] => {
    const raft = (engine as Engine).raft;
    const now = performance.now();
    const log = sampledLog(raft);
    lagHistory.sample(log, now);
    const followers = raft.followers().map((f) => {
      const lag = Math.max(0, raft.lastIndex - f.match);
      const lagMs = lagHistory.lagMs(log, f.match, now);
      const lastContactMs = f.lastAckTick < 0 ? null : (raft.tickCount - f.lastAckTick) * config.tickMs;
      metrics.followerLagEntries.set({ follower: f.id }, lag);
      const bytes = lagHistory.lagBytes(log, f.match);
      metrics.followerLagMs.set({ follower: f.id }, lagMs);
      metrics.followerLagBytes.set({ follower: f.id }, bytes);
      return { id: f.id, matchIndex: f.match, lagEntries: lag, lagBytes: bytes, lagMs, lastContactMs, state: f.state, httpAddress: transport.httpAddresses.get(f.id) ?? null };
    });
    metrics.commitIndex.set(raft.commitIndex);
    metrics.appliedIndex.set(kv.appliedIndex);
    metrics.bytesSent.set(transport.stats.bytesSent);
    return followers;
  };
  const sampler = setInterval(sampleFollowers, statusSampleMs);
  // A stalled event loop is logged: a leader that cannot run its timers falls silent, and its
  // followers elect another after an election timeout.
  // The warning says how much of the stall was garbage collection (V8's pauses since the last probe).
  let probeDue = performance.now() + stallProbeMs;
  let gcMs = 0;
  const gcWatch = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gcWatch.observe({ entryTypes: ['gc'] });
  const loopDelay = monitorEventLoopDelay({ resolution: loopDelaySampleMs });
  loopDelay.enable();
  metrics.watchEventLoop(loopDelay, loopDelaySampleMs);
  const stallProbe = setInterval(() => {
    const now = performance.now();
    const late = now - probeDue;
    probeDue = now + stallProbeMs;
    if (late >= stallWarnMs) log('warn', 'event loop stalled', { ms: Math.round(late), gcMs: Math.round(gcMs), role: (engine as Engine).raft.role });
    gcMs = 0;
  }, stallProbeMs);
  const checker = setInterval(() => {
    if ((engine as Engine).raft.role === 'leader') void digestCheck.poll(sampleFollowers(), config.security);
  }, digestPollMs);
  const status = (): NodeStatus => {
    const raft = (engine as Engine).raft;
    const followers = sampleFollowers();
    const onDisk = kv.committedDigest();
    return {
      id: config.id,
      pid: process.pid,
      clusterId: config.clusterId,
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      leaderHttpAddress: leaderHttp(),
      commitIndex: raft.commitIndex,
      appliedIndex: kv.appliedIndex,
      lastIndex: raft.lastIndex,
      digest: onDisk.digest,
      digestIndex: onDisk.index,
      storeBacklog: { bytes: store.backlog.bytes(), bytesMax: store.backlog.bytesMax(), limit: config.storeBacklogBytes, writesHeld: store.backlog.held() },
      memory: memoryNow(raft.log.payloadBytes),
      config: raft.config,
      members: memberIds().map((id) => ({ id, httpAddress: id === config.id ? httpAddress : (transport.httpAddresses.get(id) ?? null) })),
      followers,
      diskProblem,
      checkpoints: digestCheck.checkpoints,
      alarms: digestCheck.alarms,
      digestRounds: digestCheck.rounds,
      writesOk: metrics.writesOk,
      readsOk: metrics.readsOk,
      elections,
      snapshotReceive: snapshotReceive.total === 0 ? null : snapshotReceive,
    };
  };
  const leaderHttp = (): string | null => {
    const leader = (engine as Engine).raft.leader;
    if (leader === null) return null;
    return leader === config.id ? httpAddress : (transport.httpAddresses.get(leader) ?? null);
  };
  const server: Server = createHttpServer({ engine, nodeId: config.id, defaultAck: config.ack, metrics, security: config.security, membership, leaderHttpAddress: leaderHttp, status, checkpoints: () => digestCheck.checkpoints });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => resolve());
  });
  if (respAddress !== null) {
    const respOf = (id: NodeId): string | null => (id === config.id ? respAddress : (transport.respAddresses.get(id) ?? null));
    const leaderRespAddress = (): string | null => {
      const leader = (engine as Engine).raft.leader;
      return leader === null ? null : respOf(leader);
    };
    respServer = new RespServer({
      engine,
      nodeId: config.id,
      defaultAck: config.ack,
      followerWrites: config.followerWrites,
      security: config.security,
      limits: { ...defaultRespLimits, bulkBytesMax: config.respBulkBytesMax },
      metrics,
      requestTimeoutMs: config.requestTimeoutMs,
      topology: () => {
        const raft = (engine as Engine).raft;
        const followers = raft.role === 'leader' ? sampleFollowers() : [];
        return {
          nodeId: config.id,
          clusterId: config.clusterId,
          clusterName: config.clusterName,
          role: raft.role,
          term: raft.term,
          leaderId: raft.leader,
          leaderRespAddress: leaderRespAddress(),
          selfRespAddress: respAddress,
          lastIndex: raft.lastIndex,
          commitIndex: raft.commitIndex,
          appliedIndex: kv.appliedIndex,
          followers: followers.map((f) => ({ id: f.id, respAddress: respOf(f.id), matchIndex: f.matchIndex, lastContactMs: f.lastContactMs })),
          peers: memberIds()
            .filter((id) => id !== config.id)
            .map((id) => ({ id, respAddress: respOf(id) })),
          keys: () => kv.size,
          readOnlyFollower: config.followerWrites === 'reject',
          uptimeSeconds: Math.floor((performance.now() - started) / 1000),
        };
      },
      leaderRespAddress,
    });
    await respServer.listen(config.respPort, config.httpHost);
  }
  engine.start();
  log('info', 'started', { http: httpAddress, resp: respAddress, peers: Object.fromEntries(book.all().map((m) => [m.id, m.peer])), crc32c: crc32cImplementation });
  const running = engine;
  return {
    engine: running,
    httpAddress,
    respAddress,
    async close() {
      clearInterval(sampler);
      clearInterval(stallProbe);
      gcWatch.disconnect();
      loopDelay.disable();
      clearInterval(checker);
      running.halt();
      await respServer?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await transport.close();
      await storage.close();
      await store.close();
    },
  };
}
