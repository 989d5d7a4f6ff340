import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ProcessCluster } from './support/process-cluster.js';

/**
 * When the state store (LMDB) commits more slowly than the node applies, new writes wait for it
 * instead of leaving ever more uncommitted writes in memory (`--store-backlog-mb`).
 */
describe('the state store backlog bound', () => {
  const limitMiB = Number(process.env.TANDEM_TEST_BACKLOG_MB ?? 1);
  const cluster = new ProcessCluster(['b1', 'b2', 'b3'], ['--store-backlog-mb', String(limitMiB)]);

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  it('holds writes back while more than the bound is uncommitted, and every write still lands', { timeout: 60_000 }, async () => {
    const leader = await cluster.leader();
    const clients = [0, 1, 2, 3].map(() => new Redis({ port: cluster.respPort(leader), lazyConnect: true, maxRetriesPerRequest: 0 }));
    const value = Buffer.alloc(4096, 7);
    try {
      // Four connections, each with 32 SETs of 4 KiB in flight at a time: 512 KiB in flight at most.
      await Promise.all(
        clients.map(async (client, c) => {
          for (let batch = 0; batch < 100; batch++) {
            const pipeline = client.pipeline();
            for (let k = 0; k < 32; k++) pipeline.set(`c${c}-${batch}-${k}`, value);
            const results = await pipeline.exec();
            assert.ok(results !== null && results.every(([error, reply]) => error === null && reply === 'OK'), `batch ${batch} of connection ${c}`);
          }
        }),
      );
      const { storeBacklog } = await cluster.status(leader);
      console.log(`# leader's store backlog: ${JSON.stringify(storeBacklog)}`);
      assert.equal(storeBacklog.limit, limitMiB * 1024 * 1024);
      assert.ok(storeBacklog.writesHeld > 0, 'some writes waited for the store');
      // The bound, plus what was admitted before the applied writes reached it (the 512 KiB in
      // flight) and the encoding's overhead. Unbounded, groups are handed over at 8 MiB and the
      // next one fills while the writer commits.
      assert.ok(storeBacklog.bytesMax <= limitMiB * 1024 * 1024 + 2 * 1024 * 1024, `at most the bound and what was in flight: ${storeBacklog.bytesMax}`);
      // Followers hold committed entries in the log while their store is over the bound, so
      // their backlog is bounded too: by the bound and one turn's entries (the leader sends at most
      // 2 MiB in flight to each) or one read of held entries back from disk (4 MiB).
      for (const id of cluster.ids.filter((id) => id !== leader)) {
        const { storeBacklog: theirs, memory } = await cluster.status(id);
        console.log(`# follower ${id}'s store backlog: ${JSON.stringify(theirs)}, memory ${JSON.stringify(memory)}`);
        assert.ok(theirs.bytesMax <= limitMiB * 1024 * 1024 + 6 * 1024 * 1024, `follower ${id}: at most the bound and one batch: ${theirs.bytesMax}`);
      }
      const follower = cluster.ids.find((id) => id !== leader) as string;
      const reader = new Redis({ port: cluster.respPort(follower), lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        assert.equal((await reader.getBuffer('c3-99-31'))?.length, 4096, 'the last write of a connection reads back on a follower');
        assert.equal(await reader.dbsize(), 4 * 100 * 32);
      } finally {
        reader.disconnect();
      }
    } finally {
      for (const client of clients) client.disconnect();
    }
  });
});
