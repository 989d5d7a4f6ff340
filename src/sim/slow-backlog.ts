import type { StoreBacklog } from '../kv/store.js';
import type { Prng } from '../shared/prng.js';

/**
 * A state store's backlog as a slow LMDB writer makes it: now and then, over its bound for a few
 * simulated milliseconds. The engine then holds committed entries in the log rather than hand
 * them to the store, and — with a small log cache — reads them back from disk once it may go on.
 * (The simulator's store commits at once; this only stands for the bound being reached.)
 */
export class SlowBacklog implements StoreBacklog {
  private overUntil = -1;
  private readonly waiting: ((error: Error | null) => void)[] = [];

  /** `chance`: of going over the bound at each look at it, when it is not already over. */
  constructor(
    private readonly prng: Prng,
    private readonly now: () => number,
    private readonly schedule: (delayMs: number, fn: () => void) => void,
    private readonly chance: number,
  ) {}

  bytes(): number {
    return 0;
  }

  bytesMax(): number {
    return 0;
  }

  held(): number {
    return 0;
  }

  holding(): boolean {
    if (this.now() < this.overUntil) return true;
    if (!this.prng.chance(this.chance)) return false;
    const forMs = this.prng.int(1, 40);
    this.overUntil = this.now() + forMs;
    this.schedule(forMs, () => {
      for (const fn of this.waiting.splice(0)) fn(null);
    });
    return true;
  }

  admit(fn: (error: Error | null) => void): void {
    this.afterDrain(fn);
  }

  afterDrain(fn: (error: Error | null) => void): void {
    if (this.now() >= this.overUntil) fn(null);
    else this.waiting.push(fn);
  }
}
