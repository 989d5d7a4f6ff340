import type { NodeId } from '../core/types.js';
import { httpCall } from '../net/http-call.js';
import type { Security } from '../shared/security.js';
import type { Metrics } from './metrics.js';
import type { Checkpoint, DigestAlarm } from './status.js';

/** Checkpoints kept per node (newest last). */
const checkpointsKept = 32;
/** Alarms kept (newest last). */
const alarmsKept = 32;

/**
 * Replica consistency checking: every node records its state digest at agreed indexes (each
 * multiple of --digest-every); the leader fetches its followers' checkpoints and compares them
 * with its own. Two replicas that applied the same entries must hold the same state, so a
 * difference means one of them is corrupt: the leader raises an alarm (status, metric, log line
 * naming the nodes and the index). Nothing is repaired automatically.
 */
export class DigestCheck {
  private readonly own: Checkpoint[] = [];
  private readonly raised: DigestAlarm[] = [];
  private readonly reported = new Set<string>();
  /** Comparison rounds finished (on a leader). */
  rounds = 0;

  constructor(
    private readonly nodeId: NodeId,
    private readonly metrics: Metrics,
    private readonly log: (level: 'error', event: string, fields: Record<string, unknown>) => void,
  ) {}

  /** The engine reached a checkpoint index. */
  record(index: number, digest: string): void {
    this.own.push({ index, digest });
    if (this.own.length > checkpointsKept) this.own.shift();
  }

  get checkpoints(): readonly Checkpoint[] {
    return this.own;
  }

  get alarms(): readonly DigestAlarm[] {
    return this.raised;
  }

  /** Compares one follower's checkpoints with this node's; raises an alarm per new mismatch. */
  compare(follower: NodeId, theirs: readonly Checkpoint[]): void {
    for (const checkpoint of theirs) {
      const mine = this.own.find((c) => c.index === checkpoint.index);
      if (mine === undefined || mine.digest === checkpoint.digest) continue;
      const key = `${follower}@${checkpoint.index}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      const alarm: DigestAlarm = { index: checkpoint.index, digests: { [this.nodeId]: mine.digest, [follower]: checkpoint.digest }, raisedAt: new Date().toISOString() };
      this.raised.push(alarm);
      if (this.raised.length > alarmsKept) this.raised.shift();
      this.metrics.digestMismatches.inc({ follower });
      this.log('error', 'replica state differs from the leader at a checkpoint: one of them is corrupt', { index: checkpoint.index, leader: this.nodeId, leaderDigest: mine.digest, follower, followerDigest: checkpoint.digest });
    }
  }

  /** On the leader: fetches each follower's checkpoints and compares them. */
  async poll(followers: readonly { readonly id: NodeId; readonly httpAddress: string | null }[], security: Security): Promise<void> {
    await Promise.all(
      followers.map(async (f) => {
        if (f.httpAddress === null) return;
        try {
          const answer = await httpCall(f.httpAddress, 'GET', '/v1/checkpoints', { timeoutMs: 1000, token: security.password, ca: security.tls?.ca ?? null });
          const theirs = JSON.parse(answer.body.toString()) as { readonly id: NodeId; readonly checkpoints?: readonly Checkpoint[] };
          if (theirs.id === f.id) this.compare(f.id, theirs.checkpoints ?? []);
        } catch {
          // Unreachable now; checked again on the next round.
        }
      }),
    );
    this.rounds++;
  }
}
