import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer, type PacerClock } from '../src/storage/pacer.js';

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
});
