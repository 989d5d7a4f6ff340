import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { RespErrorReply } from '../src/codec/resp.js';
import { RespConnection } from '../src/net/resp-connection.js';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

/** Sends raw bytes and collects what comes back until the server closes or `until` matches. */
async function raw(port: number, bytes: Buffer | string, until: RegExp | null = null): Promise<{ text: string; closed: boolean }> {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  let text = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(bytes);
  await waitFor('the server to answer', 5000, () => closed || (until !== null && until.test(text)));
  socket.destroy();
  return { text, closed };
}

describe('the Redis protocol on a three-node cluster', () => {
  // A bulk limit of 2 MiB: a 1.5 MiB value is refused by the value limit (1 MiB) with a plain
  // error, a 3 MiB one by the protocol limit, which closes the connection.
  const cluster = new ProcessCluster(['r1', 'r2', 'r3'], ['--resp-bulk-bytes-max', String(2 * 1024 * 1024)]);
  let leader = '';
  let follower = '';
  const clients: Redis[] = [];
  const redisTo = (id: string): Redis => {
    const client = new Redis({ port: cluster.respPort(id), host: '127.0.0.1', maxRetriesPerRequest: 0 });
    clients.push(client);
    return client;
  };

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    leader = await cluster.leader();
    follower = cluster.ids.find((id) => id !== leader) as string;
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await cluster.stopAll();
  });

  it('answers the string commands with Redis reply shapes, on a follower (writes forwarded)', async () => {
    const r = redisTo(follower);
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.echo('hi'), 'hi');
    assert.equal(await r.set('s', 'v1'), 'OK');
    assert.equal(await r.get('s'), 'v1', 'a follower connection reads its own write');
    assert.equal(await r.set('s', 'v2', 'NX'), null, 'NX on an existing key');
    assert.equal(await r.set('s', 'v2', 'XX', 'GET'), 'v1', 'XX GET answers the old value');
    assert.equal(await r.set('absent', 'x', 'XX'), null);
    assert.equal(await r.exists('s', 'absent', 's'), 2);
    assert.equal(await r.mset('m1', 'a', 'm2', 'b'), 'OK');
    assert.deepEqual(await r.mget('m1', 'm2', 'nope'), ['a', 'b', null]);
    assert.equal(await r.incr('n'), 1);
    assert.equal(await r.incrby('n', 41), 42);
    assert.equal(await r.decr('n'), 41);
    assert.equal(await r.decrby('n', 50), -9);
    assert.equal(await r.incrby('big', '9223372036854775807'), 9223372036854775807);
    await assert.rejects(r.incr('big'), /ERR increment or decrement would overflow/);
    await assert.rejects(r.incr('s'), /ERR value is not an integer or out of range/);
    await assert.rejects(r.incrby('n', 'x'), /ERR value is not an integer or out of range/);
    assert.equal(await r.append('ap', 'ab'), 2);
    assert.equal(await r.append('ap', 'cd'), 4);
    assert.equal(await r.strlen('ap'), 4);
    assert.equal(await r.getdel('ap'), 'abcd');
    assert.equal(await r.getdel('ap'), null);
    assert.equal(await r.del('m1', 'm2', 'nope'), 2, 'DEL counts what existed');
    assert.equal(await r.dbsize(), 3);
    assert.deepEqual((await r.keys('*')).sort(), ['big', 'n', 's']);
    assert.deepEqual((await r.keys('?')).sort(), ['n', 's']);
    await assert.rejects(r.set('k', 'v', 'EX', '10'), /expiry/);
    await assert.rejects(r.call('NOSUCH', 'a', 'b'), /ERR unknown command 'nosuch', with args beginning with: 'a' 'b'/);
    await assert.rejects(r.call('GET'), /ERR wrong number of arguments for 'get' command/);
    await assert.rejects(r.select(1), /ERR DB index is out of range/);
    assert.equal(await r.select(0), 'OK');
    assert.equal(await r.client('SETNAME', 'tester'), 'OK');
    assert.equal(await r.client('GETNAME'), 'tester');
    assert.ok(Number(await r.client('ID')) > 0);
    assert.ok(Number(await r.command('COUNT')) >= 30);
    assert.equal(await r.flushall(), 'OK');
    assert.equal(await r.dbsize(), 0);
  });

  it('iterates the keyspace with SCAN, MATCH and COUNT, seeing every key once', async () => {
    const r = redisTo(leader);
    const pairs: string[] = [];
    for (let i = 0; i < 250; i++) pairs.push(`scan:${String(i).padStart(3, '0')}`, String(i));
    await r.mset(...pairs);
    await r.set('other', 'x');
    const seen: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 40);
      seen.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    assert.equal(seen.length, 250);
    assert.equal(new Set(seen).size, 250);
    await assert.rejects(r.scan('12345678'), /ERR invalid cursor/);
  });

  it('describes the topology in ROLE, INFO replication and the Sentinel commands', async () => {
    const onLeader = redisTo(leader);
    const onFollower = redisTo(follower);
    const leaderRole = (await onLeader.call('ROLE')) as [string, number, [string, string, string][]];
    assert.equal(leaderRole[0], 'master');
    assert.equal(leaderRole[2].length, 2);
    const followerRole = (await onFollower.call('ROLE')) as [string, string, number, string, number];
    assert.deepEqual(followerRole.slice(0, 4), ['slave', '127.0.0.1', cluster.respPort(leader), 'connected']);
    const info = (await onLeader.info('replication')) as string;
    assert.match(info, /role:master/);
    assert.match(info, /connected_slaves:2/);
    assert.match(info, new RegExp(`master_repl_offset:${(await cluster.status(leader)).lastIndex}`));
    assert.match((await onFollower.info()) as string, /role:slave[\s\S]*master_link_status:up/);
    for (const client of [onLeader, onFollower]) {
      assert.deepEqual(await client.call('SENTINEL', 'get-master-addr-by-name', 'tandem'), ['127.0.0.1', String(cluster.respPort(leader))]);
      assert.equal(((await client.call('SENTINEL', 'replicas', 'tandem')) as unknown[]).length, 2);
      assert.equal(((await client.call('SENTINEL', 'sentinels', 'tandem')) as unknown[]).length, 2);
    }
    assert.equal(await onFollower.call('SENTINEL', 'get-master-addr-by-name', 'not-this-one'), null);
  });

  it('WAIT counts the followers that durably hold this connection’s last write', async () => {
    const r = redisTo(follower);
    await r.set('wait-key', '1');
    assert.equal(await r.call('WAIT', '2', '5000'), 2);
    const w = redisTo(leader);
    await w.call('TANDEM.OPTIONS', 'ACK', 'leader');
    await w.set('wait-leader', '1');
    assert.ok(Number(await w.call('WAIT', '1', '5000')) >= 1);
  });

  it('keeps the order of a pipeline of 1,000 mixed commands', async () => {
    const r = redisTo(follower);
    const pipeline = r.pipeline();
    for (let i = 0; i < 1000; i++) {
      if (i % 3 === 0) pipeline.set(`p${i % 10}`, String(i));
      else if (i % 3 === 1) pipeline.get(`p${(i - 1) % 10}`);
      else pipeline.incr('p-counter');
    }
    const results = (await pipeline.exec()) as [Error | null, unknown][];
    assert.equal(results.length, 1000);
    for (let i = 0; i < 1000; i++) {
      const [error, value] = results[i] as [Error | null, unknown];
      assert.equal(error, null);
      if (i % 3 === 0) assert.equal(value, 'OK');
      else if (i % 3 === 1) assert.equal(value, String(i - 1), `GET at ${i} sees the SET just before it`);
      else assert.equal(value, (i + 1) / 3);
    }
  });

  it('stores binary keys and values byte for byte', async () => {
    const r = redisTo(follower);
    const key = Buffer.from([0, 1, 2, 0xff, 0x80, 13, 10]);
    const value = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
    assert.equal(await r.set(key, value), 'OK');
    assert.deepEqual(await r.getBuffer(key), value);
  });

  it('refuses values over the limits cleanly, and malformed input on that connection only', async () => {
    const port = cluster.respPort(follower);
    const r = redisTo(follower);
    await assert.rejects(r.set('too-big', Buffer.alloc(1536 * 1024)), /ERR the value is 1572864 bytes; the limit is 1048576/);
    assert.equal(await r.ping(), 'PONG', 'a value over the value limit leaves the connection open');
    const huge = await raw(port, `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${3 * 1024 * 1024}\r\n`);
    assert.equal(huge.text, '-ERR Protocol error: invalid bulk length\r\n');
    assert.ok(huge.closed, 'a bulk string over the protocol limit closes the connection');
    const bad = await raw(port, '*2\r\n$3\r\nGET\r\n!oops\r\n');
    assert.equal(bad.text, "-ERR Protocol error: expected '$', got '!'\r\n");
    assert.ok(bad.closed);
    const countTooLong = await raw(port, `*${'9'.repeat(40)}\r\n`);
    assert.match(countTooLong.text, /^-ERR Protocol error/);
    const inline = await raw(port, 'PING\r\nSET inline "a b"\r\nGET inline\r\n', /a b\r\n$/);
    assert.equal(inline.text, '+PONG\r\n+OK\r\n$3\r\na b\r\n');
    assert.equal(await r.get('inline'), 'a b', 'other connections carry on');
  });

  it('lets node-redis (RESP3) and ioredis connect with default options', async () => {
    const nodeRedis = createClient({ url: `redis://127.0.0.1:${cluster.respPort(follower)}`, RESP: 3 });
    nodeRedis.on('error', () => undefined);
    await nodeRedis.connect();
    try {
      assert.equal(await nodeRedis.set('nr', 'x'), 'OK');
      assert.equal(await nodeRedis.get('nr'), 'x');
      assert.equal(await nodeRedis.get('nr-missing'), null);
      assert.deepEqual(await nodeRedis.mGet(['nr', 'nr-missing']), ['x', null]);
    } finally {
      nodeRedis.destroy();
    }
    const plain = createClient({ url: `redis://127.0.0.1:${cluster.respPort(leader)}` });
    plain.on('error', () => undefined);
    await plain.connect();
    try {
      assert.equal(await plain.get('nr'), 'x');
    } finally {
      plain.destroy();
    }
    const io = new Redis(cluster.respPort(leader), '127.0.0.1');
    clients.push(io);
    assert.equal(await io.get('nr'), 'x');
  });

  it('reads its own writes through a follower connection, 10,000 times under load', async () => {
    const reader = redisTo(follower);
    const load = redisTo(cluster.ids.find((id) => id !== leader && id !== follower) as string);
    let loading = true;
    const loader = (async () => {
      for (let i = 0; loading; i++) await load.set(`load-${i % 100}`, String(i));
    })();
    let stale = 0;
    const rounds = 10_000;
    const inFlight = 100;
    for (let start = 0; start < rounds; start += inFlight) {
      const batch = Array.from({ length: inFlight }, async (_, k) => {
        const i = start + k;
        await reader.set(`ryw-${i % 500}`, String(i));
        if ((await reader.get(`ryw-${i % 500}`)) !== String(i)) stale++;
      });
      await Promise.all(batch);
    }
    loading = false;
    await loader;
    assert.equal(stale, 0);
  });

  it('applies a write once when its reply is lost and it is retried with the same (clientId, seq)', async () => {
    const port = cluster.respPort(follower);
    const first = await RespConnection.open('127.0.0.1', port, 2000);
    // The reply never arrives: the connection is cut right after the request leaves.
    void first.call(['TANDEM.EXEC', 'once-client', '1', 'majority', 'INCR', 'once']).catch(() => undefined);
    first.close();
    const reader = redisTo(leader);
    await waitFor('the first attempt to be applied', 5000, async () => (await reader.get('once')) === '1');
    const retry = await RespConnection.open('127.0.0.1', cluster.respPort(leader), 2000);
    try {
      const answer = (await retry.call(['TANDEM.EXEC', 'once-client', '1', 'majority', 'INCR', 'once'])) as [bigint, bigint];
      assert.equal(answer[1], 1n, 'the retry gets the original reply');
      assert.equal(await reader.get('once'), '1', 'and is not applied again');
      const next = (await retry.call(['TANDEM.EXEC', 'once-client', '2', 'majority', 'INCR', 'once'])) as [bigint, bigint];
      assert.equal(next[1], 2n);
      const old = (await retry.call(['TANDEM.EXEC', 'once-client', '1', 'majority', 'INCR', 'once'])) as [bigint, unknown];
      assert.ok(old[1] instanceof RespErrorReply && old[1].code === 'STALE_REQUEST', 'an older seq than the latest is refused');
      assert.equal(await reader.get('once'), '2');
    } finally {
      retry.close();
    }
  });
});

describe('a cluster with a password and read-only followers', () => {
  const cluster = new ProcessCluster(['a1', 'a2', 'a3'], ['--follower-writes', 'reject'], { ...process.env, TANDEM_PASSWORD: 's3cret' }, { token: 's3cret', ca: null });

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  it('asks for AUTH, refuses a wrong password, and answers READONLY for a write on a follower', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    const anonymous = await raw(cluster.respPort(follower), 'GET x\r\n', /\r\n$/);
    assert.equal(anonymous.text, '-NOAUTH Authentication required.\r\n');
    const wrong = await raw(cluster.respPort(follower), 'AUTH nope\r\n', /\r\n$/);
    assert.equal(wrong.text, '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    const r = new Redis({ port: cluster.respPort(follower), host: '127.0.0.1', password: 's3cret', maxRetriesPerRequest: 0 });
    try {
      await assert.rejects(r.set('x', '1'), /READONLY You can't write against a read only replica/);
      const w = new Redis({ port: cluster.respPort(leader), host: '127.0.0.1', password: 's3cret' });
      assert.equal(await w.set('x', '1'), 'OK');
      w.disconnect();
      await r.call('TANDEM.OPTIONS', 'CONSISTENCY', 'linearizable');
      assert.equal(await r.get('x'), '1', 'a follower still serves reads');
    } finally {
      r.disconnect();
    }
  });
});
