import type { Entry, NodeId, SnapshotMeta } from '../core/types.js';
import type { Reply } from '../kv/commands.js';
import type { Applied } from '../kv/machine.js';
import { fnv1a } from '../shared/hash.js';

/** A write the client heard OK for, with the durability it asked for. */
export interface AckedWrite {
  readonly index: number;
  readonly term: number;
  /** Voters that had to hold it durably before the OK. */
  readonly votersNeeded: number;
  readonly votersAtTheTime: number;
  readonly description: string;
}

/**
 * The invariants checked while a simulation runs (one leader per term, identical committed
 * prefixes, equal digests at equal indexes, exactly-once effects) and at its end (no
 * acknowledged write lost, every lost `leader`-ack write in some rollback/).
 */
export class InvariantChecker {
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, NodeId>();
  /** What was applied at each index: term and a hash of the entry. */
  private readonly committed = new Map<number, string>();
  private readonly digests = new Map<number, { digest: string; node: NodeId }>();
  /** For each (clientId, seq): the index (and position in its entry) where it took effect, when, and what it answered. */
  private readonly effects = new Map<string, { index: number; position: number; time: number; reply: Reply | null }>();
  /**
   * What each applied command did to its key, by "index:position" (an entry may hold several
   * commands): the new value (null: deleted), or undefined (no change).
   */
  private readonly keyEffects = new Map<string, { index: number; position: number; key: string; value: string | null | undefined }>();
  private keyHistories: Map<string, { index: number; value: string | null }[]> | null = null;
  /** Entries applied, counted once per index. */
  appliedEntries = 0;
  /** Workload writes applied (counted once) that shared an entry with an earlier write. */
  batchedWrites = 0;
  leaderChanges = 0;
  snapshotsInstalled = 0;

  constructor(private readonly now: () => number) {}

  private violation(text: string): void {
    this.violations.push(`t=${this.now().toFixed(1)}ms ${text}`);
  }

  leaderElected(node: NodeId, term: number): void {
    this.leaderChanges++;
    const existing = this.leaders.get(term);
    if (existing !== undefined && existing !== node) this.violation(`two leaders in term ${term}: ${existing} and ${node}`);
    this.leaders.set(term, node);
  }

  applied(node: NodeId, entry: Entry, result: Applied, digest: (() => string) | null): void {
    const identity = `${entry.term}:${entry.kind}:${fnv1a(entry.data)}`;
    const existing = this.committed.get(entry.index);
    if (existing === undefined) {
      this.committed.set(entry.index, identity);
      this.appliedEntries++;
    } else if (existing !== identity) {
      this.violation(`committed entries differ at index ${entry.index}: ${existing} vs ${identity} on ${node}`);
    }
    if (digest !== null) this.digestAt(node, entry.index, digest());
    const command = result.command;
    if (command !== null && command.clientId !== '' && !result.deduplicated) {
      const key = `${command.clientId}:${command.seq}`;
      const first = this.effects.get(key);
      if (first === undefined) this.effects.set(key, { index: entry.index, position: result.position, time: this.now(), reply: result.reply });
      else if (first.index !== entry.index || first.position !== result.position) {
        this.violation(`request ${key} took effect twice: at ${first.index}.${first.position} and ${entry.index}.${result.position}`);
      }
    }
    if (result.reply?.kind === 'error' && result.reply.code === 'STALE_REQUEST') this.violation(`${node}: ${result.reply.message}`);
    const op = command?.operation;
    // The simulated workload writes with put, del and cas only.
    const place = `${entry.index}:${result.position}`;
    if (op !== undefined && (op.op === 'put' || op.op === 'del' || op.op === 'cas') && !result.deduplicated && !this.keyEffects.has(place)) {
      const text = (value: Uint8Array | null): string | null => (value === null ? null : Buffer.from(value).toString());
      const value = op.op === 'put' ? text(op.value) : op.op === 'del' ? null : result.reply?.kind === 'cas' && result.reply.swapped ? text(op.value) : undefined;
      this.keyEffects.set(place, { index: entry.index, position: result.position, key: op.key, value });
      if (result.position > 0) this.batchedWrites++;
    }
  }

  /** The committed value of `key` once every entry up to `index` is applied (null: absent). */
  valueAt(key: string, index: number): string | null {
    if (this.keyHistories === null) {
      this.keyHistories = new Map();
      for (const effect of [...this.keyEffects.values()].sort((a, b) => a.index - b.index || a.position - b.position)) {
        if (effect.value === undefined) continue;
        const list = this.keyHistories.get(effect.key) ?? [];
        list.push({ index: effect.index, value: effect.value });
        this.keyHistories.set(effect.key, list);
      }
    }
    let value: string | null = null;
    for (const change of this.keyHistories.get(key) ?? []) {
      if (change.index > index) break;
      value = change.value;
    }
    return value;
  }

  snapshotInstalled(node: NodeId, meta: SnapshotMeta, digest: string): void {
    this.snapshotsInstalled++;
    this.digestAt(node, meta.index, digest);
  }

  private digestAt(node: NodeId, index: number, digest: string): void {
    const existing = this.digests.get(index);
    if (existing === undefined) this.digests.set(index, { digest, node });
    else if (existing.digest !== digest) this.violation(`state digests differ at index ${index}: ${existing.node} ${existing.digest} vs ${node} ${digest}`);
  }

  /**
   * Where and when request `key` ("clientId:seq") first took effect, or undefined if it never
   * did (at the end of a run, after every node converged, that is final).
   */
  effectOf(key: string): { index: number; position: number; time: number; reply: Reply | null } | undefined {
    return this.effects.get(key);
  }

  /** The term of the entry applied at `index`, or null when none was. */
  committedTerm(index: number): number | null {
    const identity = this.committed.get(index);
    return identity === undefined ? null : Number(identity.slice(0, identity.indexOf(':')));
  }

  /** No write acknowledged at a quorum-sized ack may be missing from the committed log. */
  checkAckedWrites(writes: readonly AckedWrite[]): void {
    for (const w of writes) {
      const durable = w.votersNeeded >= Math.floor(w.votersAtTheTime / 2) + 1;
      if (durable && this.committedTerm(w.index) !== w.term) {
        this.violation(`acknowledged write lost: ${w.description} at index ${w.index} term ${w.term} (committed term there: ${this.committedTerm(w.index)})`);
      }
    }
  }

  /**
   * A lost write acknowledged below a quorum must be accounted for: in some node's rollback/,
   * or still in the log of a node that left the cluster.
   */
  checkRollback(writes: readonly AckedWrite[], rollbacks: ReadonlySet<string>, heldByNonMembers: ReadonlySet<string>): { lostAndRecorded: number } {
    let lostAndRecorded = 0;
    for (const w of writes) {
      if (this.committedTerm(w.index) === w.term) continue;
      const key = `${w.index}:${w.term}`;
      if (rollbacks.has(key) || heldByNonMembers.has(key)) lostAndRecorded++;
      else this.violation(`lost ${w.description} at index ${w.index} term ${w.term} is in no rollback/ record`);
    }
    return { lostAndRecorded };
  }
}
