import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { hurryFlagClock, Pacer, raiseHurry, type PacerClock } from '../src/storage/pacer.js';

/** A clock where each step is `stepMs` of work and a rest takes what it is given (or nothing once hurried). */
class CountedClock implements PacerClock {
  time = 0;
  rests: number[] = [];
  hurryAt = Infinity;

  now(): number {
    return this.time;
  }

  rest(ms: number): void {
    this.rests.push(ms);
    this.time += ms;
  }

  hurried(): boolean {
    return this.time >= this.hurryAt;
  }
}

/** Runs `steps` steps of `stepMs` each through a pacer with `budgetMs`. */
function run(clock: CountedClock, pacer: Pacer, steps: number, stepMs: number, budgetMs: number): void {
  pacer.begin(budgetMs);
  for (let i = 0; i < steps; i++) {
    clock.time += stepMs;
    pacer.step();
  }
}

describe('the LMDB writer pacer', () => {
  it('rests `ratio` times each chunk of work, so the work is spread over ratio + 1 times as long', () => {
    const clock = new CountedClock();
    const pacer = new Pacer(clock, 2, 1);
    // 6,400 steps of 1/64 ms: 100 ms of work, looked at every 64 steps (1 ms).
    run(clock, pacer, 6400, 1 / 64, 1000);
    assert.equal(clock.rests.length, 100);
    assert.ok(clock.rests.every((ms) => Math.abs(ms - 2) < 1e-9), `rests ${clock.rests.slice(0, 5)}`);
    assert.ok(Math.abs(pacer.rested - 200) < 1e-6, `rested ${pacer.rested}`);
    assert.ok(Math.abs(clock.time - 300) < 1e-6);
  });

  it('rests no longer in all than its budget', () => {
    const clock = new CountedClock();
    const pacer = new Pacer(clock, 2, 1);
    run(clock, pacer, 6400, 1 / 64, 50);
    assert.ok(Math.abs(pacer.rested - 50) < 1e-6, `rested ${pacer.rested}`);
    assert.ok(Math.abs(clock.rests.reduce((a, b) => a + b, 0) - 50) < 1e-6);
  });

  it('does not rest with no budget (a commit something waits for), nor once hurried', () => {
    const idle = new CountedClock();
    const straight = new Pacer(idle, 2, 1);
    run(idle, straight, 6400, 1 / 64, 0);
    assert.deepEqual(idle.rests, []);
    assert.equal(straight.rested, 0);

    const clock = new CountedClock();
    clock.hurryAt = 30;
    const pacer = new Pacer(clock, 2, 1);
    run(clock, pacer, 6400, 1 / 64, 1000);
    // Rests of 2 ms after each 1 ms of work until the clock passes 30 ms: ten of them.
    assert.equal(clock.rests.length, 10);
    assert.ok(Math.abs(pacer.rested - 20) < 1e-6, `rested ${pacer.rested}`);
    // A new commit with a budget rests again (the store lowers the flag at each paced hand-over).
    clock.hurryAt = Infinity;
    run(clock, pacer, 320, 1 / 64, 1000);
    assert.ok(Math.abs(pacer.rested - 10) < 1e-6, `the next commit rested ${pacer.rested}`);
  });

  it('rests only after a whole chunk of work', () => {
    const clock = new CountedClock();
    const pacer = new Pacer(clock, 2, 5);
    // 4 ms of work in all: less than one 5 ms chunk.
    run(clock, pacer, 256, 1 / 64, 1000);
    assert.deepEqual(clock.rests, []);
  });

  it("the writer thread's real clock: a rest lasts its time, and raising the flag ends one already begun", async () => {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    // The writer's clock on a thread of its own (Atomics.wait blocks it): a short rest, then one of a minute.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.url).then(({ hurryFlagClock }) => {
        const clock = hurryFlagClock(new Int32Array(workerData.flag));
        let started = clock.now();
        clock.rest(50);
        const shortMs = clock.now() - started;
        parentPort.postMessage({ shortMs, hurried: clock.hurried() });
        started = clock.now();
        clock.rest(60000);
        parentPort.postMessage({ longMs: clock.now() - started, hurried: clock.hurried() });
      });`,
      { eval: true, workerData: { url: new URL('../src/storage/pacer.js', import.meta.url).href, flag: flag.buffer } },
    );
    try {
      const replies: { shortMs?: number; longMs?: number; hurried: boolean }[] = [];
      const next = (): Promise<(typeof replies)[number]> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no word from the resting thread within 10 s')), 10_000);
          worker.once('message', (reply) => {
            clearTimeout(timer);
            resolve(reply);
          });
          worker.once('error', reject);
        });
      const short = await next();
      assert.ok((short.shortMs ?? 0) >= 45, `a 50 ms rest lasted ${short.shortMs} ms`);
      assert.equal(short.hurried, false);
      // The thread is in (or about to enter) its minute's rest: the flag must end it, not the minute.
      assert.equal(hurryFlagClock(flag).hurried(), false);
      raiseHurry(flag);
      const long = await next();
      assert.ok((long.longMs ?? Infinity) < 10_000, `the rest ended after ${long.longMs} ms`);
      assert.equal(long.hurried, true);
    } finally {
      await worker.terminate();
    }
  });
});
