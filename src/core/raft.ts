import { assert } from '../shared/assert.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import type { Prng } from '../shared/prng.js';
import { RaftLog, termFromHistory, type ColdLog } from './log.js';
import { Progress } from './progress.js';
import { ackCount, indexReachedBy, majority } from './quorum.js';
import type {
  AbandonedWrite,
  Ack,
  AckedWrite,
  AppendMessage,
  AppendResponse,
  ClusterConfig,
  Consistency,
  Entry,
  EntryLoad,
  FailedRead,
  HardState,
  HeartbeatMessage,
  HeartbeatResponse,
  Message,
  NodeId,
  ReadIndexMessage,
  ReadIndexResponse,
  Ready,
  ReadyRead,
  Snapshot,
  SnapshotData,
  SnapshotMessage,
  SnapshotMeta,
  VoteMessage,
  VoteResponse,
} from './types.js';

/** Election timeouts without a leader after which even a priority-0 voter campaigns. */
const lastResortTimeouts = 10;

/** What a node is doing in its current term. A follower that is not a voter reports `learner`. */
export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/** Switches that break the protocol on purpose, so tests can show the simulator catches it. */
export interface PlantedBugs {
  /** Grant votes without the up-to-date check of §1.7. */
  readonly skipUpToDateCheck?: boolean;
  /** Commit entries of earlier terms by counting replicas (the Figure 8 bug). */
  readonly skipCurrentTermCommitRule?: boolean;
  /** Release `majority` acks after the leader's own fsync only. */
  readonly ackMajorityOnLeaderFsync?: boolean;
  /** Serve `session` and `after:<i>` reads at once, without waiting to apply the index. */
  readonly sessionReadsWithoutWaiting?: boolean;
}

/** Settings of one node's core. Times are in ticks; the engine decides how long a tick is. */
export interface RaftOptions {
  readonly id: NodeId;
  readonly prng: Prng;
  /** A follower campaigns after a random wait in [electionTimeoutTicks, 2 × electionTimeoutTicks). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  /** The length of a tick, used only to turn `bounded:<ms>` reads into ticks. */
  readonly tickMs: number;
  /** 0 = never a candidate (but see `promotable`). */
  readonly priority: number;
  /** Entries carried by one append message at most (default limits.appendEntriesMax). */
  readonly appendEntriesMax?: number;
  /** Appends in flight to one follower at most (default limits.inflightMessagesMax). */
  readonly inflightMessagesMax?: number;
  /** Payload bytes in one append past its first entry (default limits.appendBytesMax). */
  readonly appendBytesMax?: number;
  /** Payload bytes in flight to one follower before the leader waits (default limits.inflightBytesMax). */
  readonly inflightBytesMax?: number;
  /**
   * Payload bytes of committed, durable entries kept in memory (default limits.logCacheBytes);
   * older ones are on disk only, read back for a follower (on a leader) or the state machine that
   * needs them. It bounds the log's memory however long the log since the last snapshot grows.
   */
  readonly logCacheBytes?: number;
  readonly bugs?: PlantedBugs;
}

/** What recovery found on disk, and the configuration a new cluster starts from. */
export interface RaftRestore {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  /** Entries before `entries` that recovery verified but did not keep in memory. */
  readonly cold?: ColdLog | null;
  /** The state machine's applied index (it is stored with the state). */
  readonly applied: number;
  readonly bootstrap: ClusterConfig;
}

/** A membership change, one node at a time. */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'addVoter'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/** The result of a proposal the leader accepted. */
export interface Proposed {
  readonly index: number;
  readonly term: number;
}

interface PendingWrite {
  readonly index: number;
  readonly term: number;
}

/** A read waiting for a quorum round: local (requestId) or on behalf of a follower. */
interface RoundRead {
  readonly requestId: number;
  readonly from: NodeId | null;
}

interface ReadRound {
  readonly round: number;
  readonly index: number;
  readonly reads: RoundRead[];
}

/**
 * One node's replication protocol, synchronous and free of I/O: inputs are `tick`, `step`,
 * `propose`, `read` and the engine's reports (`persisted`, `applied`); the output is `ready()`.
 */
export class Raft {
  readonly id: NodeId;
  private readonly options: RaftOptions;
  private readonly bugs: PlantedBugs;
  private readonly appendEntriesMax: number;
  private readonly inflightMessagesMax: number;
  private readonly appendBytesMax: number;
  private readonly inflightBytesMax: number;

  private termValue: number;
  private votedFor: NodeId | null;
  private roleValue: Role = 'follower';
  private leaderValue: NodeId | null = null;
  readonly log: RaftLog;
  private snapshotMeta: SnapshotMeta | null;

  /** Invariant: applied <= appliedHanded <= commit; commit never decreases. */
  private commitValue: number;
  private appliedValue: number;
  private appliedHanded: number;
  /** Highest index durable on this node's disk and still in its log. */
  private persistedIndex: number;
  /** The first index not yet handed to the engine to persist. */
  private unstableFrom: number;
  private truncateFromOut: number | null = null;
  private hardStateDirty = false;
  private snapshotToInstall: Snapshot | null = null;

  private configValue: ClusterConfig;
  /** Every configuration still in the log, by the index that set it (index 0 or the snapshot's first). */
  private configHistory: { index: number; config: ClusterConfig }[];

  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly logCacheBytes: number;
  /** Loads are numbered, so a late answer is never taken for a newer one. */
  private nextLoadId = 1;
  /** The engine holds the handing of committed entries (see holdApply). */
  private applyHeld = false;
  /** The load of committed entries for the state machine under way, or null. */
  private applyLoading: number | null = null;
  /** Committed entries read back for the state machine, to hand in the next ready. */
  private loadedForApply: Entry[] | null = null;
  private votes = new Map<NodeId, boolean>();
  private campaignIsTransfer = false;

  private progress = new Map<NodeId, Progress>();
  private pendingWrites = new Map<string, PendingWrite[]>();
  private transfer: { target: NodeId; elapsed: number } | null = null;

  private readRound = 0;
  private waitingReads: RoundRead[] = [];
  private readRounds: ReadRound[] = [];
  private readsAwaitingApply: ReadyRead[] = [];
  private forwardedReads = new Map<number, NodeId>();
  /** Follower: the tick and leader commit of the last time it held everything the leader had committed. */
  private caughtUpTick: number | null = null;
  private caughtUpCommit = 0;

  private out = {
    messagesNow: [] as Message[],
    messages: [] as Message[],
    truncated: [] as Entry[],
    acked: [] as AckedWrite[],
    abandoned: [] as AbandonedWrite[],
    reads: [] as ReadyRead[],
    failedReads: [] as FailedRead[],
    loads: [] as EntryLoad[],
  };

  constructor(options: RaftOptions, restore: RaftRestore) {
    assert(options.electionTimeoutTicks > options.heartbeatTicks, 'election timeout must exceed the heartbeat');
    this.id = options.id;
    this.options = options;
    this.bugs = options.bugs ?? {};
    this.appendEntriesMax = options.appendEntriesMax ?? limits.appendEntriesMax;
    this.inflightMessagesMax = options.inflightMessagesMax ?? limits.inflightMessagesMax;
    this.appendBytesMax = options.appendBytesMax ?? limits.appendBytesMax;
    this.inflightBytesMax = options.inflightBytesMax ?? limits.inflightBytesMax;
    assert(this.appendEntriesMax >= 1 && this.inflightMessagesMax >= 1, 'append and in-flight limits must be positive');
    this.termValue = restore.hardState.term;
    this.votedFor = restore.hardState.votedFor;
    this.logCacheBytes = options.logCacheBytes ?? limits.logCacheBytes;
    this.log = RaftLog.restore(restore.snapshot, restore.entries, restore.cold ?? null);
    // A crash can persist log entries of a term whose hard state write was lost.
    if (this.log.lastTerm() > this.termValue) {
      this.termValue = this.log.lastTerm();
      this.votedFor = null;
      this.hardStateDirty = true;
    }
    this.snapshotMeta = restore.snapshot;
    const base = restore.snapshot?.index ?? 0;
    assert(restore.applied >= base && restore.applied <= this.log.lastIndex(), `restore: applied ${restore.applied} outside the log`);
    this.commitValue = restore.applied;
    this.appliedValue = restore.applied;
    this.appliedHanded = restore.applied;
    this.persistedIndex = this.log.lastIndex();
    this.unstableFrom = this.log.lastIndex() + 1;
    this.configHistory = [{ index: base, config: restore.snapshot?.config ?? restore.bootstrap }];
    for (const entry of [...(restore.cold?.configEntries ?? []), ...restore.entries]) {
      if (entry.index > base && entry.kind === 'config' && entry.config !== undefined) {
        this.configHistory.push({ index: entry.index, config: entry.config });
      }
    }
    this.configValue = (this.configHistory[this.configHistory.length - 1] as { config: ClusterConfig }).config;
    this.resetElectionTimer();
    this.evictCommitted();
  }

  // ---- read-only views -------------------------------------------------------------------

  get term(): number {
    return this.termValue;
  }
  /** The role, with a non-voting follower reported as `learner`. */
  get role(): Role | 'learner' {
    if (this.roleValue === 'follower' && !this.isVoter(this.id)) return 'learner';
    return this.roleValue;
  }
  get leader(): NodeId | null {
    return this.leaderValue;
  }
  get commitIndex(): number {
    return this.commitValue;
  }
  get appliedIndex(): number {
    return this.appliedValue;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }
  get config(): ClusterConfig {
    return this.configValue;
  }
  /** The bytes of the received snapshot waiting to be handed out for install, if any. */
  get snapshotToInstallData(): SnapshotData | null {
    return this.snapshotToInstall?.data ?? null;
  }

  /** The index of the latest snapshot this core knows of (taken here or received). */
  get snapshotIndex(): number {
    return this.snapshotMeta?.index ?? 0;
  }
  get tickCount(): number {
    return this.ticks;
  }
  /** The leader's view of each follower, for status pages (empty on other roles). */
  followers(): { id: NodeId; match: number; next: number; state: string; lastAckTick: number }[] {
    return [...this.progress.values()].map((p) => ({ id: p.id, match: p.match, next: p.next, state: p.state, lastAckTick: p.lastAckTick }));
  }

  // ---- inputs ------------------------------------------------------------------------------

  /** Advances logical time by one tick: elections, heartbeats, check-quorum, transfer timeout. */
  tick(): void {
    this.ticks++;
    this.electionElapsed++;
    if (this.roleValue === 'leader') {
      this.tickLeader();
      return;
    }
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign('preVote', false);
    }
  }

  /** Proposes a client command; throws a TandemError when this node cannot take it. */
  propose(data: Uint8Array, ack: Ack): Proposed {
    this.checkCanPropose();
    if (ackCount(ack, this.configValue.voters.length) === null) {
      throw new TandemError(ErrorCode.ackUnsatisfiable, `ack ${String(ack)} needs more voters than the ${this.configValue.voters.length} in the cluster`);
    }
    const entry = this.appendOwn('command', data);
    this.awaitAck(entry, this.bugs.ackMajorityOnLeaderFsync === true && ack === 'majority' ? 'leader' : ack);
    return { index: entry.index, term: entry.term };
  }

  /**
   * Proposes a one-node membership change; it takes effect when appended. `data` travels in the
   * entry untouched (the node layer puts a new member's addresses there).
   */
  changeMembership(change: MembershipChange, data: Uint8Array = new Uint8Array(0)): Proposed {
    this.checkCanPropose();
    const pendingConfig = (this.configHistory[this.configHistory.length - 1] as { index: number }).index;
    if (pendingConfig > this.commitValue) {
      throw new TandemError(ErrorCode.membershipChangeInProgress, `the membership change at index ${pendingConfig} is not committed yet`);
    }
    const config = nextConfig(this.configValue, change, (id) => this.progress.get(id)?.match ?? 0, this.commitValue);
    const entry = this.appendOwn('config', data, config);
    this.awaitAck(entry, 'majority');
    return { index: entry.index, term: entry.term };
  }

  /**
   * Queues the write's ack. The level stays symbolic: `majority` and `all` are counted against
   * the voters at the time the ack is released, since a membership change may come in between.
   */
  private awaitAck(entry: Entry, ack: Ack): void {
    const key = String(ack);
    let queue = this.pendingWrites.get(key);
    if (queue === undefined) {
      queue = [];
      this.pendingWrites.set(key, queue);
    }
    queue.push({ index: entry.index, term: entry.term });
  }

  /** Hands leadership to `target`: writes pause, the target is brought up to date, then told to campaign. */
  transferLeadership(target: NodeId): void {
    this.checkLeader();
    if (target === this.id) return;
    if (!this.configValue.voters.includes(target)) {
      throw new TandemError(ErrorCode.badRequest, `cannot transfer leadership to ${target}: not a voter`);
    }
    this.transfer = { target, elapsed: 0 };
    const progress = this.progress.get(target) as Progress;
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(progress);
  }

  /** True while a leadership transfer is under way (writes are refused meanwhile). */
  get transferring(): NodeId | null {
    return this.transfer?.target ?? null;
  }

  /** Asks to serve a read at `consistency`; the answer comes in a later ready. */
  read(requestId: number, consistency: Consistency): void {
    switch (consistency.kind) {
      case 'stale':
        this.out.reads.push({ requestId, index: this.appliedValue });
        return;
      case 'session':
      case 'after':
        this.awaitApply(requestId, this.bugs.sessionReadsWithoutWaiting === true ? 0 : consistency.index);
        return;
      case 'bounded':
        this.readBounded(requestId, consistency.ms);
        return;
      case 'linearizable':
        this.readLinearizable(requestId);
        return;
    }
  }

  /** Processes one message from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.termValue && !this.acceptHigherTerm(m)) return;
    if (m.term < this.termValue) {
      this.answerStaleTerm(m);
      return;
    }
    switch (m.type) {
      case 'append':
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.handleSnapshot(m);
        return;
      case 'appendResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'vote':
      case 'preVote':
        this.handleVote(m);
        return;
      case 'voteResp':
      case 'preVoteResp':
        this.handleVoteResponse(m);
        return;
      case 'timeoutNow':
        if (this.promotable()) this.campaign('vote', true);
        return;
      case 'readIndex':
        this.handleReadIndex(m);
        return;
      case 'readIndexResp':
        this.handleReadIndexResponse(m);
        return;
    }
  }

  // ---- the engine's reports ----------------------------------------------------------------

  /** The engine made `ready` durable (and sent its messages). */
  persisted(ready: Ready): void {
    if (ready.snapshot !== null) this.persistedIndex = Math.max(this.persistedIndex, ready.snapshot.meta.index);
    const last = ready.entries[ready.entries.length - 1];
    if (last !== undefined && this.log.termAt(last.index) === last.term) {
      this.persistedIndex = Math.max(this.persistedIndex, last.index);
    }
    if (this.roleValue === 'leader') this.leaderProgressed();
  }

  /** The state machine has applied every entry up to `index`. */
  applied(index: number): void {
    assert(index <= this.appliedHanded, `applied ${index} beyond what was handed (${this.appliedHanded})`);
    if (index <= this.appliedValue) return;
    this.appliedValue = index;
    if (this.readsAwaitingApply.length === 0) return;
    const still: ReadyRead[] = [];
    for (const read of this.readsAwaitingApply) {
      if (read.index <= index) this.out.reads.push(read);
      else still.push(read);
    }
    this.readsAwaitingApply = still;
  }

  /**
   * The metadata of a snapshot of the state at `index` (applied, and after the log's snapshot):
   * written with the snapshot's bytes as they are built, before `compact` (which takes it) drops
   * the log.
   */
  snapshotMetaAt(index: number): SnapshotMeta {
    assert(index <= this.appliedValue && index > this.log.snapshotIndex, `snapshot metadata at ${index} (applied ${this.appliedValue}, log from ${this.log.snapshotIndex})`);
    return { index, term: this.log.termAt(index) as number, config: this.configAt(index), termStarts: this.log.termStartsUpTo(index) };
  }

  /**
   * The engine took a state-machine snapshot at `index` (<= applied). Drops the log up to
   * `index` but for the last `keepEntries` entries (and no more than `keepBytes` of payload), so
   * followers a little behind still get entries rather than the snapshot. Returns the metadata
   * to store with the snapshot bytes.
   */
  compact(index: number, keepEntries = 0, keepBytes = Number.POSITIVE_INFINITY, meta = this.snapshotMetaAt(index)): SnapshotMeta {
    assert(index <= this.appliedValue && index > (this.snapshotMeta?.index ?? 0) && meta.index === index, `compact to ${index}`);
    this.snapshotMeta = meta;
    const compactTo = index - this.log.entriesWithin(index, keepBytes, keepEntries);
    if (compactTo <= this.log.snapshotIndex) return meta;
    this.log.compact(compactTo);
    let keep = 0;
    for (let k = 0; k < this.configHistory.length; k++) {
      if ((this.configHistory[k] as { index: number }).index <= compactTo) keep = k;
    }
    this.configHistory.splice(0, keep);
    return meta;
  }

  /**
   * Drops from memory the payloads of committed entries on this node's disk (never cut, and
   * readable again) beyond the newest logCacheBytes of them — applied or not: entries held back
   * from the state machine (holdApply) are read back when their turn comes.
   */
  private evictCommitted(): void {
    if (this.log.payloadBytes <= this.logCacheBytes) return;
    const through = this.log.evictionPoint(this.logCacheBytes, Math.min(this.commitValue, this.persistedIndex));
    if (through > this.log.coldThrough) this.log.evictThrough(through);
  }

  /**
   * The engine holds the handing of committed entries to the state machine (its store is too far
   * behind) or lets it go on. Held entries wait in the log (on disk, beyond logCacheBytes).
   */
  holdApply(held: boolean): void {
    this.applyHeld = held;
  }

  /** True when committed entries can be handed to the state machine now. */
  private hasCommittedToHand(): boolean {
    return this.loadedForApply !== null || (!this.applyHeld && this.applyLoading === null && this.appliedHanded < this.applyLimit());
  }

  /**
   * The committed entries to hand to the state machine now: those read back from disk for it, or
   * those in memory up to the apply limit. Entries no longer in memory are asked of the engine
   * (a load for the state machine), and nothing more is handed until they come.
   */
  private takeCommitted(): Entry[] {
    const loaded = this.loadedForApply;
    if (loaded !== null) {
      this.loadedForApply = null;
      this.appliedHanded = (loaded[loaded.length - 1] as Entry).index;
      return loaded;
    }
    const applyTo = this.applyLimit();
    if (this.applyHeld || this.applyLoading !== null || this.appliedHanded >= applyTo) return [];
    const from = this.appliedHanded + 1;
    if (from <= this.log.coldThrough) {
      const load: EntryLoad = { id: this.nextLoadId++, peer: null, term: this.termValue, lo: from, hi: Math.min(applyTo, this.log.coldThrough), entriesMax: limits.applyReadEntriesMax, bytesMax: limits.applyReadBytesMax };
      this.applyLoading = load.id;
      this.out.loads.push(load);
      return [];
    }
    this.appliedHanded = applyTo;
    return this.log.slice(from, applyTo);
  }

  /** True when there is anything for the engine to do. */
  hasReady(): boolean {
    return this.hardStateDirty || this.snapshotToInstall !== null || this.truncateFromOut !== null || this.unstableFrom <= this.log.lastIndex() || this.out.messages.length > 0 || this.hasReadyDuringWrite();
  }

  /**
   * True when there is work that needs nothing new on disk (see readyDuringWrite). False while a
   * new term, vote, snapshot or log cut waits to be written: everything then goes in one ready.
   */
  hasReadyDuringWrite(): boolean {
    const o = this.out;
    if (this.hardStateDirty || this.snapshotToInstall !== null || this.truncateFromOut !== null || o.truncated.length > 0) return false;
    return (
      this.hasCommittedToHand() ||
      o.messagesNow.length + o.acked.length + o.abandoned.length + o.reads.length + o.failedReads.length + o.loads.length > 0 ||
      (this.roleValue === 'leader' && (this.canStartReadRound() || this.hasEntriesToSend() || this.hasCommitToSend()))
    );
  }

  /**
   * Entries are handed to the state machine only once they are committed and on this node's own
   * disk, so applying never waits for a write in flight, and the state on disk is never ahead of
   * the log on disk.
   */
  private applyLimit(): number {
    return Math.min(this.commitValue, this.persistedIndex, this.log.lastIndex());
  }

  /** Collects everything to persist, send and apply since the last ready (see Ready for the order). */
  ready(): Ready {
    return this.collect(true);
  }

  /**
   * While the engine's last write is still in flight: what needs nothing new on disk — a
   * leader's appends and heartbeats (new entries go to followers while the leader's own write is
   * under way), committed entries to apply, reads to serve, writes to answer. New entries and
   * messages that must follow a write stay for the next ready(). Null when hasReadyDuringWrite
   * is false.
   */
  readyDuringWrite(): Ready | null {
    if (!this.hasReadyDuringWrite()) return null;
    return this.collect(false);
  }

  private collect(withWrite: boolean): Ready {
    if (this.roleValue === 'leader') {
      this.startReadRound();
      this.broadcastAppends();
      this.sendCommitUpdates();
    }
    const hardState = withWrite && this.hardStateDirty ? { term: this.termValue, votedFor: this.votedFor } : null;
    const entries = withWrite && this.unstableFrom <= this.log.lastIndex() ? this.log.slice(this.unstableFrom, this.log.lastIndex()) : [];
    const snapshot = withWrite ? this.snapshotToInstall : null;
    const truncateFrom = withWrite ? this.truncateFromOut : null;
    const committed = this.takeCommitted();
    const o = this.out;
    const ready: Ready = {
      hardState,
      snapshot,
      truncateFrom,
      entries,
      mustSync: hardState !== null || snapshot !== null || truncateFrom !== null || entries.length > 0,
      truncated: o.truncated,
      // Nothing leaves before a new term or vote is durable.
      messagesNow: hardState === null ? o.messagesNow : [],
      messages: !withWrite ? [] : hardState === null ? o.messages : [...o.messagesNow, ...o.messages],
      committed,
      acked: o.acked,
      abandoned: o.abandoned,
      reads: o.reads,
      failedReads: o.failedReads,
      loads: o.loads,
    };
    if (withWrite) {
      this.hardStateDirty = false;
      this.snapshotToInstall = null;
      this.truncateFromOut = null;
      this.unstableFrom = this.log.lastIndex() + 1;
    }
    this.evictCommitted();
    this.out = { messagesNow: [], messages: withWrite ? [] : o.messages, truncated: [], acked: [], abandoned: [], reads: [], failedReads: [], loads: [] };
    return ready;
  }

  // ---- terms and roles ---------------------------------------------------------------------

  /** Returns false when a message of a higher term must be dropped without changing our term. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      const inLease = this.leaderValue !== null && this.electionElapsed < this.options.electionTimeoutTicks;
      if (inLease && !m.transfer) return false;
      if (m.type === 'preVote') return true;
    }
    if (m.type === 'preVoteResp' && m.granted) return true;
    const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : null;
    this.becomeFollower(m.term, leader);
    return true;
  }

  /** A message from an older term: tell a stale leader or pre-candidate that time has moved on. */
  private answerStaleTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.termValue, success: false, index: 0, hintIndex: 0, hintTerm: 0 }, false);
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.termValue, granted: false }, false);
    }
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    const wasLeader = this.roleValue === 'leader';
    if (term > this.termValue) {
      this.termValue = term;
      this.votedFor = null;
      this.hardStateDirty = true;
    }
    if (wasLeader) this.abandonLeadership();
    if (leader !== this.leaderValue) this.failForwardedReads();
    this.roleValue = 'follower';
    this.leaderValue = leader;
    this.resetElectionTimer();
  }

  private becomeLeader(): void {
    assert(this.roleValue === 'candidate', 'only a candidate becomes leader');
    this.roleValue = 'leader';
    this.leaderValue = this.id;
    this.resetElectionTimer();
    this.heartbeatElapsed = 0;
    this.progress.clear();
    for (const id of this.members()) {
      if (id === this.id) continue;
      const p = new Progress(id, this.log.lastIndex() + 1);
      p.recentActive = true;
      this.progress.set(id, p);
    }
    this.appendOwn('noop', new Uint8Array(0));
  }

  private abandonLeadership(): void {
    for (const queue of this.pendingWrites.values()) {
      for (const w of queue) this.out.abandoned.push({ index: w.index, term: w.term, code: 'LEADER_CHANGED' });
    }
    this.pendingWrites.clear();
    for (const read of [...this.waitingReads, ...this.readRounds.flatMap((r) => r.reads)]) {
      if (read.from === null) this.out.failedReads.push({ requestId: read.requestId, code: 'NOT_LEADER', leaderHint: null });
    }
    this.waitingReads = [];
    this.readRounds = [];
    this.progress.clear();
    this.transfer = null;
  }

  private campaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    this.leaderValue = null;
    this.failForwardedReads();
    this.votes = new Map([[this.id, true]]);
    this.campaignIsTransfer = transfer;
    this.resetElectionTimer();
    let term = this.termValue + 1;
    if (kind === 'preVote') {
      this.roleValue = 'precandidate';
    } else {
      this.roleValue = 'candidate';
      this.termValue = term;
      this.votedFor = this.id;
      this.hardStateDirty = true;
      term = this.termValue;
    }
    if (this.tallyVotes()) return;
    for (const voter of this.configValue.voters) {
      if (voter === this.id) continue;
      this.send({ type: kind, from: this.id, to: voter, term, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm(), transfer }, false);
    }
  }

  /** Counts votes; acts on a decided outcome and returns true when there is one. */
  private tallyVotes(): boolean {
    const quorum = majority(this.configValue.voters.length);
    let granted = 0;
    let rejected = 0;
    for (const [id, vote] of this.votes) {
      if (!this.configValue.voters.includes(id)) continue;
      if (vote) granted++;
      else rejected++;
    }
    if (granted >= quorum) {
      if (this.roleValue === 'precandidate') this.campaign('vote', this.campaignIsTransfer);
      else this.becomeLeader();
      return true;
    }
    if (rejected >= quorum) {
      this.becomeFollower(this.termValue, null);
      return true;
    }
    return false;
  }

  private handleVote(m: VoteMessage): void {
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.leaderValue === null) ||
      (m.type === 'preVote' && m.term > this.termValue);
    const upToDate = this.bugs.skipUpToDateCheck === true || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const granted = canVote && upToDate;
    const responseType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (granted && m.type === 'vote') {
      this.votedFor = m.from;
      this.hardStateDirty = true;
      this.electionElapsed = 0;
    }
    this.send({ type: responseType, from: this.id, to: m.from, term: granted ? m.term : this.termValue, granted }, false);
  }

  private handleVoteResponse(m: VoteResponse): void {
    const expected = this.roleValue === 'precandidate' ? 'preVoteResp' : this.roleValue === 'candidate' ? 'voteResp' : null;
    if (m.type !== expected) return;
    if (m.type === 'preVoteResp' && m.granted && m.term !== this.termValue + 1) return;
    this.votes.set(m.from, m.granted);
    this.tallyVotes();
  }

  /**
   * Whether this node may campaign. A priority-0 voter stays out of elections, except as a last
   * resort: when no leader has been heard of for `lastResortTimeouts` election timeouts, it may be
   * the only voter with the log a leader needs (say, after the other electable voter was removed).
   */
  private promotable(): boolean {
    if (!this.isVoter(this.id)) return false;
    return this.options.priority > 0 || this.electionElapsed >= lastResortTimeouts * this.options.electionTimeoutTicks;
  }

  private isVoter(id: NodeId): boolean {
    return this.configValue.voters.includes(id);
  }

  private members(): NodeId[] {
    return [...this.configValue.voters, ...this.configValue.learners];
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    const base = this.options.electionTimeoutTicks;
    this.randomizedElectionTimeout = base + this.options.prng.int(0, base - 1);
  }

  // ---- the leader --------------------------------------------------------------------------

  private tickLeader(): void {
    this.heartbeatElapsed++;
    if (this.electionElapsed >= this.options.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (!this.checkQuorum()) {
        this.becomeFollower(this.termValue, null);
        return;
      }
    }
    if (this.transfer !== null && ++this.transfer.elapsed >= this.options.electionTimeoutTicks) this.transfer = null;
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeats();
    }
  }

  /** True when a majority of voters (this node included) was heard from since the last check. */
  private checkQuorum(): boolean {
    let active = this.isVoter(this.id) ? 1 : 0;
    for (const p of this.progress.values()) {
      if (p.recentActive && this.isVoter(p.id)) active++;
      p.recentActive = false;
    }
    return active >= majority(this.configValue.voters.length);
  }

  private checkLeader(): void {
    if (this.roleValue !== 'leader') {
      throw new TandemError(ErrorCode.notLeader, `node ${this.id} is not the leader`, { leader: this.leaderValue });
    }
  }

  private checkCanPropose(): void {
    this.checkLeader();
    if (this.transfer !== null) {
      throw new TandemError(ErrorCode.transferInProgress, `leadership is moving to ${this.transfer.target}; retry shortly`, { leader: this.transfer.target });
    }
    if (this.log.lastIndex() - this.commitValue >= limits.uncommittedEntriesMax) {
      throw new TandemError(ErrorCode.overloaded, `${limits.uncommittedEntriesMax} entries are waiting to commit; retry shortly`);
    }
  }

  private appendOwn(kind: Entry['kind'], data: Uint8Array, config?: ClusterConfig): Entry {
    const index = this.log.lastIndex() + 1;
    const entry: Entry = config === undefined ? { index, term: this.termValue, kind, data } : { index, term: this.termValue, kind, data, config };
    this.log.push(entry);
    if (config !== undefined) this.setConfig(index, config);
    return entry;
  }

  private hasEntriesToSend(): boolean {
    for (const p of this.progress.values()) {
      // Nothing to send while its entries are being read from disk.
      if (p.next > this.log.lastIndex() || p.loading !== null) continue;
      if (p.state === 'replicate' && !this.pipelineFull(p)) return true;
      if (p.state === 'probe' && !p.probeSent) return true;
    }
    return false;
  }

  private hasCommitToSend(): boolean {
    for (const p of this.progress.values()) if (this.commitBehind(p)) return true;
    return false;
  }

  /** True when the follower may commit more than it has been told. */
  private commitBehind(p: Progress): boolean {
    return p.commitSent < Math.min(p.match, this.commitValue);
  }

  /** True when the follower has as many appends, or as many bytes, in flight as allowed. */
  private pipelineFull(p: Progress): boolean {
    return p.inflight.length >= this.inflightMessagesMax || p.inflightBytes >= this.inflightBytesMax;
  }

  private broadcastAppends(): void {
    for (const p of this.progress.values()) {
      while (p.next <= this.log.lastIndex() && this.sendAppend(p)) {
        if (p.state !== 'replicate') break;
      }
    }
  }

  /** Sends the follower what it needs next; returns false when it must wait. */
  private sendAppend(p: Progress, allowEmpty = false): boolean {
    if (p.state === 'snapshot') return false;
    if (p.state === 'probe' && p.probeSent) return false;
    if (p.state === 'replicate' && this.pipelineFull(p)) return false;
    const prevIndex = p.next - 1;
    const prevTerm = this.log.termAt(prevIndex);
    if (prevTerm === null) {
      this.sendSnapshot(p);
      return false;
    }
    if (p.next <= this.log.coldThrough) {
      this.requestLoad(p);
      return false;
    }
    const entries = this.log.slice(p.next, this.log.lastIndex(), this.appendEntriesMax, this.appendBytesMax);
    if (entries.length === 0 && !allowEmpty && p.state === 'replicate') return false;
    this.sendEntries(p, prevIndex, prevTerm, entries);
    return true;
  }

  /** Asks the engine for the follower's next entries from disk, unless a read for it is under way. */
  private requestLoad(p: Progress): void {
    if (p.loading !== null) return;
    const load: EntryLoad = { id: this.nextLoadId++, peer: p.id, term: this.termValue, lo: p.next, hi: this.log.coldThrough, entriesMax: this.appendEntriesMax, bytesMax: this.appendBytesMax };
    p.loading = load.id;
    this.out.loads.push(load);
  }

  /**
   * True while the core still waits for `load`: then a read that failed means the log on disk is
   * missing or damaged where it must not be (a load no longer wanted was overtaken: a snapshot
   * covered it, or the leadership changed).
   */
  loadWanted(load: EntryLoad): boolean {
    if (load.peer === null) return this.applyLoading === load.id && load.lo === this.appliedHanded + 1;
    const p = this.progress.get(load.peer);
    return this.roleValue === 'leader' && load.term === this.termValue && p !== undefined && p.loading === load.id && p.next === load.lo && load.lo > this.log.snapshotIndex;
  }

  /** The engine read `load` from disk: the follower (or the state machine) gets them if it still needs them. */
  entriesLoaded(load: EntryLoad, entries: readonly Entry[]): void {
    if (load.peer === null) {
      this.loadedToApply(load, entries);
      return;
    }
    const p = this.progress.get(load.peer);
    if (this.roleValue !== 'leader' || load.term !== this.termValue || p === undefined || p.loading !== load.id) return;
    const wanted = this.loadWanted(load);
    p.loading = null;
    if (wanted && !(p.state === 'probe' && p.probeSent) && p.state !== 'snapshot' && !(p.state === 'replicate' && this.pipelineFull(p))) {
      this.checkLoaded(load, entries);
      this.sendEntries(p, load.lo - 1, this.log.termAt(load.lo - 1) as number, entries);
    }
    while (p.next <= this.log.lastIndex() && this.sendAppend(p)) {
      if (p.state !== 'replicate') break;
    }
  }

  /** Committed entries read back for the state machine: handed in the next ready, if still next. */
  private loadedToApply(load: EntryLoad, entries: readonly Entry[]): void {
    if (this.applyLoading !== load.id) return;
    const wanted = this.loadWanted(load);
    this.applyLoading = null;
    if (!wanted || entries.length === 0) return;
    this.checkLoaded(load, entries);
    this.loadedForApply = entries.slice();
  }

  /** Entries read from disk must be the log's own, in order from the load's first index. */
  private checkLoaded(load: EntryLoad, entries: readonly Entry[]): void {
    assert(entries.length > 0 && (entries[0] as Entry).index === load.lo, `loaded entries from ${(entries[0] as Entry | undefined)?.index} for a load from ${load.lo}`);
    for (const [k, entry] of entries.entries()) {
      assert(entry.index === load.lo + k && entry.term === this.log.termAt(entry.index), `loaded entry ${entry.index} (term ${entry.term}) disagrees with the log`);
    }
  }

  /** Sends one append of `entries` (possibly none) after (prevIndex, prevTerm) to the follower. */
  private sendEntries(p: Progress, prevIndex: number, prevTerm: number, entries: readonly Entry[]): void {
    const message: AppendMessage = { type: 'append', from: this.id, to: p.id, term: this.termValue, prevIndex, prevTerm, entries, commit: this.commitValue };
    this.send(message, true);
    p.commitSent = Math.max(p.commitSent, Math.min(this.commitValue, prevIndex + entries.length));
    if (p.state === 'replicate' && entries.length > 0) {
      const last = (entries[entries.length - 1] as Entry).index;
      p.next = last + 1;
      let bytes = 0;
      for (const entry of entries) bytes += entry.data.length;
      p.sent(last, bytes);
    } else if (p.state === 'probe') {
      p.probeSent = true;
    }
  }

  private sendSnapshot(p: Progress): void {
    const meta = this.snapshotMeta;
    assert(meta !== null, 'a compacted log must have a snapshot');
    p.becomeSnapshot(meta.index, this.ticks);
    const message: SnapshotMessage = { type: 'snapshot', from: this.id, to: p.id, term: this.termValue, meta, data: null };
    this.send(message, true);
  }

  private sendTimeoutNow(target: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to: target, term: this.termValue }, true);
  }

  private broadcastHeartbeats(): void {
    for (const p of this.progress.values()) this.sendHeartbeat(p);
  }

  private sendHeartbeat(p: Progress): void {
    const commit = Math.min(p.match, this.commitValue);
    const message: HeartbeatMessage = { type: 'heartbeat', from: this.id, to: p.id, term: this.termValue, commit, leaderCommit: this.commitValue, readRound: this.readRound };
    p.commitSent = Math.max(p.commitSent, commit);
    this.send(message, true);
  }

  /** Tells followers of a commit index they have not heard yet, so they apply without waiting for a heartbeat. */
  private sendCommitUpdates(): void {
    for (const p of this.progress.values()) {
      if (this.commitBehind(p)) this.sendHeartbeat(p);
    }
  }

  private handleAppendResponse(m: AppendResponse): void {
    if (this.roleValue !== 'leader') return;
    const p = this.progress.get(m.from);
    if (p === undefined) return;
    p.recentActive = true;
    p.lastAckTick = this.ticks;
    if (!m.success) {
      this.handleRejection(p, m);
      return;
    }
    const moved = p.acknowledge(m.index);
    if (p.state === 'probe') p.becomeReplicate();
    else if (p.state === 'snapshot' && p.match >= p.pendingSnapshot) p.becomeReplicate();
    if (moved) this.leaderProgressed();
    if (this.transfer !== null && this.transfer.target === p.id && p.match === this.log.lastIndex()) this.sendTimeoutNow(p.id);
    while (p.next <= this.log.lastIndex() && this.sendAppend(p)) {
      if (p.state !== 'replicate') break;
    }
  }

  private handleRejection(p: Progress, m: AppendResponse): void {
    if (m.index === 0 && m.hintIndex === 0 && m.hintTerm === 0 && m.term === this.termValue) {
      // A refusal carrying no position comes only from a stale-term answer; nothing to do.
      return;
    }
    if (p.state === 'replicate') {
      if (m.index <= p.match) return; // a stale refusal from before the pipeline settled
    } else if (p.state === 'probe') {
      if (m.index !== p.next - 1) return; // answers an older probe
    } else {
      return;
    }
    const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
    const next = Math.max(p.match + 1, Math.min(m.index, hint + 1));
    p.becomeProbe();
    const progressed = next < p.next;
    p.next = next;
    // Without progress, wait for the next heartbeat rather than ping-pong at network speed.
    if (progressed) this.sendAppend(p, true);
    else p.probeSent = true;
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    if (this.roleValue !== 'leader') return;
    const p = this.progress.get(m.from);
    if (p === undefined) return;
    p.recentActive = true;
    p.lastAckTick = this.ticks;
    p.probeSent = false;
    if (m.lastIndex < p.match) {
      // The follower lost entries it had acknowledged (its disk cut a damaged tail): send them again.
      p.match = m.lastIndex;
      p.next = m.lastIndex + 1;
      p.becomeProbe();
    }
    if (p.state === 'snapshot' && this.ticks - p.snapshotSentTick >= this.options.electionTimeoutTicks) p.becomeProbe();
    // A full pipeline may be waiting on a lost append: free a slot so one more goes out, and a
    // gap (if there is one) comes back as a refusal that restarts probing.
    if (p.state === 'replicate' && this.pipelineFull(p)) p.freeOldest();
    if (m.readRound > p.readRoundAcked) {
      p.readRoundAcked = m.readRound;
      this.completeReadRounds();
    }
    if (p.match < this.log.lastIndex()) this.sendAppend(p, true);
  }

  /** Something the commit and ack computations depend on moved forward. */
  private leaderProgressed(): void {
    const voters = this.configValue.voters;
    const matches = voters.map((v) => (v === this.id ? this.persistedIndex : (this.progress.get(v)?.match ?? 0)));
    const candidate = indexReachedBy(matches, majority(voters.length));
    if (candidate > this.commitValue && (this.bugs.skipCurrentTermCommitRule === true || this.log.termAt(candidate) === this.termValue)) {
      this.commitValue = candidate;
    }
    this.releaseAcks(matches);
    // A leader removed from the voters leads only until that removal commits — and its own copy
    // is on disk, so the removal's ack (which counts that copy) is released before it steps down.
    if (!this.isVoter(this.id) && this.configIndex() <= Math.min(this.commitValue, this.persistedIndex)) this.becomeFollower(this.termValue, null);
  }

  /**
   * Releases the acks whose level is met. `matches` holds each current voter's durable index
   * (this node's own fsynced index among them). A level of a majority or more also waits for the
   * commit index, which is what makes it survive a failover.
   */
  private releaseAcks(matches: number[]): void {
    const voters = matches.length;
    for (const [key, queue] of this.pendingWrites) {
      const ack: Ack = key === 'leader' || key === 'majority' || key === 'all' ? key : Number(key);
      // A voter removed since the proposal lowers what a count can mean, never below one.
      const needed = Math.max(1, Math.min(ackCount(ack, voters) ?? voters, voters));
      // Every level counts the leader's own copy: followers may have an entry before the
      // leader's write of it lands, and the commit index may then move ahead of that write.
      let durable = Math.min(this.persistedIndex, indexReachedBy(matches, needed));
      if (needed >= majority(voters)) durable = Math.min(durable, this.commitValue);
      let k = 0;
      while (k < queue.length && (queue[k] as PendingWrite).index <= durable) {
        const w = queue[k] as PendingWrite;
        this.out.acked.push({ index: w.index, term: w.term });
        k++;
      }
      if (k > 0) queue.splice(0, k);
    }
  }

  // ---- the follower ------------------------------------------------------------------------

  private heardFromLeader(m: Message): void {
    if (this.roleValue !== 'follower' || this.leaderValue !== m.from) this.becomeFollower(m.term, m.from);
    this.electionElapsed = 0;
  }

  private handleAppend(m: AppendMessage): void {
    this.heardFromLeader(m);
    const reply = (success: boolean, index: number, hintIndex = 0, hintTerm = 0): void => {
      this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.termValue, success, index, hintIndex, hintTerm }, false);
    };
    let prevIndex = m.prevIndex;
    let entries = m.entries;
    if (prevIndex < this.commitValue) {
      // Our committed prefix agrees with every leader's log: keep only what lies beyond it.
      const atCommit = m.entries[this.commitValue - m.prevIndex - 1];
      assert(atCommit === undefined || atCommit.term === this.log.termAt(this.commitValue), `leader ${m.from} disagrees with committed entry ${this.commitValue}`);
      if (m.prevIndex + m.entries.length <= this.commitValue) {
        reply(true, this.commitValue);
        return;
      }
      entries = m.entries.slice(this.commitValue - m.prevIndex);
      prevIndex = this.commitValue;
    } else if (this.log.termAt(prevIndex) !== m.prevTerm) {
      assert(prevIndex !== this.commitValue, `leader ${m.from} disagrees with committed entry ${prevIndex}`);
      const hintIndex = this.log.findConflictByTerm(Math.min(prevIndex, this.log.lastIndex()), m.prevTerm);
      reply(false, prevIndex, hintIndex, this.log.termAt(hintIndex) ?? 0);
      return;
    }
    const { truncateFrom, removed, appended } = this.log.appendMatching(entries);
    if (truncateFrom !== null) this.noteTruncation(truncateFrom, removed);
    const first = appended[0];
    if (first !== undefined) this.unstableFrom = Math.min(this.unstableFrom, first.index);
    for (const entry of appended) {
      if (entry.kind === 'config' && entry.config !== undefined) this.setConfig(entry.index, entry.config);
    }
    const lastNew = m.prevIndex + m.entries.length;
    this.followerCommit(Math.min(m.commit, lastNew), lastNew >= m.commit ? m.commit : null);
    reply(true, lastNew);
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.heardFromLeader(m);
    this.followerCommit(Math.min(m.commit, this.log.lastIndex()), m.commit === m.leaderCommit ? m.leaderCommit : null);
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.termValue, readRound: m.readRound, lastIndex: this.log.lastIndex() }, true);
  }

  /** Moves the follower's commit forward; `caughtUpTo` is set when it holds all the leader committed. */
  private followerCommit(commit: number, caughtUpTo: number | null): void {
    if (commit > this.commitValue) this.commitValue = commit;
    if (caughtUpTo !== null) {
      this.caughtUpTick = this.ticks;
      this.caughtUpCommit = caughtUpTo;
    }
  }

  private handleSnapshot(m: SnapshotMessage): void {
    this.heardFromLeader(m);
    const meta = m.meta;
    const reply = (index: number): void => {
      this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.termValue, success: true, index, hintIndex: 0, hintTerm: 0 }, false);
    };
    if (meta.index <= this.commitValue) {
      reply(this.commitValue);
      return;
    }
    if (this.log.termAt(meta.index) === meta.term) {
      // Our log already holds the snapshot's last entry: nothing to install, just commit.
      this.commitValue = meta.index;
      reply(meta.index);
      return;
    }
    assert(m.data !== null, 'a snapshot message must carry its data');
    for (let i = this.commitValue + 1; i <= this.log.lastIndex(); i++) {
      const entry = this.log.entryAt(i);
      // Entries past the snapshot conflict with it; inside it, the term history tells.
      if (i > meta.index || termFromHistory(meta.termStarts, i) !== entry.term) this.out.truncated.push(entry);
    }
    this.log.resetTo(meta);
    this.snapshotMeta = meta;
    this.snapshotToInstall = { meta, data: m.data };
    this.commitValue = meta.index;
    this.appliedHanded = meta.index;
    this.applyLoading = null;
    this.loadedForApply = null;
    this.persistedIndex = Math.min(this.persistedIndex, meta.index);
    this.unstableFrom = meta.index + 1;
    this.truncateFromOut = null;
    this.configHistory = [{ index: meta.index, config: meta.config }];
    this.configValue = meta.config;
    reply(meta.index);
  }

  private noteTruncation(from: number, removed: Entry[]): void {
    assert(from > this.commitValue, `truncating committed entry ${from} (commit ${this.commitValue})`);
    this.out.truncated.push(...removed);
    this.persistedIndex = Math.min(this.persistedIndex, from - 1);
    this.unstableFrom = Math.min(this.unstableFrom, from);
    this.truncateFromOut = this.truncateFromOut === null ? from : Math.min(this.truncateFromOut, from);
    while (this.configHistory.length > 1 && (this.configHistory[this.configHistory.length - 1] as { index: number }).index >= from) {
      this.configHistory.pop();
    }
    this.configValue = (this.configHistory[this.configHistory.length - 1] as { config: ClusterConfig }).config;
  }

  // ---- membership --------------------------------------------------------------------------

  private setConfig(index: number, config: ClusterConfig): void {
    this.configHistory.push({ index, config });
    this.configValue = config;
    if (this.roleValue !== 'leader') return;
    const members = new Set(this.members());
    for (const id of members) {
      if (id !== this.id && !this.progress.has(id)) this.progress.set(id, new Progress(id, this.log.lastIndex() + 1));
    }
    for (const id of [...this.progress.keys()]) {
      if (!members.has(id)) this.progress.delete(id);
    }
  }

  private configIndex(): number {
    return (this.configHistory[this.configHistory.length - 1] as { index: number }).index;
  }

  private configAt(index: number): ClusterConfig {
    let config = (this.configHistory[0] as { config: ClusterConfig }).config;
    for (const item of this.configHistory) {
      if (item.index <= index) config = item.config;
    }
    return config;
  }

  // ---- reads -------------------------------------------------------------------------------

  private awaitApply(requestId: number, index: number): void {
    if (index <= this.appliedValue) {
      this.out.reads.push({ requestId, index });
      return;
    }
    if (this.readsAwaitingApply.length >= limits.pendingReadsMax) {
      this.out.failedReads.push({ requestId, code: 'STALE_READ', leaderHint: this.leaderValue });
      return;
    }
    this.readsAwaitingApply.push({ requestId, index });
  }

  private readBounded(requestId: number, ms: number): void {
    const allowedTicks = Math.floor(ms / this.options.tickMs);
    if (this.roleValue === 'leader') {
      const voters = this.configValue.voters;
      const contact = indexReachedBy(voters.map((v) => (v === this.id ? this.ticks : (this.progress.get(v)?.lastAckTick ?? -1))), majority(voters.length));
      if (contact >= 0 && this.ticks - contact <= allowedTicks) {
        this.awaitApply(requestId, this.commitValue);
        return;
      }
    } else if (this.caughtUpTick !== null && this.ticks - this.caughtUpTick <= allowedTicks) {
      this.awaitApply(requestId, this.caughtUpCommit);
      return;
    }
    this.out.failedReads.push({ requestId, code: 'STALE_READ', leaderHint: this.leaderValue });
  }

  private readLinearizable(requestId: number): void {
    if (this.roleValue === 'leader') {
      this.waitingReads.push({ requestId, from: null });
      return;
    }
    if (this.leaderValue === null) {
      this.out.failedReads.push({ requestId, code: 'NOT_LEADER', leaderHint: null });
      return;
    }
    this.forwardedReads.set(requestId, this.leaderValue);
    this.send({ type: 'readIndex', from: this.id, to: this.leaderValue, term: this.termValue, requestId }, true);
  }

  private handleReadIndex(m: ReadIndexMessage): void {
    if (this.roleValue !== 'leader') {
      const reply: ReadIndexResponse = { type: 'readIndexResp', from: this.id, to: m.from, term: this.termValue, requestId: m.requestId, index: null };
      this.send(reply, true);
      return;
    }
    this.waitingReads.push({ requestId: m.requestId, from: m.from });
  }

  private handleReadIndexResponse(m: ReadIndexResponse): void {
    if (this.forwardedReads.get(m.requestId) !== m.from) return;
    this.forwardedReads.delete(m.requestId);
    if (m.index === null) this.out.failedReads.push({ requestId: m.requestId, code: 'NOT_LEADER', leaderHint: this.leaderValue });
    else this.awaitApply(m.requestId, m.index);
  }

  private failForwardedReads(): void {
    for (const requestId of this.forwardedReads.keys()) {
      this.out.failedReads.push({ requestId, code: 'NOT_LEADER', leaderHint: null });
    }
    this.forwardedReads.clear();
  }

  /** Starts one quorum round for every read waiting now (a leader must have committed in its term first). */
  private canStartReadRound(): boolean {
    return this.waitingReads.length > 0 && this.log.termAt(this.commitValue) === this.termValue;
  }

  private startReadRound(): void {
    if (!this.canStartReadRound()) return;
    this.readRound++;
    this.readRounds.push({ round: this.readRound, index: this.commitValue, reads: this.waitingReads });
    this.waitingReads = [];
    this.broadcastHeartbeats();
    this.heartbeatElapsed = 0;
    this.completeReadRounds();
  }

  private completeReadRounds(): void {
    const voters = this.configValue.voters;
    const quorum = majority(voters.length);
    while (this.readRounds.length > 0) {
      const round = this.readRounds[0] as ReadRound;
      let acks = 0;
      for (const v of voters) {
        if (v === this.id || (this.progress.get(v)?.readRoundAcked ?? 0) >= round.round) acks++;
      }
      if (acks < quorum) return;
      this.readRounds.shift();
      for (const read of round.reads) {
        if (read.from === null) {
          this.awaitApply(read.requestId, round.index);
        } else {
          const reply: ReadIndexResponse = { type: 'readIndexResp', from: this.id, to: read.from, term: this.termValue, requestId: read.requestId, index: round.index };
          this.send(reply, true);
        }
      }
    }
  }

  // ---- output ------------------------------------------------------------------------------

  /** Queues a message: `now` ones may leave before this ready's persistence completes. */
  private send(message: Message, now: boolean): void {
    if (now) this.out.messagesNow.push(message);
    else this.out.messages.push(message);
  }
}

/** The configuration after one change, or a TandemError naming why it cannot be made. */
export function nextConfig(
  config: ClusterConfig,
  change: MembershipChange,
  matchOf: (id: NodeId) => number,
  commit: number,
): ClusterConfig {
  const isVoter = config.voters.includes(change.node);
  const isLearner = config.learners.includes(change.node);
  const bad = (why: string): TandemError => new TandemError(ErrorCode.badRequest, `cannot ${change.type} ${change.node}: ${why}`);
  switch (change.type) {
    case 'addLearner':
    case 'addVoter':
      if (isVoter || isLearner) throw bad('already a member');
      if (config.voters.length + config.learners.length >= limits.membersMax) throw bad(`the cluster has its maximum of ${limits.membersMax} members`);
      return change.type === 'addLearner'
        ? { voters: config.voters, learners: [...config.learners, change.node] }
        : { voters: [...config.voters, change.node], learners: config.learners };
    case 'promote':
      if (!isLearner) throw bad('not a learner');
      if (matchOf(change.node) < commit) throw bad(`not caught up (has ${matchOf(change.node)} of ${commit})`);
      return { voters: [...config.voters, change.node], learners: config.learners.filter((id) => id !== change.node) };
    case 'remove':
      if (!isVoter && !isLearner) throw bad('not a member');
      if (isVoter && config.voters.length === 1) throw bad('it is the last voter');
      return { voters: config.voters.filter((id) => id !== change.node), learners: config.learners.filter((id) => id !== change.node) };
  }
}
