import type { Ack, Consistency, NodeId } from '../core/types.js';
import type { Engine, ReadResult, WriteResult } from '../engine/engine.js';
import { encodeCommand, keysOf, type Operation } from '../kv/commands.js';
import { ErrorCode } from '../shared/errors.js';
import type { Prng } from '../shared/prng.js';
import type { AckedWrite } from './checker.js';
import type { RegisterInput, RegisterOutput } from './linearizability.js';
import type { Scheduler } from './scheduler.js';

/** One client operation as the history records it. */
export interface RecordedOp {
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly input: RegisterInput;
  readonly call: number;
  /** Infinity while (or if forever) the outcome is unknown. */
  ret: number;
  output: RegisterOutput | undefined;
  /** Reads at weaker consistencies are not part of the linearizability check. */
  readonly linearizable: boolean;
  readonly label: string;
  /** "clientId:seq" for a write, to find where and when it took effect. */
  readonly request: string | null;
  /** For a read: the lowest applied index its consistency allows (session, after:<i>), else 0. */
  readonly atLeast: number;
  /** For a read: the serving node's applied index at the moment it read. */
  servedAt: number | null;
}

/** What the workload needs of the cluster. */
export interface ClusterAccess {
  readonly nodeIds: readonly NodeId[];
  /** Runs `fn` on the node's engine after a client-link delay, unless the node is down. */
  submit(node: NodeId, fn: (engine: Engine) => void): void;
  /** Delivers a reply to the client after a client-link delay. */
  respond(fn: () => void): void;
  votersNow(): number;
}

/** Shape of the load. */
export interface WorkloadSettings {
  readonly clients: number;
  readonly keys: number;
  readonly endMs: number;
  readonly attemptTimeoutMs: number;
  readonly opDeadlineMs: number;
}

const definiteRefusals = new Set<string>([ErrorCode.notLeader, ErrorCode.transferInProgress, ErrorCode.overloaded, ErrorCode.ackUnsatisfiable, ErrorCode.staleRead]);

/**
 * Concurrent clients issuing puts, gets, deletes and compare-and-sets at every ack level and
 * read consistency. Writes are retried with the same (clientId, seq) until they get an answer
 * or the deadline passes; everything is recorded for the checkers.
 */
export class Workload {
  readonly history: RecordedOp[] = [];
  readonly ackedWrites: AckedWrite[] = [];
  /** Every value ever written per key, to check that no read returns an invented value. */
  readonly written = new Map<string, Set<string>>();
  readonly counts = { ok: 0, failed: 0, unknown: 0, retries: 0 };
  private nextOpId = 1;
  private valueCounter = 0;
  private activeClients = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly cluster: ClusterAccess,
    private readonly settings: WorkloadSettings,
    private readonly trace: (line: string) => void,
  ) {}

  /** True while any client is still running an operation. */
  get busy(): boolean {
    return this.activeClients > 0;
  }

  start(): void {
    for (let c = 0; c < this.settings.clients; c++) {
      const client = new SimClient(c, this);
      this.activeClients++;
      this.scheduler.after(this.prng.float() * 20, () => client.next());
    }
  }

  /** Called by a client that has finished its last operation. */
  clientDone(): void {
    this.activeClients--;
  }

  get now(): number {
    return this.scheduler.now;
  }

  get random(): Prng {
    return this.prng;
  }

  get access(): ClusterAccess {
    return this.cluster;
  }

  get config(): WorkloadSettings {
    return this.settings;
  }

  newOpId(): number {
    return this.nextOpId++;
  }

  newValue(client: number): string {
    return `c${client}v${++this.valueCounter}`;
  }

  log(line: string): void {
    this.trace(line);
  }

  noteWritten(key: string, value: string | null): void {
    if (value === null) return;
    const set = this.written.get(key) ?? new Set<string>();
    set.add(value);
    this.written.set(key, set);
  }

  after(ms: number, fn: () => void): void {
    this.scheduler.after(ms, fn);
  }
}

type Plan =
  | { readonly kind: 'write'; readonly operation: Operation; readonly input: RegisterInput; readonly ack: Ack; readonly needsResult: boolean }
  | { readonly kind: 'read'; readonly key: string; readonly consistency: Consistency; readonly input: RegisterInput };

/** One client: one operation at a time, like a connection. */
class SimClient {
  private readonly clientId: string;
  private seq = 0;
  private leaderGuess: NodeId | null = null;
  /** The highest index this client wrote or read (for session reads). */
  private sessionIndex = 0;

  constructor(private readonly number: number, private readonly w: Workload) {
    this.clientId = `client-${number}`;
  }

  next(): void {
    if (this.w.now >= this.w.config.endMs) {
      this.w.clientDone();
      return;
    }
    const plan = this.plan();
    const op: RecordedOp = {
      id: this.w.newOpId(),
      client: this.number,
      key: plan.kind === 'write' ? (keysOf(plan.operation)[0] as string) : plan.key,
      input: plan.input,
      call: this.w.now,
      ret: Number.POSITIVE_INFINITY,
      output: undefined,
      linearizable: plan.kind === 'write' || plan.consistency.kind === 'linearizable',
      label: plan.kind === 'write' ? `${describe(plan.input)} ack=${String(plan.ack)}` : `get consistency=${plan.consistency.kind}`,
      request: plan.kind === 'write' ? `${this.clientId}:${this.seq + 1}` : null,
      atLeast: plan.kind === 'read' && (plan.consistency.kind === 'session' || plan.consistency.kind === 'after') ? plan.consistency.index : 0,
      servedAt: null,
    };
    if (plan.kind === 'write') this.seq++;
    this.attempt(op, plan, this.pickNode(), false);
  }

  private plan(): Plan {
    const prng = this.w.random;
    const key = `k${prng.int(0, this.w.config.keys - 1)}`;
    const roll = prng.float();
    if (roll < 0.35) {
      return { kind: 'read', key, consistency: this.pickConsistency(), input: { op: 'get' } };
    }
    const ack = this.pickAck();
    if (roll < 0.7) {
      const value = this.w.newValue(this.number);
      return { kind: 'write', operation: { op: 'put', key, value: Buffer.from(value) }, input: { op: 'put', value }, ack, needsResult: false };
    }
    if (roll < 0.8) return { kind: 'write', operation: { op: 'del', key }, input: { op: 'del' }, ack, needsResult: true };
    const written = this.w.written.get(key);
    const expected = written !== undefined && written.size > 0 && prng.chance(0.7) ? prng.pick([...written]) : null;
    const value = prng.chance(0.1) ? null : this.w.newValue(this.number);
    const operation: Operation = { op: 'cas', key, expected: expected === null ? null : Buffer.from(expected), value: value === null ? null : Buffer.from(value) };
    return { kind: 'write', operation, input: { op: 'cas', expected, value }, ack, needsResult: true };
  }

  private pickAck(): Ack {
    const prng = this.w.random;
    const roll = prng.float();
    if (roll < 0.5) return 'majority';
    if (roll < 0.65) return 'leader';
    if (roll < 0.8) return 'all';
    return prng.int(1, Math.max(1, this.w.access.votersNow()));
  }

  private pickConsistency(): Consistency {
    const roll = this.w.random.float();
    if (roll < 0.55) return { kind: 'linearizable' };
    if (roll < 0.7) return { kind: 'session', index: this.sessionIndex };
    if (roll < 0.8) return { kind: 'after', index: this.sessionIndex };
    if (roll < 0.9) return { kind: 'bounded', ms: 200 };
    return { kind: 'stale' };
  }

  private pickNode(): NodeId {
    return this.leaderGuess ?? this.w.random.pick(this.w.access.nodeIds);
  }

  /** `reachedLog` is true once any attempt may have put the write in some log. */
  private attempt(op: RecordedOp, plan: Plan, node: NodeId, reachedLog: boolean): void {
    let answered = false;
    const w = this.w;
    const onTimeout = (): void => {
      if (answered) return;
      answered = true;
      this.retry(op, plan, null, plan.kind === 'write' ? true : reachedLog, 'no answer');
    };
    w.after(w.config.attemptTimeoutMs, onTimeout);
    // The request's bytes are fixed when it is sent, however late a paused node reads them.
    const command = plan.kind === 'write' ? { clientId: this.clientId, seq: this.seq, operation: plan.operation } : null;
    const data = command === null ? null : encodeCommand(command);
    w.access.submit(node, (engine) => {
      if (plan.kind === 'write') {
        engine.write(data as Uint8Array, plan.ack, plan.needsResult, (result) => {
          w.access.respond(() => {
            if (answered) return;
            answered = true;
            this.onWrite(op, plan, node, result, reachedLog);
          });
          // As the front ends do: the leader applies its own entries from these, the others decode.
        }, command);
      } else {
        engine.read(plan.consistency, (result) => {
          const value = result.ok ? engine.kv.get(op.key) : undefined;
          w.access.respond(() => {
            if (answered) return;
            answered = true;
            this.onRead(op, plan, node, result, value);
          });
        });
      }
    });
  }

  private onWrite(op: RecordedOp, plan: Plan & { kind: 'write' }, node: NodeId, result: WriteResult, reachedLog: boolean): void {
    if (!result.ok) {
      const leader = (result.error.details['leader'] as NodeId | null | undefined) ?? null;
      const definite = definiteRefusals.has(result.error.code);
      this.retry(op, plan, leader, reachedLog || !definite, result.error.code);
      return;
    }
    this.leaderGuess = node;
    this.sessionIndex = Math.max(this.sessionIndex, result.index);
    const reply = result.reply;
    const needed = plan.ack === 'leader' ? 1 : plan.ack === 'majority' ? Math.floor(this.w.access.votersNow() / 2) + 1 : plan.ack === 'all' ? this.w.access.votersNow() : plan.ack;
    this.w.ackedWrites.push({ index: result.index, term: result.term, votersNeeded: needed, votersAtTheTime: this.w.access.votersNow(), description: `${op.label} by client ${this.number}` });
    this.w.noteWritten(op.key, op.input.op === 'put' ? op.input.value : op.input.op === 'cas' ? op.input.value : null);
    if (reply === null) {
      // Durable below a quorum, not yet applied: it may still be lost, so its effect is uncertain.
      this.w.counts.unknown++;
    } else {
      op.ret = this.w.now;
      op.output = reply.kind === 'deleted' ? reply.count : reply.kind === 'cas' ? reply.swapped : null;
      this.w.counts.ok++;
    }
    this.w.history.push(op);
    this.finish();
  }

  private onRead(op: RecordedOp, plan: Plan, node: NodeId, result: ReadResult, value: Uint8Array | undefined): void {
    if (!result.ok) {
      const leader = (result.error.details['leader'] as NodeId | null | undefined) ?? null;
      this.retry(op, plan, leader, false, result.error.code);
      return;
    }
    this.sessionIndex = Math.max(this.sessionIndex, result.appliedIndex);
    op.ret = this.w.now;
    op.servedAt = result.appliedIndex;
    op.output = value === undefined ? null : Buffer.from(value).toString();
    this.w.counts.ok++;
    this.w.history.push(op);
    this.finish();
  }

  private retry(op: RecordedOp, plan: Plan, leaderHint: NodeId | null, reachedLog: boolean, why: string): void {
    const w = this.w;
    if (plan.kind === 'write') w.noteWritten(op.key, op.input.op === 'put' ? op.input.value : op.input.op === 'cas' ? op.input.value : null);
    if (w.now - op.call >= w.config.opDeadlineMs) {
      if (plan.kind === 'write' && reachedLog) {
        w.counts.unknown++;
        w.history.push(op); // ret stays Infinity: it may or may not have taken effect
      } else {
        w.counts.failed++;
      }
      w.log(`client ${this.number}: gave up on ${op.label} (${why})`);
      this.finish();
      return;
    }
    w.counts.retries++;
    this.leaderGuess = leaderHint;
    const node = leaderHint ?? w.random.pick(w.access.nodeIds);
    w.after(leaderHint === null ? 20 : 2, () => this.attempt(op, plan, node, reachedLog));
  }

  private finish(): void {
    this.w.after(this.w.random.float() * 10, () => this.next());
  }
}

function describe(input: RegisterInput): string {
  switch (input.op) {
    case 'put':
      return `put ${input.value}`;
    case 'get':
      return 'get';
    case 'del':
      return 'del';
    case 'cas':
      return `cas ${input.expected ?? 'absent'}->${input.value ?? 'absent'}`;
  }
}
