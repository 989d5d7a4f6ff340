import type { ClusterConfig, NodeId } from '../core/types.js';

/** What GET /v1/status answers: one node's view of itself and, on a leader, of its followers. */
export interface NodeStatus {
  readonly id: NodeId;
  readonly pid: number;
  readonly clusterId: string;
  readonly role: string;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly leaderHttpAddress: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /**
   * The state digest at `digestIndex`: equal on two nodes at the same `digestIndex`. That is the
   * applied index of the state on disk, which trails `appliedIndex` by up to about a second and a
   * half of writes (the state machine commits LMDB a group a second, and a commit nothing waits
   * for is paced) and equals it once writes stop.
   */
  readonly digest: string;
  readonly digestIndex: number;
  /**
   * Bytes of applied writes the state store (LMDB) has not committed yet, the most there have
   * been since the node started, the bound past which new writes wait, and how many writes waited.
   */
  readonly storeBacklog: { readonly bytes: number; readonly bytesMax: number; readonly limit: number; readonly writesHeld: number };
  /**
   * What the process holds in memory: its resident set, the JavaScript heap in use (the heap
   * reserve included: see --heap-reserve-mb), buffers outside the heap (log entries, messages,
   * snapshot pieces), and the payload bytes of the log entries held in memory (older ones are on
   * disk only; see --log-cache-mb).
   */
  readonly memory: { readonly rssBytes: number; readonly heapUsedBytes: number; readonly heapReserveBytes: number; readonly externalBytes: number; readonly logPayloadBytes: number };
  readonly config: ClusterConfig;
  readonly members: readonly { readonly id: NodeId; readonly httpAddress: string | null }[];
  /** The leader's view of each follower (empty on other nodes). */
  readonly followers: readonly FollowerStatus[];
  /** Why the node cannot write its log right now (a full disk), or null. */
  readonly diskProblem: string | null;
  /** The state digest at the latest checkpoint indexes (every --digest-every entries), newest last. */
  readonly checkpoints: readonly Checkpoint[];
  /** Replica consistency alarms this node raised (a leader compares its followers' checkpoints with its own). */
  readonly alarms: readonly DigestAlarm[];
  /** Rounds of that comparison finished so far. */
  readonly digestRounds: number;
  /** Writes and reads this node answered OK since it started (writes count on the leader). */
  readonly writesOk: number;
  readonly readsOk: number;
  /** The elections this node saw end, newest last. */
  readonly elections: readonly ElectionRecord[];
  /** A snapshot being received, with its progress. */
  readonly snapshotReceive: { readonly from: NodeId; readonly received: number; readonly total: number } | null;
}

/** One follower as its leader sees it. */
export interface FollowerStatus {
  readonly id: NodeId;
  readonly matchIndex: number;
  readonly lagEntries: number;
  /** The payload bytes of the entries it lacks (beyond the last 1,000, estimated from their average). */
  readonly lagBytes: number;
  /** The age of the oldest entry the follower lacks, in ms, to within the 100 ms sampling (0 when it has every entry). */
  readonly lagMs: number;
  readonly lastContactMs: number | null;
  readonly state: string;
  readonly httpAddress: string | null;
}

/** The state digest of a node at one index. */
export interface Checkpoint {
  readonly index: number;
  readonly digest: string;
}

/** Two replicas disagree about the state at one index: one of them is corrupt. */
export interface DigestAlarm {
  readonly index: number;
  readonly digests: Readonly<Record<string, string>>;
  readonly raisedAt: string;
}

/** An election as one node saw it: from losing its leader to hearing of the next one. */
export interface ElectionRecord {
  readonly term: number;
  readonly leader: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly reason: string;
}
