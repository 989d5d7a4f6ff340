import type { ClusterConfig, Message, NodeId } from '../core/types.js';
import { Engine, type EngineObserver, type EngineOptions } from '../engine/engine.js';
import type { Runtime, Transport } from '../engine/interfaces.js';
import { readWhole } from '../engine/snapshot-reader.js';
import { KvStateMachine } from '../kv/machine.js';
import { MemoryStore, type KvStore } from '../kv/store.js';
import type { PlantedBugs } from '../core/raft.js';
import { assert } from '../shared/assert.js';
import { Prng } from '../shared/prng.js';
import { SimDisk, type DiskTiming } from './disk.js';
import type { Scheduler } from './scheduler.js';
import { SlowBacklog } from './slow-backlog.js';

/** Timing and behaviour shared by every simulated node of one run. */
export interface SimNodeSettings {
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly requestTimeoutMs: number;
  readonly snapshotEveryEntries: number;
  readonly snapshotKeepEntries: number;
  /** Snapshot by applied payload bytes too (undefined: the engine's default, never reached here). */
  readonly snapshotEveryBytes?: number;
  readonly disk: DiskTiming;
  readonly bootstrap: ClusterConfig;
  readonly bugs: PlantedBugs;
  readonly appendEntriesMax: number;
  readonly inflightMessagesMax: number;
  /** Byte limits of one append and of the appends in flight (undefined: the defaults). */
  readonly appendBytesMax?: number;
  readonly inflightBytesMax?: number;
  /** Payload bytes of committed entries kept in memory (undefined: the default). */
  readonly logCacheBytes?: number;
  /**
   * When set, each node's state store says now and then that it is too far behind (see
   * SlowBacklog), drawn from its own PRNG seeded with this (the run's other draws stay as they were).
   */
  readonly slowStoreSeed?: number;
  /**
   * How long one turn of a node's event loop takes: work deferred to the end of the turn (the
   * ready loop, the proposal of the writes that arrived in it) runs this much later. On a busy
   * node, writes from several clients arrive within one turn and share a log entry.
   */
  readonly turnMs: number;
}

/**
 * One simulated process: a disk that outlives it, and an engine that a crash throws away. A
 * paused node (SIGSTOP) holds every event addressed to it until it resumes.
 */
export class SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  engine: Engine | null = null;
  paused = false;
  private incarnation = 0;
  private frozen: (() => void)[] = [];
  /** State-machine memory: lost on a crash (the state is rebuilt from snapshot and log). */
  private readonly prng: Prng;

  constructor(
    id: NodeId,
    prng: Prng,
    private readonly scheduler: Scheduler,
    private readonly settings: SimNodeSettings,
    private readonly send: (message: Message) => void,
    private readonly observer: EngineObserver,
    readonly priority: number,
  ) {
    this.id = id;
    this.prng = prng;
    this.disk = new SimDisk(prng.fork(), settings.disk, (delay, fn) => this.scheduler.after(delay, this.guard(fn)));
  }

  get up(): boolean {
    return this.engine !== null;
  }

  /** Starts (or restarts) the process from what its disk holds. */
  start(): void {
    const s = this.settings;
    const options: EngineOptions = {
      raft: {
        id: this.id,
        prng: this.prng.fork(),
        electionTimeoutTicks: s.electionTimeoutTicks,
        heartbeatTicks: s.heartbeatTicks,
        tickMs: s.tickMs,
        priority: this.priority,
        bugs: s.bugs,
        appendEntriesMax: s.appendEntriesMax,
        inflightMessagesMax: s.inflightMessagesMax,
        ...(s.appendBytesMax === undefined ? {} : { appendBytesMax: s.appendBytesMax }),
        ...(s.inflightBytesMax === undefined ? {} : { inflightBytesMax: s.inflightBytesMax }),
        ...(s.logCacheBytes === undefined ? {} : { logCacheBytes: s.logCacheBytes }),
      },
      bootstrap: s.bootstrap,
      tickMs: s.tickMs,
      requestTimeoutMs: s.requestTimeoutMs,
      snapshotEveryEntries: s.snapshotEveryEntries,
      snapshotKeepEntries: s.snapshotKeepEntries,
      ...(s.snapshotEveryBytes === undefined ? {} : { snapshotEveryBytes: s.snapshotEveryBytes }),
    };
    const runtime: Runtime = {
      now: () => this.scheduler.now,
      defer: (fn) => this.scheduler.after(s.turnMs, this.guard(fn)),
      setTimeout: (fn, ms) => {
        let cancelled = false;
        this.scheduler.after(ms, this.guard(() => {
          if (!cancelled) fn();
        }));
        return () => {
          cancelled = true;
        };
      },
    };
    const recovered = this.disk.recover();
    const kv = new KvStateMachine(this.store());
    this.engine = new Engine(options, recovered, kv, this.disk, simTransport(this.send), runtime, this.observer);
    this.engine.start();
  }

  /** A fresh state store (the state is rebuilt from snapshot and log at each start). */
  private store(): KvStore {
    const seed = this.settings.slowStoreSeed;
    if (seed === undefined) return new MemoryStore();
    const prng = new Prng(seed * 31 + this.incarnation * 7 + Number.parseInt(this.id.replace(/\D/g, ''), 10));
    const backlog = new SlowBacklog(prng, () => this.scheduler.now, (delay, fn) => this.scheduler.after(delay, this.guard(fn)), 0.02);
    return Object.assign(new MemoryStore(), { backlog });
  }

  /** kill -9: the engine and its memory are gone; unsynced disk work survives only in part. */
  crash(): void {
    this.engine?.halt();
    this.engine = null;
    this.incarnation++;
    this.paused = false;
    this.frozen = [];
    this.disk.crash();
  }

  pause(): void {
    this.paused = true;
  }

  /** SIGCONT: everything held while paused runs now, in order. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.frozen;
    this.frozen = [];
    for (const fn of held) this.scheduler.after(0, fn);
  }

  /** Runs `fn` against this process now, or when it resumes; never after it crashed. */
  deliver(fn: (engine: Engine) => void): void {
    this.guard(() => {
      if (this.engine !== null) fn(this.engine);
    })();
  }

  /** Wraps `fn` so it is dropped after a crash and held while paused. */
  private guard(fn: () => void): () => void {
    const incarnation = this.incarnation;
    const guarded = (): void => {
      if (incarnation !== this.incarnation) return;
      if (this.paused) {
        this.frozen.push(guarded);
        return;
      }
      fn();
    };
    return guarded;
  }
}

/** The engine's transport over the simulated network: a snapshot travels whole, in one message. */
export function simTransport(send: (message: Message) => void): Transport {
  return {
    send,
    sendSnapshot(message, reader) {
      readWhole(reader, (error, data) => {
        assert(error === null && data !== null, `simulated snapshot read failed: ${error?.message ?? 'no data'}`);
        send({ ...message, data });
      });
    },
  };
}
