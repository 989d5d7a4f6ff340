import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LagHistory, type SampledLog } from '../src/server/lag-history.js';

/** A log whose entry i holds `size(i)` bytes; entries up to notHeldThrough are gone. */
class FakeLog implements SampledLog {
  lastIndex = 0;
  notHeldThrough = 0;
  constructor(private readonly size: (index: number) => number) {}
  entryBytes(index: number): number {
    assert.ok(index > this.notHeldThrough && index <= this.lastIndex, `entry ${index} is held`);
    return this.size(index);
  }
  bytes(from: number, to: number): number {
    let total = 0;
    for (let i = from; i <= to; i++) total += this.size(i);
    return total;
  }
}

describe('follower lag from samples of the log', () => {
  it('counts the bytes a follower lacks at their own sizes, even after the leader compacted them', () => {
    // Entries that shrink: the first thousand hold 1,000 bytes, the rest 10 (a batch of many writes, then single ones).
    const log = new FakeLog((i) => (i <= 1000 ? 1000 : 10));
    const history = new LagHistory();
    history.sample(log, 0);
    for (let step = 1; step <= 20; step++) {
      log.lastIndex = step * 100;
      history.sample(log, step * 100);
    }
    const exact = log.bytes(1, 2000);
    assert.equal(history.lagBytes(log, 0), exact);
    log.notHeldThrough = 1990; // compacted: only the newest ten entries are held
    assert.equal(history.lagBytes(log, 0), exact, 'sample points keep the compacted entries sizes');
    assert.equal(history.lagBytes(log, 500), log.bytes(501, 2000));
    // Between sample points, interpolated: within one sample's worth of entries.
    const between = history.lagBytes(log, 950);
    assert.ok(Math.abs(between - log.bytes(951, 2000)) <= 100 * 1000, `${between}`);
    assert.equal(history.lagBytes(log, 2000), 0);
  });

  it('counts entries after the newest sample directly, and entries before the first at the average', () => {
    const log = new FakeLog(() => 50);
    const history = new LagHistory();
    log.lastIndex = 100;
    history.sample(log, 0);
    log.lastIndex = 200;
    history.sample(log, 100);
    log.lastIndex = 230; // not sampled yet
    assert.equal(history.lagBytes(log, 200), 30 * 50);
    assert.equal(history.lagBytes(log, 40), 190 * 50, 'before the first sample: the average entry size');
  });

  it('gives the age of the oldest entry a follower lacks, and forgets samples past a log cut back', () => {
    const log = new FakeLog(() => 1);
    const history = new LagHistory();
    for (let step = 1; step <= 5; step++) {
      log.lastIndex = step * 10;
      history.sample(log, step * 1000);
    }
    assert.equal(history.lagMs(log, 50, 6000), 0);
    assert.equal(history.lagMs(log, 25, 6000), 3000, 'index 30 was first held at 3,000 ms');
    log.lastIndex = 35; // a new leader cut the log back
    history.sample(log, 7000);
    log.lastIndex = 45;
    history.sample(log, 8000);
    assert.equal(history.lagMs(log, 40, 9000), 1000, 'index 45 was reached at 8,000 ms, not the forgotten 50 at 5,000');
    assert.equal(history.lagBytes(log, 40), 5);
  });
});
