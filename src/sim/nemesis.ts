import type { NodeId } from '../core/types.js';
import type { Prng } from '../shared/prng.js';
import type { SimNetwork } from './network.js';
import type { SimNode } from './node.js';
import type { Scheduler } from './scheduler.js';

const faultKinds = [
  'crash',
  'crashLeader',
  'crashMajority',
  'pause',
  'pauseLeader',
  'partition',
  'isolateLeader',
  'oneWay',
  'bridge',
  'lossBurst',
  'transfer',
  'membership',
  'crashNextLeader',
  'crashNextLeader',
] as const;

type FaultKind = (typeof faultKinds)[number];

/**
 * The fault schedule: crashes (with torn, unsynced disks), pauses, partitions of every shape,
 * loss bursts, leader transfers and membership changes, drawn from the run's seed. Each fault
 * heals itself after a while; `healAll` ends them all.
 */
export class Nemesis {
  faultsInjected = 0;
  private readonly baseDropRate: number;
  private removed: NodeId | null = null;
  private ended = false;
  /** Set by 'crashNextLeader': how many of the next nodes to win an election die within a few ms. */
  private leaderTraps = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly nodes: Map<NodeId, SimNode>,
    private readonly network: SimNetwork,
    private readonly leader: () => SimNode | null,
    private readonly log: (line: string) => void,
  ) {
    this.baseDropRate = network.conditions.dropRate;
  }

  /** Injects faults at random moments between `fromMs` and `toMs`. */
  schedule(fromMs: number, toMs: number): void {
    const next = (): void => {
      if (this.scheduler.now >= toMs || this.ended) return;
      this.inject(this.prng.pick(faultKinds));
      this.scheduler.after(-Math.log(1 - this.prng.float()) * 150, next);
    };
    this.scheduler.after(fromMs, next);
  }

  /**
   * A node just won an election. When the trap is set it dies a moment later, which leaves
   * entries of several terms half replicated: the ground on which commit-rule bugs show.
   */
  leaderElected(id: NodeId): void {
    if (this.leaderTraps === 0 || this.ended) return;
    this.leaderTraps--;
    const node = this.nodes.get(id);
    if (node === undefined) return;
    this.scheduler.after(this.prng.float() * 8, () => {
      if (!this.ended) this.crash(node);
    });
  }

  /** Ends every fault: links restored, crashed nodes restarted, paused ones resumed. */
  healAll(): void {
    this.ended = true;
    this.network.healAll();
    this.network.conditions.dropRate = this.baseDropRate;
    for (const node of this.nodes.values()) {
      if (!node.up) node.start();
      node.resume();
    }
  }

  private later(minMs: number, maxMs: number, fn: () => void): void {
    this.scheduler.after(minMs + this.prng.float() * (maxMs - minMs), () => {
      if (!this.ended) fn();
    });
  }

  private randomNode(): SimNode {
    return this.prng.pick([...this.nodes.values()]);
  }

  private crash(node: SimNode): void {
    if (!node.up) return;
    this.log(`nemesis: crash ${node.id}`);
    node.crash();
    this.later(20, this.prng.chance(0.3) ? 1500 : 600, () => {
      if (node.up) return;
      this.log(`nemesis: restart ${node.id}`);
      node.start();
    });
  }

  private pause(node: SimNode): void {
    if (!node.up || node.paused) return;
    this.log(`nemesis: pause ${node.id}`);
    node.pause();
    this.later(30, 700, () => {
      this.log(`nemesis: resume ${node.id}`);
      node.resume();
    });
  }

  private healLater(): void {
    this.later(50, 800, () => {
      this.log('nemesis: heal network');
      this.network.healAll();
    });
  }

  private inject(kind: FaultKind): void {
    this.faultsInjected++;
    const ids = [...this.nodes.keys()];
    const leader = this.leader();
    switch (kind) {
      case 'crash':
        this.crash(this.randomNode());
        return;
      case 'crashLeader':
        if (leader !== null) this.crash(leader);
        return;
      case 'crashMajority':
        for (const node of this.shuffled([...this.nodes.values()]).slice(0, Math.floor(this.nodes.size / 2) + 1)) this.crash(node);
        return;
      case 'pause':
        this.pause(this.randomNode());
        return;
      case 'pauseLeader':
        if (leader !== null) this.pause(leader);
        return;
      case 'partition': {
        const shuffled = this.shuffled(ids);
        const cut = this.prng.int(1, Math.max(1, shuffled.length - 1));
        this.log(`nemesis: partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`);
        this.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        this.healLater();
        return;
      }
      case 'isolateLeader':
        if (leader === null) return;
        this.log(`nemesis: isolate ${leader.id}`);
        this.network.partition([[leader.id], ids.filter((id) => id !== leader.id)]);
        this.healLater();
        return;
      case 'oneWay': {
        const [a, b] = this.shuffled(ids);
        if (a === undefined || b === undefined) return;
        this.log(`nemesis: cut ${a} -> ${b} only`);
        this.network.cut(a, b);
        this.healLater();
        return;
      }
      case 'bridge': {
        const shuffled = this.shuffled(ids);
        if (shuffled.length < 3) return;
        const bridge = shuffled[0] as NodeId;
        const rest = shuffled.slice(1);
        const half = Math.ceil(rest.length / 2);
        this.log(`nemesis: bridge ${bridge} between ${rest.slice(0, half).join(',')} and ${rest.slice(half).join(',')}`);
        this.network.partition([rest.slice(0, half), rest.slice(half)]);
        this.healLater();
        return;
      }
      case 'lossBurst':
        this.log('nemesis: 30% message loss');
        this.network.conditions.dropRate = 0.3;
        this.later(50, 500, () => {
          this.network.conditions.dropRate = this.baseDropRate;
        });
        return;
      case 'transfer': {
        const engine = leader?.engine;
        if (engine === null || engine === undefined) return;
        const target = this.prng.pick(engine.raft.config.voters);
        try {
          engine.transferLeadership(target);
          this.log(`nemesis: transfer leadership ${leader?.id} -> ${target}`);
        } catch (error) {
          this.log(`nemesis: transfer refused: ${(error as Error).message}`);
        }
        return;
      }
      case 'membership':
        this.changeMembership(leader);
        return;
      case 'crashNextLeader':
        this.leaderTraps = this.prng.int(1, 3);
        this.log(`nemesis: the next ${this.leaderTraps} leaders elected will crash`);
        if (leader !== null) this.crash(leader);
        return;
    }
  }

  /** Removes a voter, then adds it back as a learner and promotes it once it has caught up. */
  private changeMembership(leader: SimNode | null): void {
    const engine = leader?.engine;
    if (engine === null || engine === undefined || this.removed !== null) return;
    const voters = engine.raft.config.voters;
    if (voters.length < 3) return;
    const target = this.prng.pick(voters);
    this.removed = target;
    engine.changeMembership({ type: 'remove', node: target }, (result) => {
      this.log(`nemesis: remove ${target}: ${result.ok ? `ok at ${result.index}` : result.error.code}`);
      if (result.ok) this.later(100, 500, () => this.readd(target, 'addLearner'));
      else this.removed = null;
    });
  }

  private readd(node: NodeId, step: 'addLearner' | 'promote'): void {
    const engine = this.leader()?.engine;
    const retry = (): void => this.later(50, 150, () => this.readd(node, step));
    if (engine === null || engine === undefined) {
      retry();
      return;
    }
    const config = engine.raft.config;
    if (step === 'addLearner' && config.learners.includes(node)) return this.readd(node, 'promote');
    if (config.voters.includes(node)) {
      this.removed = null;
      return;
    }
    engine.changeMembership({ type: step, node }, (result) => {
      this.log(`nemesis: ${step} ${node}: ${result.ok ? `ok at ${result.index}` : result.error.code}`);
      if (!result.ok) retry();
      else if (step === 'addLearner') this.later(50, 200, () => this.readd(node, 'promote'));
      else this.removed = null;
    });
  }

  private shuffled<T>(items: T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.prng.int(0, i);
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy;
  }
}
