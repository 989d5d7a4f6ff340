import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlantedBugs } from '../src/core/raft.js';
import { runSeeds } from '../src/sim/batch.js';
import { runSeed } from '../src/sim/run.js';

const firstSeed = Number(process.env['TANDEM_SIM_FIRST_SEED'] ?? 1);
const seeds = Number(process.env['TANDEM_SIM_SEEDS'] ?? 300);

function failures(count: number, bugs: PlantedBugs): number[] {
  return runSeeds(firstSeed, count, 1, 0, undefined, bugs).failedSeeds.map((f) => f.seed);
}

describe('the simulator', () => {
  it(`runs seeds ${firstSeed}..${firstSeed + seeds - 1} with faults and finds no violation`, () => {
    console.log(`# simulator seeds ${firstSeed}..${firstSeed + seeds - 1} (set TANDEM_SIM_FIRST_SEED / TANDEM_SIM_SEEDS to change)`);
    const summary = runSeeds(firstSeed, seeds, 1, 0, undefined, {});
    const report = summary.failedSeeds.map((f) => `seed ${f.seed}: ${f.violations.slice(0, 2).join(' | ')}`).join('\n');
    assert.equal(summary.failedSeeds.length, 0, `violations (replay with npm run sim -- --seed S --trace):\n${report}`);
    assert.ok(summary.opsChecked > seeds * 50, `only ${summary.opsChecked} operations were checked`);
    assert.ok(summary.faults > seeds * 5, `only ${summary.faults} faults were injected`);
    assert.ok(summary.leaderChanges > seeds, `only ${summary.leaderChanges} leader changes`);
    assert.ok(summary.tornTailsCut > 0, 'no crash ever left a torn record to cut');
    assert.ok(summary.snapshotsInstalled > 0, 'no follower ever caught up by snapshot');
    assert.ok(summary.snapshotsSentFromDisk > 0, 'no snapshot was ever sent from disk (its bytes released once written)');
  });

  it('replays a seed exactly: the same trace twice', () => {
    const seed = firstSeed + 7;
    console.log(`# replay seed ${seed}`);
    const a = runSeed({ seed, nodes: 5, trace: true });
    const b = runSeed({ seed, nodes: 5, trace: true });
    assert.ok(a.trace.length > 20);
    assert.deepEqual(a.trace, b.trace);
    assert.equal(a.events, b.events);
  });

  it('catches a leader elected without the up-to-date vote rule', () => {
    const failed = failures(100, { skipUpToDateCheck: true });
    assert.ok(failed.length >= 5, `only ${failed.length} of 100 seeds caught the planted bug`);
  });

  it("catches 'majority' acknowledged after only the leader's fsync", () => {
    const failed = failures(100, { ackMajorityOnLeaderFsync: true });
    assert.ok(failed.length >= 3, `only ${failed.length} of 100 seeds caught the planted bug`);
  });

  it('catches session and after:<index> reads served before the replica reached that index', () => {
    const failed = failures(100, { sessionReadsWithoutWaiting: true });
    assert.ok(failed.length >= 5, `only ${failed.length} of 100 seeds caught the planted bug`);
  });

  it('the cluster still works with no faults at all, and every write is checked', () => {
    const result = runSeed({ seed: firstSeed, nodes: 3, faults: false });
    assert.deepEqual(result.violations, []);
    assert.equal(result.counts.failed, 0);
    assert.ok(result.opsChecked > 100);
  });
});
