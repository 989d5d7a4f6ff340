import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { open } from 'lmdb';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

/** Replica consistency checking: the leader compares its followers' digests at checkpoint indexes. */
describe('replica consistency checking', () => {
  const cluster = new ProcessCluster(['d1', 'd2', 'd3'], ['--digest-every', '50']);

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  const writeKeys = async (from: number, to: number): Promise<void> => {
    const leader = await cluster.leader();
    for (let i = from; i < to; i++) assert.equal((await cluster.put(leader, `k${i % 60}`, `v${i}`)).status, 200);
  };

  it('raises an alarm naming the node and the index when one replica’s state is corrupted', async () => {
    await writeKeys(0, 120);
    const leader = await cluster.leader();
    const victim = cluster.ids.find((id) => id !== leader) as string;
    await waitFor('checkpoints at 50 and 100 on every node', 10_000, async () => {
      const all = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
      return all.every((s) => s.checkpoints.some((c) => c.index === 100));
    });
    const healthy = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
    const at100 = healthy.map((s) => s.checkpoints.find((c) => c.index === 100)?.digest);
    assert.ok(at100.every((d) => d === at100[0]), 'equal digests at the same index');
    const rounds = (await cluster.status(leader)).digestRounds;
    await waitFor('a comparison round of the leader after the checkpoints', 10_000, async () => (await cluster.status(leader)).digestRounds > rounds + 1);
    assert.deepEqual((await cluster.status(leader)).alarms, [], 'no alarm while replicas agree');

    // Corrupt one follower's state behind its back: a value changed in its LMDB store.
    await cluster.kill(victim, 'SIGTERM');
    const state = open({ path: join(cluster.dir(victim), 'state') });
    const data = state.openDB<Buffer, Buffer>({ name: 'data', encoding: 'binary', keyEncoding: 'binary' });
    await data.put(Buffer.from('k5'), Buffer.from('corrupted'));
    await state.close();
    cluster.start(victim);
    await writeKeys(120, 260);

    const alarm = await waitFor('the leader to raise an alarm', 15_000, async () => (await cluster.status(await cluster.leader())).alarms[0]);
    assert.ok(alarm.index % 50 === 0 && alarm.index > 120, `at a checkpoint after the corruption (${alarm.index})`);
    assert.deepEqual(Object.keys(alarm.digests).sort(), [await cluster.leader(), victim].sort());
    const metrics = await (await fetch(`${cluster.http(await cluster.leader())}/metrics`)).text();
    assert.match(metrics, new RegExp(`tandem_digest_mismatches_total\\{follower="${victim}"\\} [1-9]`));
    assert.match(cluster.output.get(await cluster.leader()) ?? '', /replica state differs from the leader at a checkpoint/);
  });
});
