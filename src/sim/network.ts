import type { Message, NodeId } from '../core/types.js';
import type { Prng } from '../shared/prng.js';
import type { Scheduler } from './scheduler.js';

/** Link behaviour the fault schedule can change at any time. */
export interface NetworkConditions {
  delayMinMs: number;
  delayMaxMs: number;
  dropRate: number;
  duplicateRate: number;
}

/**
 * The simulated network between nodes: delays drawn per message (so messages reorder), loss,
 * duplication, and directed link cuts for symmetric, one-way and partial partitions.
 */
export class SimNetwork {
  private readonly blocked = new Set<string>();
  /** Messages sent, dropped and delivered, for the run's summary. */
  readonly counts = { sent: 0, dropped: 0, duplicated: 0 };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    readonly conditions: NetworkConditions,
    private readonly deliver: (message: Message) => void,
  ) {}

  send(message: Message): void {
    this.counts.sent++;
    if (this.blocked.has(`${message.from}>${message.to}`) || this.prng.chance(this.conditions.dropRate)) {
      this.counts.dropped++;
      return;
    }
    this.scheduleDelivery(message);
    if (this.prng.chance(this.conditions.duplicateRate)) {
      this.counts.duplicated++;
      this.scheduleDelivery(message);
    }
  }

  private scheduleDelivery(message: Message): void {
    const { delayMinMs, delayMaxMs } = this.conditions;
    const delay = delayMinMs + this.prng.float() * (delayMaxMs - delayMinMs);
    this.scheduler.after(delay, () => {
      // A link cut while the message was in flight loses it too.
      if (this.blocked.has(`${message.from}>${message.to}`)) return;
      this.deliver(message);
    });
  }

  /** Cuts the link from `from` to `to` (one way). */
  cut(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  /** Splits the nodes into groups that hear only their own group. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut(x, y);
      }
    }
  }

  /** Restores every link. */
  healAll(): void {
    this.blocked.clear();
  }

  /** True when any link is cut. */
  get partitioned(): boolean {
    return this.blocked.size > 0;
  }
}
