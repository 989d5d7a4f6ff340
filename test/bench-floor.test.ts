import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeRespCommand } from '../src/codec/resp.js';
import { waitFor } from '../src/bench/cluster.js';
import { startFloor, type Floor } from '../src/bench/floor.js';
import { send } from '../src/bench/http-loop.js';
import { RespConnection } from '../src/net/resp-connection.js';

/** Each log's size in bytes, by file name. */
function logSizes(dir: string): Map<string, number> {
  return new Map(readdirSync(dir).map((name) => [name, statSync(join(dir, name)).size]));
}

describe('the floor that bench:cpu and bench:redis measure Tandem against', () => {
  let floor: Floor;
  before(async () => {
    floor = await startFloor();
  });
  after(() => floor.stop());

  it('answers SETs, one and pipelined, once the leader has logged them; all three logs end up holding them', async () => {
    const connection = await RespConnection.open('127.0.0.1', floor.respPort, 2000);
    try {
      const commands = Array.from({ length: 21 }, (_, k) => ['SET', `floor:${k}`, `value ${k}`]);
      assert.equal(await connection.call(commands[0] as string[]), 'OK');
      const replies = await Promise.all(commands.slice(1).map((command) => connection.call(command)));
      assert.deepEqual(replies, Array.from({ length: 20 }, () => 'OK'));
      assert.equal(await floor.answered(), 21);
      const bytes = commands.reduce((sum, command) => sum + encodeRespCommand(command).length, 0);
      // Every SET answered means every one of the leader's appends is done. Which follower acked
      // each entry may differ, so no follower's log need be whole yet (that an ack is awaited at
      // all is the next test's).
      const leaderLog = [...logSizes(floor.dir)].find(([name]) => name.startsWith('floor-leader-'));
      assert.equal(leaderLog?.[1], bytes, 'the leader has logged every answered SET');
      await waitFor('every floor log to hold the 21 SETs', 10_000, () => [...logSizes(floor.dir).values()].every((size) => size === bytes));
      assert.equal(logSizes(floor.dir).size, 3);
    } finally {
      connection.close();
    }
  });

  it('does not answer a SET that only the leader has logged: it waits for a follower', async () => {
    const followers = floor.processes.slice(0, 2);
    const leaderLog = join(floor.dir, [...logSizes(floor.dir).keys()].find((name) => name.startsWith('floor-leader-')) as string);
    const connection = await RespConnection.open('127.0.0.1', floor.respPort, 2000);
    for (const follower of followers) follower.kill('SIGSTOP');
    try {
      const loggedBefore = statSync(leaderLog).size;
      const command = ['SET', 'held', 'until a follower acknowledges'];
      let reply: unknown = null;
      const answered = connection.call(command).then((value) => (reply = value));
      await waitFor('the leader to log the SET', 10_000, () => statSync(leaderLog).size === loggedBefore + encodeRespCommand(command).length);
      // Two round trips through the leader's event loop after its write: its completion has run.
      await floor.answered();
      await floor.answered();
      assert.equal(reply, null, 'no answer while both followers are stopped');
      (followers[0] as ChildProcess).kill('SIGCONT');
      assert.equal(await answered, 'OK');
    } finally {
      for (const follower of followers) follower.kill('SIGCONT');
      connection.close();
    }
  });

  it('closes a connection that sends anything but SET key value, without answering it, and goes on serving the others', async () => {
    for (const bytes of ['*2\r\n$3\r\nGET\r\n$1\r\nx\r\n', 'PING\r\n']) {
      const socket = connect(floor.respPort, '127.0.0.1');
      let answered = '';
      socket.on('data', (chunk: Buffer) => (answered += chunk.toString()));
      const closed = new Promise<boolean>((resolve) => socket.on('close', () => resolve(true)));
      socket.write(bytes);
      const deadline = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref());
      assert.equal(await Promise.race([closed, deadline]), true, `the connection that sent ${JSON.stringify(bytes)} is closed`);
      assert.equal(answered, '', `no answer to ${JSON.stringify(bytes)}`);
      socket.destroy();
    }
    const good = await RespConnection.open('127.0.0.1', floor.respPort, 2000);
    try {
      assert.equal(await good.call(['set', 'after', 'bad']), 'OK');
    } finally {
      good.close();
    }
  });

  it('takes PUT /v1/kv/<key> over HTTP as a SET of the same log, and answers anything else 400 and an oversized value 413', async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      const leaderLog = join(floor.dir, [...logSizes(floor.dir).keys()].find((name) => name.startsWith('floor-leader-')) as string);
      const before = statSync(leaderLog).size;
      const counted = await floor.answered();
      assert.equal(await send(agent, floor.httpPort, 'PUT', '/v1/kv/over%20http?ack=majority', Buffer.from('a value')), 200);
      assert.equal(statSync(leaderLog).size - before, encodeRespCommand(['SET', 'over http', 'a value']).length);
      assert.equal(await floor.answered(), counted + 1);
      assert.equal(await send(agent, floor.httpPort, 'GET', '/v1/kv/over%20http', Buffer.alloc(0)), 400);
      assert.equal(await send(agent, floor.httpPort, 'PUT', '/v1/kv/', Buffer.from('no key')), 400);
      assert.equal(await send(agent, floor.httpPort, 'PUT', '/v1/kv/big', Buffer.alloc(1024 * 1024 + 1)), 413);
      assert.equal(statSync(leaderLog).size - before, encodeRespCommand(['SET', 'over http', 'a value']).length, 'nothing refused was logged');
    } finally {
      agent.destroy();
    }
  });

  it('refuses to count for a leader that exited, instead of waiting for ever', async () => {
    const other = await startFloor();
    try {
      assert.equal(await other.answered(), 0);
      const leader = other.processes[other.processes.length - 1] as ChildProcess;
      const gone = new Promise((resolve) => leader.once('exit', resolve));
      leader.kill('SIGKILL');
      await gone;
      const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref());
      await assert.rejects(Promise.race([other.answered(), deadline]), /the floor's leader exited/);
    } finally {
      other.stop();
    }
  });

  it('is stopped and removed when the benchmark that started it is stopped by a signal', async () => {
    // A benchmark in miniature: starts a floor, says what it started, and waits to be stopped.
    const floorModule = new URL('../src/bench/floor.js', import.meta.url).href;
    const bench = spawn(process.execPath, ['--input-type=module', '-e', `const f = await (await import(${JSON.stringify(floorModule)})).startFloor(); console.log(JSON.stringify({ pids: f.processes.map((p) => p.pid), dir: f.dir })); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => bench.once('exit', (_code, signal) => resolve(signal)));
    let started: { pids: number[]; dir: string } | null = null;
    let out = '';
    bench.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) started ??= JSON.parse(out.split('\n')[0] as string);
    });
    await waitFor('the floor started by the benchmark', 20_000, () => started !== null);
    const { pids, dir } = started as unknown as { pids: number[]; dir: string };
    assert.equal(pids.length, 3);
    /** Whether `pid` is still a live process (a zombie left for init to reap is not). */
    const running = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    try {
      assert.ok(pids.every(running) && existsSync(dir), 'the floor runs');
      bench.kill('SIGTERM');
      assert.equal(await exited, 'SIGTERM', 'the benchmark dies of the signal');
      await waitFor("the floor's processes to stop", 10_000, () => !pids.some(running));
      assert.ok(!existsSync(dir), `its directory ${dir} is removed`);
    } finally {
      // Should this fail, no process of it is left holding the test runner's output open.
      for (const pid of pids.filter(running)) process.kill(pid, 'SIGKILL');
      bench.kill('SIGKILL');
    }
  });
});
