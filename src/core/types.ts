/**
 * The vocabulary of the replication core: entries, configurations, messages, and the ready
 * batch that tells the engine what to persist, send and apply, in that order.
 */

/** A node's name, unique within one cluster. */
export type NodeId = string;

/** What an entry carries: a client command, a membership change, or a new leader's no-op. */
export type EntryKind = 'command' | 'config' | 'noop';

/** One record of the replicated log. Invariant: `index` is gapless from 1; `term` never decreases along the log. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  /** The command bytes for `command`; empty for the other kinds. */
  readonly data: Uint8Array;
  /** The configuration that takes effect when this entry is appended (kind `config` only). */
  readonly config?: ClusterConfig;
}

/** Who votes and who only follows. Invariant: voters and learners are disjoint, voters non-empty. */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What must survive a crash before a vote or a message of a new term leaves the node. */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | null;
}

/** Describes a state-machine snapshot: it covers every entry up to and including `index`. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly config: ClusterConfig;
  /**
   * The first index of each term in the log up to `index`, oldest first, as [term, index]
   * pairs (the most recent `limits.termHistoryMax`). A receiver uses it to tell which of its
   * own unapplied entries the snapshot covers and which it discards.
   */
  readonly termStarts: readonly (readonly [number, number])[];
}

/**
 * State bytes a transport wrote to a file as they arrived instead of holding them: a snapshot too
 * large to keep in memory. The core passes them on without reading them.
 */
export interface StagedSnapshot {
  readonly path: string;
  readonly bytes: number;
}

/** A snapshot's state bytes: in memory, or staged in a file. */
export type SnapshotData = Uint8Array | StagedSnapshot;

/** The length of a snapshot's state bytes. */
export function snapshotDataBytes(data: SnapshotData): number {
  return data instanceof Uint8Array ? data.length : data.bytes;
}

/** A snapshot with its state-machine bytes, as installed or shipped. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: SnapshotData;
}

/**
 * How many durable copies a write needs before its client hears OK:
 * `leader` (the leader's fsync), `majority` (a quorum of voters), `all` (every voter),
 * or a number n of voters, the leader included.
 */
export type Ack = 'leader' | 'majority' | 'all' | number;

/** The consistency a read asks for (DESIGN.md §1.6). */
export type Consistency =
  | { readonly kind: 'linearizable' }
  | { readonly kind: 'session'; readonly index: number }
  | { readonly kind: 'after'; readonly index: number }
  | { readonly kind: 'bounded'; readonly ms: number }
  | { readonly kind: 'stale' };

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term: the fencing token every receiver checks first. */
  readonly term: number;
}

/** Leader → follower: entries after (prevIndex, prevTerm), and the leader's commit index. */
export interface AppendMessage extends MessageBase {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower → leader. On success `index` is the last index the follower now holds durably in
 * agreement with the leader. On refusal `index` is the rejected prevIndex and
 * (hintIndex, hintTerm) say where the follower's log may agree, so the leader skips a whole term.
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'appendResp';
  readonly success: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Leader → follower: "I still lead", the safe commit index, and the current read round. */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  /** min(follower's match, leader's commit): what the follower may commit. */
  readonly commit: number;
  /** The leader's own commit index, so the follower knows whether it is caught up. */
  readonly leaderCommit: number;
  readonly readRound: number;
}

/** Follower → leader: the heartbeat of `readRound` was heard in the sender's term. */
export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly readRound: number;
  /** The follower's last log index, so a leader notices a follower that lost its tail (a damaged disk). */
  readonly lastIndex: number;
}

/** Candidate → voter. For a pre-vote, `term` is the term the candidate would campaign in. */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set when the leader asked for this campaign (transfer): voters ignore their lease. */
  readonly transfer: boolean;
}

/** Voter → candidate. */
export interface VoteResponse extends MessageBase {
  readonly type: 'voteResp' | 'preVoteResp';
  readonly granted: boolean;
}

/** Leader → follower: install this snapshot (the engine attaches the bytes). */
export interface SnapshotMessage extends MessageBase {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
  data: SnapshotData | null;
}

/** Leader → transfer target: campaign now. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/** Follower → leader: confirm leadership and tell me the commit index to read at. */
export interface ReadIndexMessage extends MessageBase {
  readonly type: 'readIndex';
  readonly requestId: number;
}

/** Leader → follower: the read index for `requestId`, or null when the leader could not serve it. */
export interface ReadIndexResponse extends MessageBase {
  readonly type: 'readIndexResp';
  readonly requestId: number;
  readonly index: number | null;
}

/** Every message nodes exchange. */
export type Message =
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | VoteMessage
  | VoteResponse
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponse;

/** The write at `index` reached the durability its client asked for. */
export interface AckedWrite {
  readonly index: number;
  readonly term: number;
}

/** A write whose fate this node can no longer report (it lost leadership, or the entry was cut). */
export interface AbandonedWrite {
  readonly index: number;
  readonly term: number;
  readonly code: 'LEADER_CHANGED';
}

/** A read that may be served now: this node has applied at least `index`. */
export interface ReadyRead {
  readonly requestId: number;
  readonly index: number;
}

/** A read this node cannot serve at the asked consistency. */
export interface FailedRead {
  readonly requestId: number;
  readonly code: 'NOT_LEADER' | 'STALE_READ';
  readonly leaderHint: NodeId | null;
}

/**
 * Entries a leader needs for a follower, or the state machine needs, that are no longer in memory: the engine reads them from
 * its disk (lo.., up to `hi`, at most `entriesMax` entries and, past the first, `bytesMax` payload
 * bytes) and hands them to `Raft.entriesLoaded` — or, when the read fails, asks
 * `Raft.loadWanted` whether the failure matters (a snapshot may have covered them meanwhile).
 */
export interface EntryLoad {
  readonly id: number;
  /** The follower the entries are for, or null for this node's own state machine (committed entries it has not applied). */
  readonly peer: NodeId | null;
  readonly term: number;
  readonly lo: number;
  readonly hi: number;
  readonly entriesMax: number;
  readonly bytesMax: number;
}

/**
 * One batch of work for the engine. The order is the contract:
 * 1. `messagesNow` may be sent at once (leader traffic that needs nothing persisted first);
 * 2. persist, atomically with respect to recovery: `hardState`, then `snapshot`, then cut the
 *    log from `truncateFrom`, then append `entries`; fsync when `mustSync`;
 * 3. only then send `messages` and call `persisted(ready)` on the core.
 * `committed` entries are already on this node's disk, so applying them (in order, across
 * readies), serving `reads` and releasing `acked` need not wait for step 2 — except when the
 * ready installs a `snapshot`, which must be on disk and restored first. Then call
 * `applied(index)` on the core. While a write is in flight the engine may take
 * `readyDuringWrite()`: the same without anything to persist.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly truncateFrom: number | null;
  readonly entries: readonly Entry[];
  readonly mustSync: boolean;
  /** Entries this node removed from its log that the cluster had not committed (for rollback/). */
  readonly truncated: readonly Entry[];
  readonly messagesNow: readonly Message[];
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly acked: readonly AckedWrite[];
  readonly abandoned: readonly AbandonedWrite[];
  readonly reads: readonly ReadyRead[];
  readonly failedReads: readonly FailedRead[];
  /** Entries to read from disk for followers (they may be read at once, in any order). */
  readonly loads: readonly EntryLoad[];
}
