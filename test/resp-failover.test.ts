import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { TandemClient } from '../src/client/client.js';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

/** Failover as Redis clients see it: Sentinel discovery, cut-off clients, exactly-once retries. */
describe('failover through the Redis protocol', () => {
  const cluster = new ProcessCluster(['f1', 'f2', 'f3']);
  const sentinels = (): { host: string; port: number }[] => cluster.ids.map((id) => ({ host: '127.0.0.1', port: cluster.respPort(id) }));

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  it('disconnects the clients of a leader that hands over, so they ask again', async () => {
    const leader = await cluster.leader();
    const client = new Redis({ port: cluster.respPort(leader), host: '127.0.0.1', retryStrategy: () => null, maxRetriesPerRequest: 0 });
    let closed = false;
    client.on('close', () => (closed = true));
    assert.equal(await client.set('before-switchover', '1'), 'OK');
    const target = cluster.ids.find((id) => id !== leader) as string;
    const response = await fetch(`${cluster.http(leader)}/v1/switchover?to=${target}`, { method: 'POST' });
    assert.equal(response.status, 200, await response.clone().text());
    await waitFor('the old leader to cut its client off', 5000, () => closed);
    client.disconnect();
    assert.equal(await cluster.leader(), target);
  });

  it('lets an ioredis Sentinel client write on through kill -9 of the leader, losing no acknowledged write', async () => {
    const client = new Redis({ sentinels: sentinels(), name: 'tandem', sentinelRetryStrategy: () => 50 });
    client.on('error', () => undefined);
    const acknowledged = new Map<string, string>();
    let errors = 0;
    const oldLeader = await cluster.leader();
    let killedAt = -1;
    let afterKill = 0;
    for (let i = 0; afterKill < 200; i++) {
      if (i === 200) {
        await cluster.kill(oldLeader);
        killedAt = i;
      }
      try {
        if ((await client.set(`sentinel-${i}`, String(i))) === 'OK') acknowledged.set(`sentinel-${i}`, String(i));
        if (killedAt >= 0) afterKill++;
      } catch {
        errors++;
        assert.ok(errors < 50, 'the client gets going again');
      }
    }
    const newLeader = await cluster.leader(cluster.ids.filter((id) => id !== oldLeader));
    assert.notEqual(newLeader, oldLeader);
    assert.equal((await client.call('ROLE') as string[])[0], 'master', 'the client follows the new leader');
    client.disconnect();
    cluster.start(oldLeader);
    await cluster.converged();
    for (const id of cluster.ids) {
      const direct = new Redis({ port: cluster.respPort(id), host: '127.0.0.1' });
      await direct.call('TANDEM.OPTIONS', 'CONSISTENCY', 'stale');
      const keys = [...acknowledged.keys()];
      const values = await direct.mget(...keys);
      direct.disconnect();
      const lost = keys.filter((key, k) => values[k] !== acknowledged.get(key));
      assert.deepEqual(lost, [], `node ${id} holds every acknowledged write`);
    }
  });

  it('applies each TandemClient increment exactly once across kill -9 of the leader', async () => {
    const client = new TandemClient({ seeds: cluster.respAddresses(), timeoutMs: 15_000 });
    try {
      const oldLeader = await cluster.leader();
      let last = 0n;
      for (let i = 1; i <= 300; i++) {
        // The kill races the increments in flight, so some replies are lost and retried.
        if (i === 100) void cluster.kill(oldLeader);
        if (i === 200) cluster.start(oldLeader);
        const { value } = await client.incrBy('exactly-once', 1);
        assert.equal(value, last + 1n, `increment ${i} answered ${value} after ${last}`);
        last = value;
      }
      assert.equal((await client.get('exactly-once', { consistency: 'linearizable' }))?.toString(), '300');
      const status = await cluster.converged();
      assert.ok(status.every((s) => s.digest === status[0]?.digest));
    } finally {
      client.close();
    }
  });
});
