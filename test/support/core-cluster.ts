import { Raft, type PlantedBugs } from '../../src/core/raft.js';
import type { Entry, EntryLoad, HardState, Message, NodeId, Ready } from '../../src/core/types.js';
import { Prng } from '../../src/shared/prng.js';

/** What a node keeps across a crash in these scenarios: its hard state and its log. */
interface Durable {
  hardState: HardState;
  entries: Entry[];
}

/**
 * A hand-driven cluster of cores for scenario tests: no engine, no clock, no network. The test
 * decides which messages are delivered, which nodes tick, crash and restart; every ready is
 * "persisted" into a Durable record at once, then its messages are queued.
 */
export class CoreCluster {
  readonly cores = new Map<NodeId, Raft>();
  readonly durable = new Map<NodeId, Durable>();
  readonly applied = new Map<NodeId, Entry[]>();
  /** Writes each node acknowledged (index), across restarts. */
  readonly acked = new Map<NodeId, number[]>();
  /** The index of the last snapshot each node installed. */
  readonly snapshots = new Map<NodeId, number>();
  /** Reads each node said it may serve now: requestId -> index. */
  readonly reads = new Map<NodeId, Map<number, number>>();
  /** Reads each node refused: requestId -> code. */
  readonly failedReads = new Map<NodeId, Map<number, string>>();
  /** Entries each node reported cut from its log, across restarts. */
  readonly truncated = new Map<NodeId, Entry[]>();
  queue: Message[] = [];
  /** Entries leaders asked to read back from their durable logs, served by deliver() unless held. */
  loads: { node: NodeId; load: EntryLoad }[] = [];
  /** While true, deliver() leaves the loads queued (to overtake them in a test). */
  holdLoads = false;
  /** Entries served to the cores from their durable logs, across the run. */
  entriesLoaded = 0;
  private readonly down = new Set<NodeId>();

  constructor(
    readonly ids: readonly NodeId[],
    private readonly options: { seed?: number; bugs?: PlantedBugs; learners?: readonly NodeId[]; appendEntriesMax?: number; appendBytesMax?: number; inflightBytesMax?: number; logCacheBytes?: number; priority?: Record<NodeId, number> } = {},
  ) {
    for (const id of ids) {
      this.durable.set(id, { hardState: { term: 0, votedFor: null }, entries: [] });
      this.start(id);
    }
  }

  core(id: NodeId): Raft {
    const core = this.cores.get(id);
    if (core === undefined) throw new Error(`${id} is down`);
    return core;
  }

  /** Starts a node from its durable record. */
  start(id: NodeId): void {
    const durable = this.durable.get(id) as Durable;
    const learners = this.options.learners ?? [];
    const core = new Raft(
      {
        id,
        prng: new Prng((this.options.seed ?? 1) * 31 + this.ids.indexOf(id)),
        electionTimeoutTicks: 10,
        heartbeatTicks: 2,
        tickMs: 10,
        priority: this.options.priority?.[id] ?? 1,
        bugs: this.options.bugs ?? {},
        appendEntriesMax: this.options.appendEntriesMax ?? 64,
        ...(this.options.appendBytesMax === undefined ? {} : { appendBytesMax: this.options.appendBytesMax }),
        ...(this.options.inflightBytesMax === undefined ? {} : { inflightBytesMax: this.options.inflightBytesMax }),
        ...(this.options.logCacheBytes === undefined ? {} : { logCacheBytes: this.options.logCacheBytes }),
      },
      {
        hardState: durable.hardState,
        snapshot: null,
        entries: durable.entries,
        applied: 0,
        bootstrap: { voters: this.ids.filter((x) => !learners.includes(x)), learners: [...learners] },
      },
    );
    this.cores.set(id, core);
    this.applied.set(id, []);
    this.down.delete(id);
  }

  /** kill -9 (everything persisted so far survives: readies are persisted as soon as taken). */
  crash(id: NodeId): void {
    this.cores.delete(id);
    this.down.add(id);
    this.queue = this.queue.filter((m) => m.from !== id);
    this.loads = this.loads.filter((l) => l.node !== id);
  }

  /** Takes every ready of `id`: persists, queues messages, applies. */
  flush(id: NodeId): Ready[] {
    const core = this.cores.get(id);
    const readies: Ready[] = [];
    if (core === undefined) return readies;
    while (core.hasReady()) {
      const ready = core.ready();
      readies.push(ready);
      const durable = this.durable.get(id) as Durable;
      if (ready.hardState !== null) durable.hardState = ready.hardState;
      if (ready.snapshot !== null) {
        durable.entries = [];
        this.snapshots.set(id, ready.snapshot.meta.index);
      }
      const cut = Math.min(ready.truncateFrom ?? Infinity, ready.entries[0]?.index ?? Infinity);
      if (cut !== Infinity) durable.entries = durable.entries.filter((e) => e.index < cut);
      durable.entries.push(...ready.entries);
      // The engine attaches the state machine's bytes to a snapshot message; a stand-in will do here.
      const attach = (m: Message): Message => (m.type === 'snapshot' ? { ...m, data: Uint8Array.of(1) } : m);
      this.queue.push(...ready.messagesNow.map(attach), ...ready.messages.map(attach));
      this.loads.push(...ready.loads.map((load) => ({ node: id, load })));
      this.applied.get(id)?.push(...ready.committed);
      this.truncated.set(id, [...(this.truncated.get(id) ?? []), ...ready.truncated]);
      this.acked.set(id, [...(this.acked.get(id) ?? []), ...ready.acked.map((a) => a.index)]);
      const reads = this.reads.get(id) ?? new Map<number, number>();
      for (const r of ready.reads) reads.set(r.requestId, r.index);
      this.reads.set(id, reads);
      const failed = this.failedReads.get(id) ?? new Map<number, string>();
      for (const r of ready.failedReads) failed.set(r.requestId, r.code);
      this.failedReads.set(id, failed);
      core.persisted(ready);
      const last = ready.committed[ready.committed.length - 1];
      if (ready.snapshot !== null) core.applied(ready.snapshot.meta.index);
      if (last !== undefined) core.applied(last.index);
    }
    return readies;
  }

  flushAll(): void {
    for (const id of this.cores.keys()) this.flush(id);
  }

  /** Delivers queued messages (those `allow` accepts; the rest are dropped) until none are left. */
  deliver(allow: (m: Message) => boolean = () => true, rounds = 1000): void {
    this.flushAll();
    for (let round = 0; round < rounds && (this.queue.length > 0 || (this.loads.length > 0 && !this.holdLoads)); round++) {
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        if (this.down.has(m.to) || !allow(m)) continue;
        this.cores.get(m.to)?.step(m);
        this.flush(m.to);
      }
      if (!this.holdLoads) this.serveLoads();
    }
  }

  /** Reads every queued load from its node's durable log (as the engine reads its disk) and hands it to the core. */
  serveLoads(): void {
    const loads = this.loads;
    this.loads = [];
    for (const { node, load } of loads) {
      const durable = this.durable.get(node) as Durable;
      const last = Math.min(load.hi, load.lo + load.entriesMax - 1);
      const entries = durable.entries.filter((e) => e.index >= load.lo && e.index <= last);
      this.entriesLoaded += entries.length;
      this.cores.get(node)?.entriesLoaded(load, entries);
      this.flush(node);
    }
  }

  /** Ticks `id` until its election timer fires and it asks for votes, delivering nothing. */
  timeout(id: NodeId): void {
    const core = this.core(id);
    const campaigning = (): boolean => this.queue.some((m) => m.from === id && (m.type === 'preVote' || m.type === 'vote'));
    for (let i = 0; i < 60 && !campaigning(); i++) {
      core.tick();
      this.flush(id);
    }
  }

  /**
   * Lets every live node but `except` forget the leader (tick each one election timeout, with
   * nothing delivered), so they will vote in the next election.
   */
  expireLeases(except: NodeId): void {
    for (const [id, core] of this.cores) {
      if (id === except) continue;
      for (let i = 0; i < 10; i++) core.tick();
    }
    this.queue = [];
    this.flushAll();
    this.queue = [];
  }

  /** Makes `id` campaign now (after the others forget the old leader) and delivers what `allow` lets through. */
  elect(id: NodeId, allow: (m: Message) => boolean = () => true): void {
    for (let attempt = 0; attempt < 4 && this.core(id).role !== 'leader'; attempt++) {
      this.expireLeases(id);
      this.timeout(id);
      this.deliver(allow);
    }
  }

  /** Ticks every node through a heartbeat interval and delivers everything. */
  heartbeat(allow: (m: Message) => boolean = () => true): void {
    for (let i = 0; i < 2; i++) {
      for (const core of this.cores.values()) core.tick();
    }
    this.deliver(allow);
  }

  /** Ticks every live node once. */
  tickAll(): void {
    for (const core of this.cores.values()) core.tick();
    this.flushAll();
  }

  /** Messages may flow only inside each group. */
  static within(...groups: NodeId[][]): (m: Message) => boolean {
    return (m) => groups.some((g) => g.includes(m.from) && g.includes(m.to));
  }

  leader(): Raft | null {
    for (const core of this.cores.values()) if (core.role === 'leader') return core;
    return null;
  }
}
