/**
 * Spreads the LMDB writer thread's work on a group over time, when nothing waits for the commit.
 *
 * Committing a group is CPU on the writer thread (each key's old value read and hashed, the new
 * one hashed and put): about 45 ms a second per node at 25,000 writes a second, done at once when
 * the group is handed over, and on every node at about the same moment (their groups start with
 * the same writes). With more busy threads than cores, those bursts took the CPU from the nodes'
 * event loops and the collector's helper threads, and the whole cluster answered slowly for a
 * tenth of a second, once a second. So the writer rests after each `chunkMs` of work for `ratio`
 * times as long, within the budget the hand-over gave it, and stops resting as soon as the
 * clock says it is hurried (a write held back, someone waiting for the commit, a full group).
 *
 * Pure but for its clock: the writer gives it the real one (hurryFlagClock: performance.now,
 * Atomics.wait on the flag the store raises with raiseHurry), the tests a counted one.
 */
export interface PacerClock {
  now(): number;
  /** Sleeps up to `ms`, less if hurried meanwhile. */
  rest(ms: number): void;
  hurried(): boolean;
}

/** How often (in steps) the pacer reads the clock: a step is one change, well under a microsecond of work. */
const stepsPerLook = 64;

export class Pacer {
  private budgetMs = 0;
  private chunkStart = 0;
  private steps = 0;
  private restedMs = 0;

  constructor(
    private readonly clock: PacerClock,
    private readonly ratio = 2,
    private readonly chunkMs = 1,
  ) {}

  /** Starts a commit that may rest for `budgetMs` in all (0: work straight through). */
  begin(budgetMs: number): void {
    this.budgetMs = budgetMs;
    this.restedMs = 0;
    this.steps = 0;
    this.chunkStart = this.clock.now();
  }

  /** One change done: rests if a chunk of work is over and the budget allows. */
  step(): void {
    if (this.budgetMs <= 0 || ++this.steps % stepsPerLook !== 0) return;
    const work = this.clock.now() - this.chunkStart;
    if (work < this.chunkMs) return;
    if (this.clock.hurried()) {
      this.budgetMs = 0;
      return;
    }
    const ms = Math.min(work * this.ratio, this.budgetMs);
    this.budgetMs -= ms;
    const before = this.clock.now();
    this.clock.rest(ms);
    const after = this.clock.now();
    this.restedMs += after - before;
    this.chunkStart = after;
  }

  /** How long this commit rested so far. */
  get rested(): number {
    return this.restedMs;
  }
}

/**
 * The writer thread's clock over a flag it shares with the store (0: nothing waits): a rest is an
 * Atomics.wait on the flag, which raiseHurry ends at once, even mid-rest.
 */
export function hurryFlagClock(flag: Int32Array): PacerClock {
  return {
    now: () => performance.now(),
    rest: (ms) => void Atomics.wait(flag, 0, 0, ms),
    hurried: () => Atomics.load(flag, 0) !== 0,
  };
}

/** Raises the flag of a hurryFlagClock and wakes the thread resting on it. */
export function raiseHurry(flag: Int32Array): void {
  if (Atomics.load(flag, 0) !== 0) return;
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
