import type { NodeId } from './types.js';

/**
 * How the leader sends to one follower:
 * `probe` — one append at a time until the follower's match point is found;
 * `replicate` — pipelined appends, up to the in-flight limit;
 * `snapshot` — a snapshot is on its way, appends wait.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower. Invariant: match < next. */
export class Progress {
  readonly id: NodeId;
  /** The highest index known durable on the follower and agreeing with the leader. */
  match = 0;
  /** The next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is out and unanswered, so wait. */
  probeSent = false;
  /** Last index of each append in flight (replicate state), oldest first. */
  readonly inflight: number[] = [];
  /** Payload bytes of each append in flight, in the same order, and their sum. */
  private readonly inflightSizes: number[] = [];
  inflightBytes = 0;
  /** The snapshot index being sent (snapshot state). */
  pendingSnapshot = 0;
  /** The leader's tick when the snapshot was sent, to resend one that was lost. */
  snapshotSentTick = 0;
  /** Heard from since the last check-quorum. */
  recentActive = false;
  /** The leader's tick of the last response from this follower. */
  lastAckTick = -1;
  /** The highest commit index this follower has been told of. */
  commitSent = 0;
  /** The highest read round this follower has confirmed. */
  readRoundAcked = 0;
  /** The id of the load of entries being read from disk for this follower, or null. */
  loading: number | null = null;

  constructor(id: NodeId, next: number) {
    this.id = id;
    this.next = next;
  }

  /** Records an append sent in replicate state: its last index and its payload bytes. */
  sent(last: number, bytes: number): void {
    this.inflight.push(last);
    this.inflightSizes.push(bytes);
    this.inflightBytes += bytes;
  }

  /** Forgets the oldest append in flight (acknowledged, or presumed lost). */
  freeOldest(): void {
    this.inflight.shift();
    this.inflightBytes -= this.inflightSizes.shift() ?? 0;
  }

  private clearInflight(): void {
    this.inflight.length = 0;
    this.inflightSizes.length = 0;
    this.inflightBytes = 0;
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.probeSent = false;
    this.clearInflight();
    this.next = Math.max(this.next, this.match + 1);
    if (this.pendingSnapshot > 0) this.next = Math.max(this.match, this.pendingSnapshot) + 1;
    this.pendingSnapshot = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probeSent = false;
    this.clearInflight();
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number, tick: number): void {
    this.state = 'snapshot';
    this.clearInflight();
    this.pendingSnapshot = index;
    this.snapshotSentTick = tick;
  }

  /** Records an acknowledged index; returns true when it moved match forward. */
  acknowledge(index: number): boolean {
    while (this.inflight.length > 0 && (this.inflight[0] as number) <= index) this.freeOldest();
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    return true;
  }
}
