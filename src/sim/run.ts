import type { PlantedBugs } from '../core/raft.js';
import type { Message, NodeId } from '../core/types.js';
import type { EngineObserver } from '../engine/engine.js';
import { encodeCommand } from '../kv/commands.js';
import { Prng } from '../shared/prng.js';
import { InvariantChecker } from './checker.js';
import { checkKeyValueHistory } from './linearizability.js';
import { SimNetwork } from './network.js';
import { SimNode, type SimNodeSettings } from './node.js';
import { Nemesis } from './nemesis.js';
import { Scheduler } from './scheduler.js';
import { Workload } from './workload.js';

/** What one simulated run does. Everything not given is drawn from the seed. */
export interface SimOptions {
  readonly seed: number;
  readonly nodes?: number;
  readonly workloadMs?: number;
  /** Keep every trace line (otherwise only the last few hundred, shown on a violation). */
  readonly trace?: boolean;
  readonly bugs?: PlantedBugs;
  /** Turn the fault schedule off (for scenario tests). */
  readonly faults?: boolean;
}

/** The outcome of one run. */
export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly learners: number;
  readonly violations: readonly string[];
  readonly opsChecked: number;
  readonly counts: { ok: number; failed: number; unknown: number; retries: number };
  readonly faults: number;
  readonly leaderChanges: number;
  readonly entriesApplied: number;
  /** Workload writes that shared a log entry with an earlier write (the leader batches a turn's writes). */
  readonly batchedWrites: number;
  readonly simulatedMs: number;
  readonly events: number;
  readonly lostLeaderAckWritesRecorded: number;
  readonly tornTailsCut: number;
  readonly snapshotsInstalled: number;
  /** Snapshots a node sent from its disk, its own copy of their bytes released. */
  readonly snapshotsSentFromDisk: number;
  /** Log entries leaders read back from their disks for followers (no longer in memory). */
  readonly entriesReadFromDisk: number;
  /** Of those, committed entries read back for a node's own state machine (held while its store was behind). */
  readonly entriesReadToApply: number;
  readonly trace: readonly string[];
}

const traceRingMax = 400;
const livenessMs = 15_000;
/** A run that needs more events than this is stuck in a loop; it is reported, not waited for. */
const eventsMax = 2_000_000;

/** Runs one seed: a random cluster, workload and fault schedule, then every check. */
export function runSeed(options: SimOptions): SimResult {
  const scheduler = new Scheduler();
  const trace: string[] = [];
  const log = (line: string): void => {
    trace.push(`t=${scheduler.now.toFixed(1)} ${line}`);
    if (!options.trace && trace.length > traceRingMax * 2) trace.splice(0, trace.length - traceRingMax);
  };
  try {
    return runPhases(options, scheduler, trace, log);
  } catch (error) {
    // An assertion inside the protocol is a bug found: a violation, with the trace that led to it.
    const stack = error instanceof Error ? (error.stack ?? error.message).split('\n').slice(0, 4).join(' | ') : String(error);
    log(`crashed: ${stack}`);
    const none = { ok: 0, failed: 0, unknown: 0, retries: 0 };
    return {
      seed: options.seed, nodes: 0, learners: 0, violations: [`crashed: ${stack}`], opsChecked: 0, counts: none, faults: 0, leaderChanges: 0,
      entriesApplied: 0, batchedWrites: 0, simulatedMs: scheduler.now, events: scheduler.eventsRun, lostLeaderAckWritesRecorded: 0, tornTailsCut: 0, snapshotsInstalled: 0, snapshotsSentFromDisk: 0, entriesReadFromDisk: 0, entriesReadToApply: 0, trace,
    };
  }
}

function runPhases(options: SimOptions, scheduler: Scheduler, trace: string[], log: (line: string) => void): SimResult {
  const prng = new Prng(options.seed);

  const nodeCount = options.nodes ?? prng.pick([1, 2, 3, 3, 3, 3, 4, 5, 5, 5, 6, 7]);
  const learnerCount = nodeCount >= 3 && prng.chance(0.3) ? 1 : 0;
  const ids = Array.from({ length: nodeCount }, (_, k) => `n${k + 1}`);
  const voters = ids.slice(0, nodeCount - learnerCount);
  const settings: SimNodeSettings = {
    tickMs: 10,
    electionTimeoutTicks: 10,
    heartbeatTicks: 2,
    requestTimeoutMs: 1000,
    snapshotEveryEntries: prng.pick([10, 25, 60, 400]),
    snapshotKeepEntries: prng.pick([0, 0, 5, 30]),
    // From the seed itself, not the PRNG, so every seed's other draws stay as they were.
    ...(options.seed % 3 === 0 ? {} : { snapshotEveryBytes: options.seed % 3 === 1 ? 300 : 3000 }),
    turnMs: [0, 0.5, 2][Math.floor(options.seed / 3) % 3] as number,
    // Byte limits small enough to bind on the simulator's small entries, for two thirds of the seeds.
    ...[{}, { appendBytesMax: 64, inflightBytesMax: 256 }, { appendBytesMax: 512, inflightBytesMax: 2048 }][Math.floor(options.seed / 9) % 3],
    // Applied entries kept in memory: for three quarters of the seeds so few that followers behind
    // are fed from the disk (read back by the leader), down to none at all.
    ...[{}, { logCacheBytes: 0 }, { logCacheBytes: 300 }, { logCacheBytes: 3000 }][Math.floor(options.seed / 27) % 4],
    // Half of the seeds have state stores that now and then fall too far behind, so committed
    // entries wait in the log (and, past the cache, are read back from disk to be applied).
    ...(Math.floor(options.seed / 108) % 2 === 1 ? { slowStoreSeed: options.seed } : {}),
    disk: { minMs: 0.05, maxMs: prng.pick([0.5, 2]), slowChance: prng.pick([0, 0.01]), slowMs: 40 },
    bootstrap: { voters, learners: ids.slice(nodeCount - learnerCount) },
    bugs: options.bugs ?? {},
    appendEntriesMax: prng.pick([1, 2, 8, 64]),
    inflightMessagesMax: prng.pick([1, 4, 256]),
  };
  const neverCandidate = voters.length >= 3 && prng.chance(0.2) ? prng.pick(voters) : null;

  const checker = new InvariantChecker(() => scheduler.now);
  let entriesReadToApply = 0;
  const nodes = new Map<NodeId, SimNode>();
  let nemesis: Nemesis | null = null;
  const network = new SimNetwork(scheduler, prng.fork(), { delayMinMs: 0.1, delayMaxMs: prng.pick([1, 3, 10, 40]), dropRate: prng.pick([0, 0.01, 0.05]), duplicateRate: 0.01 }, (m: Message) => {
    nodes.get(m.to)?.deliver((engine) => engine.receive(m));
  });
  for (const id of ids) {
    const observer: EngineObserver = {
      roleChanged(role, term, leader) {
        log(`${id}: ${role} term ${term}${leader !== null && role !== 'leader' ? ` leader ${leader}` : ''}`);
        if (role === 'leader') {
          checker.leaderElected(id, term);
          nemesis?.leaderElected(id);
        }
      },
      applied: (entry, result, digest) => checker.applied(id, entry, result, digest),
      snapshotInstalled(meta, digest) {
        log(`${id}: installed snapshot at ${meta.index}`);
        checker.snapshotInstalled(id, meta, digest());
      },
      truncated: (entries) => log(`${id}: truncated ${entries.length} entries from ${entries[0]?.index}`),
      entriesLoaded: (count, _bytes, purpose) => {
        if (purpose === 'apply') entriesReadToApply += count;
      },
      fatal: (error) => checker.violations.push(`${id} stopped: ${error.message}`),
    };
    const node = new SimNode(id, prng.fork(), scheduler, settings, (m) => network.send(m), observer, id === neverCandidate ? 0 : 1);
    nodes.set(id, node);
  }
  log(`cluster: voters ${voters.join(',')}${learnerCount > 0 ? ` learners ${settings.bootstrap.learners.join(',')}` : ''}${neverCandidate !== null ? ` priority0 ${neverCandidate}` : ''} snapshotEvery ${settings.snapshotEveryEntries}${settings.snapshotEveryBytes === undefined ? '' : ` or ${settings.snapshotEveryBytes} B`} appendMax ${settings.appendEntriesMax} (${settings.appendBytesMax ?? 'default'} B) inflightMax ${settings.inflightMessagesMax} (${settings.inflightBytesMax ?? 'default'} B) logCache ${settings.logCacheBytes ?? 'default'} B${settings.slowStoreSeed === undefined ? '' : ' slowStore'} turn ${settings.turnMs} ms`);
  for (const node of nodes.values()) node.start();

  const leader = (): SimNode | null => {
    let best: SimNode | null = null;
    for (const node of nodes.values()) {
      const engine = node.engine;
      if (engine !== null && !node.paused && engine.raft.role === 'leader' && (best === null || engine.raft.term > (best.engine?.raft.term ?? 0))) best = node;
    }
    return best;
  };
  const votersNow = (): number => leader()?.engine?.raft.config.voters.length ?? voters.length;

  const workloadMs = options.workloadMs ?? 2000;
  const clientLink = prng.fork();
  const workload = new Workload(
    scheduler,
    prng.fork(),
    {
      nodeIds: ids,
      submit: (id, fn) => scheduler.after(0.1 + clientLink.float(), () => nodes.get(id)?.deliver(fn)),
      respond: (fn) => scheduler.after(0.1 + clientLink.float(), fn),
      votersNow,
    },
    { clients: prng.int(2, 5), keys: prng.int(1, 4), endMs: workloadMs, attemptTimeoutMs: 300, opDeadlineMs: 1500 },
    options.trace ? log : () => {},
  );
  workload.start();

  const faults = new Nemesis(scheduler, prng.fork(), nodes, network, leader, log);
  nemesis = faults;
  if (options.faults !== false && nodeCount > 1) faults.schedule(100, workloadMs - 100);
  const runaway = (): boolean => scheduler.eventsRun > eventsMax;
  scheduler.run(workloadMs, runaway);
  faults.healAll();
  log('healed: every node up, every link restored');

  awaitLiveness({ scheduler, nodes, workload, checker, leader, log, runaway });
  const { lostAndRecorded, tornTailsCut, snapshotsSentFromDisk, entriesReadFromDisk } = endOfRunChecks({ nodes, workload, checker, leader, ids, log });

  return {
    seed: options.seed,
    nodes: nodeCount,
    learners: learnerCount,
    violations: checker.violations,
    opsChecked: workload.history.length,
    counts: workload.counts,
    faults: faults.faultsInjected,
    leaderChanges: checker.leaderChanges,
    entriesApplied: checker.appliedEntries,
    batchedWrites: checker.batchedWrites,
    simulatedMs: scheduler.now,
    events: scheduler.eventsRun,
    lostLeaderAckWritesRecorded: lostAndRecorded,
    tornTailsCut,
    snapshotsInstalled: checker.snapshotsInstalled,
    snapshotsSentFromDisk,
    entriesReadFromDisk,
    entriesReadToApply,
    trace,
  };
}

/** What the phases after the fault schedule work on. */
interface RunParts {
  readonly scheduler: Scheduler;
  readonly nodes: Map<NodeId, SimNode>;
  readonly workload: Workload;
  readonly checker: InvariantChecker;
  readonly leader: () => SimNode | null;
  readonly log: (line: string) => void;
}

/** Liveness: after the faults heal, the cluster serves writes again and every member converges. */
function awaitLiveness({ scheduler, nodes, workload, checker, leader, log, runaway }: RunParts & { readonly runaway: () => boolean }): void {
  const probe = { sent: false, done: false };
  const deadline = scheduler.now + livenessMs;
  const converged = (): boolean => {
    if (workload.busy || !probe.done) return false;
    const current = leader()?.engine;
    if (current === undefined || current === null) return false;
    const members = [...current.raft.config.voters, ...current.raft.config.learners];
    const target = current.raft.commitIndex;
    if (target !== current.raft.lastIndex) return false;
    const digest = current.kv.digest();
    return members.every((id) => {
      const engine = nodes.get(id)?.engine;
      return engine !== undefined && engine !== null && engine.kv.appliedIndex === target && engine.kv.digest() === digest;
    });
  };
  const sendProbe = (): void => {
    if (probe.done || scheduler.now > deadline) return;
    const current = leader();
    const data = encodeCommand({ clientId: 'probe', seq: 1, operation: { op: 'put', key: '__probe', value: Buffer.from('alive') } });
    current?.deliver((engine) =>
      engine.write(data, 'majority', true, (result) => {
        if (result.ok) {
          probe.done = true;
          log(`probe write committed at ${result.index}`);
        }
      }),
    );
    scheduler.after(100, sendProbe);
  };
  const startProbe = (): void => {
    if (workload.busy) {
      scheduler.after(50, startProbe);
      return;
    }
    probe.sent = true;
    sendProbe();
  };
  startProbe();
  const check = (): void => {
    if (!converged() && scheduler.now < deadline) scheduler.after(20, check);
  };
  check();
  scheduler.run(deadline, () => converged() || runaway());
  if (runaway()) checker.violations.push(`runaway: more than ${eventsMax} events (a message storm or a busy loop)`);
  else if (!converged()) {
    const current = leader();
    const state = [...nodes.values()].map((n) => `${n.id}:${n.engine?.raft.role ?? 'down'}@${n.engine?.raft.term ?? '-'} applied ${n.engine?.kv.appliedIndex ?? '-'} commit ${n.engine?.raft.commitIndex ?? '-'} last ${n.engine?.raft.lastIndex ?? '-'}`);
    checker.violations.push(`liveness: no convergence ${livenessMs} ms after healing (probe ${probe.done ? 'ok' : 'failed'}, leader ${current?.id ?? 'none'}; ${state.join('; ')})`);
  }

}

/** The end-of-run checks: acknowledged writes, rollback records, linearizability, invented values. */
function endOfRunChecks({ nodes, workload, checker, leader, ids, log }: Omit<RunParts, 'scheduler'> & { readonly ids: readonly NodeId[] }): { lostAndRecorded: number; tornTailsCut: number; snapshotsSentFromDisk: number; entriesReadFromDisk: number } {
  checker.checkAckedWrites(workload.ackedWrites);
  const rollbacks = new Set<string>();
  const heldByNonMembers = new Set<string>();
  const members = new Set(leader()?.engine?.raft.config.voters.concat(leader()?.engine?.raft.config.learners ?? []) ?? ids);
  let tornTailsCut = 0;
  let snapshotsSentFromDisk = 0;
  let entriesReadFromDisk = 0;
  for (const node of nodes.values()) {
    tornTailsCut += node.disk.tornTailsCut;
    snapshotsSentFromDisk += node.disk.snapshotsOpened;
    entriesReadFromDisk += node.disk.entriesRead;
    for (const record of node.disk.rollback) rollbacks.add(`${record.index}:${record.term}`);
    if (!members.has(node.id) && node.engine !== null) {
      for (let i = node.engine.raft.commitIndex + 1; i <= node.engine.raft.lastIndex; i++) {
        heldByNonMembers.add(`${i}:${node.engine.raft.log.termAt(i)}`);
      }
    }
  }
  const { lostAndRecorded } = checker.checkRollback(
    workload.ackedWrites.filter((w) => w.votersNeeded < Math.floor(w.votersAtTheTime / 2) + 1),
    rollbacks,
    heldByNonMembers,
  );
  // A write whose client never learned its fate took effect exactly when its entry was first
  // applied, or not at all: the run is over and every node converged, so that is now known.
  // This turns open-ended operations into bounded ones and keeps the search small.
  const linearizable = workload.history
    .filter((op) => op.linearizable)
    .flatMap((op) => {
      if (op.ret !== Infinity || op.request === null) return [op];
      const effect = checker.effectOf(op.request);
      if (effect === undefined) return [];
      const reply = effect.reply;
      const output = reply?.kind === 'deleted' ? reply.count : reply?.kind === 'cas' ? reply.swapped : null;
      return [{ ...op, ret: effect.time, output }];
    });
  const { violations, unknown } = checkKeyValueHistory(linearizable.map((op) => ({ ...op, id: op.id })));
  for (const key of violations) {
    checker.violations.push(`history of key ${key} is not linearizable`);
    for (const op of linearizable.filter((o) => o.key === key)) {
      log(`history ${key}: client ${op.client} ${op.label} [${op.call.toFixed(1)}, ${op.ret === Infinity ? '?' : op.ret.toFixed(1)}] -> ${op.output === undefined ? '?' : String(op.output)}`);
    }
  }
  for (const key of unknown) checker.violations.push(`history of key ${key}: linearizability undecided within the search budget`);
  for (const op of workload.history) {
    if (op.servedAt === null) continue;
    // Every read, at any consistency, returns exactly the committed state at the serving node's
    // applied index; session and after:<i> reads are served only once that index is reached.
    const expected = checker.valueAt(op.key, op.servedAt);
    if (op.output !== expected) checker.violations.push(`${op.label} by client ${op.client} returned ${String(op.output)} at applied index ${op.servedAt}, where ${op.key} held ${String(expected)}`);
    if (op.servedAt < op.atLeast) checker.violations.push(`${op.label} by client ${op.client} was served at applied index ${op.servedAt}, before the ${op.atLeast} it asked for`);
    if (op.output !== null && op.output !== undefined && !workload.written.get(op.key)?.has(String(op.output))) checker.violations.push(`${op.label} returned ${String(op.output)}, a value never written to ${op.key}`);
  }

  return { lostAndRecorded, tornTailsCut, snapshotsSentFromDisk, entriesReadFromDisk };
}
