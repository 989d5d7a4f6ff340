import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { recordsEnd } from './support/log-files.js';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

/** Real `tandem start` processes on loopback: durable logs, TCP replication, the HTTP API. */
describe('a three-node cluster of real processes', () => {
  const cluster = new ProcessCluster(['n1', 'n2', 'n3'], ['--snapshot-every', '200']);
  const acknowledged = new Map<string, string>();

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  it('takes writes at every ack level, through any node', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    for (const [k, ack] of ['leader', 'majority', 'all', '2'].entries()) {
      const response = await cluster.put(k % 2 === 0 ? leader : follower, `ack-${ack}`, `value-${ack}`, ack);
      assert.equal(response.status, 200, await response.clone().text());
      const body = (await response.json()) as { index: number; term: number };
      assert.ok(body.index > 0 && body.term > 0);
      acknowledged.set(`ack-${ack}`, `value-${ack}`);
    }
    const refused = await cluster.put(leader, 'x', 'y', '4');
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /ACK_UNSATISFIABLE/);
  });

  it('serves reads at every consistency on the leader and on followers', async () => {
    const write = await cluster.put(await cluster.leader(), 'read-me', 'v1', 'majority');
    const { index } = (await write.json()) as { index: number };
    acknowledged.set('read-me', 'v1');
    for (const id of cluster.ids) {
      for (const consistency of ['linearizable', `after:${index}`, 'bounded:2000']) {
        const response = await cluster.get(id, 'read-me', consistency);
        assert.equal(response.status, 200, `${id} ${consistency}: ${await response.clone().text()}`);
        assert.equal(await response.text(), 'v1');
        assert.ok(Number(response.headers.get('x-tandem-applied-index')) >= index);
      }
      const session = await cluster.get(id, 'read-me', 'session', { 'x-tandem-session-index': String(index) });
      assert.equal(await session.text(), 'v1');
      const stale = await cluster.get(id, 'read-me', 'stale');
      assert.equal(await stale.text(), 'v1', 'after the reads above, even a stale read sees it');
      const missing = await cluster.get(id, 'no-such-key', 'linearizable');
      assert.equal(missing.status, 404);
    }
  });

  it('reports status with per-follower lag, and Prometheus metrics', async () => {
    const leader = await cluster.leader();
    const status = (await (await fetch(`${cluster.http(leader)}/v1/status`)).json()) as {
      pid: number;
      followers: { id: string; lagEntries: number; lagMs: number; lastContactMs: number | null }[];
      memory: { rssBytes: number; heapUsedBytes: number; heapReserveBytes: number; externalBytes: number; logPayloadBytes: number };
    };
    assert.ok(status.pid > 0);
    const { memory } = status;
    assert.equal(memory.heapReserveBytes, 64 * 1024 * 1024, 'the default heap reserve');
    assert.ok(memory.heapUsedBytes > memory.heapReserveBytes, `the reserve is on the heap: ${JSON.stringify(memory)}`);
    assert.ok(memory.rssBytes > memory.heapUsedBytes && memory.heapUsedBytes > 0 && memory.externalBytes > 0, `memory: ${JSON.stringify(memory)}`);
    assert.ok(memory.logPayloadBytes >= 0 && memory.logPayloadBytes <= 32 * 1024 * 1024, `the log's payload in memory, within the default cache: ${memory.logPayloadBytes}`);
    assert.equal(status.followers.length, 2);
    for (const f of status.followers) assert.ok(f.lagEntries >= 0 && f.lagMs >= 0 && f.lastContactMs !== null);
    const metrics = await (await fetch(`${cluster.http(leader)}/metrics`)).text();
    for (const name of ['tandem_writes_total', 'tandem_log_entries_read_from_disk_total', 'tandem_log_bytes_read_from_disk_total', 'tandem_write_latency_seconds_bucket', 'tandem_fsync_seconds_bucket', 'tandem_elections_total', 'tandem_leader_changes_total', 'tandem_peer_bytes_sent', 'tandem_follower_lag_entries', 'tandem_truncated_entries_total', 'tandem_event_loop_delay_seconds{quantile="0.99"}']) {
      assert.ok(metrics.includes(name), `/metrics lacks ${name}`);
    }
    const loopLate = /tandem_event_loop_delay_seconds\{quantile="0\.99"\} (\S+)/.exec(metrics)?.[1];
    assert.ok(Number(loopLate) >= 0 && Number(loopLate) < 5, `event-loop delay p99 of ${loopLate} s`);
  });

  it('switches over to a named follower: it leads, and no acknowledged write is lost', async () => {
    const leader = await cluster.leader();
    const target = cluster.ids.find((id) => id !== leader) as string;
    const before = await cluster.put(leader, 'before-switchover', 'kept', 'majority');
    assert.equal(before.status, 200);
    acknowledged.set('before-switchover', 'kept');
    // Asked of a follower, the request is forwarded to the leader.
    const response = await fetch(`${cluster.http(target)}/v1/switchover?to=${target}`, { method: 'POST' });
    const body = (await response.json()) as { from: string; to: string; pauseMs: number };
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.from, leader);
    assert.equal(body.to, target);
    assert.ok(Number.isFinite(body.pauseMs));
    console.log(`# switchover ${leader} -> ${target}: writes paused ${body.pauseMs} ms`);
    assert.equal(await cluster.leader(), target);
    const after = await cluster.put(leader, 'after-switchover', 'new', 'majority');
    assert.equal(after.status, 200, await after.clone().text());
    acknowledged.set('after-switchover', 'new');
    assert.equal(await (await cluster.get(target, 'before-switchover')).text(), 'kept');
  });

  it('answers bad requests with a 4xx that names the problem and changes nothing', async () => {
    const leader = await cluster.leader();
    const before = await cluster.status(leader);
    const badAck = await cluster.put(leader, 'k', 'v', 'most');
    assert.equal(badAck.status, 400);
    assert.match(await badAck.text(), /ack must be/);
    const badConsistency = await cluster.get(leader, 'k', 'eventually');
    assert.equal(badConsistency.status, 400);
    const tooBig = await fetch(`${cluster.http(leader)}/v1/kv/big`, { method: 'PUT', body: Buffer.alloc(1024 * 1024 + 1) });
    assert.equal(tooBig.status, 413);
    const unknown = await fetch(`${cluster.http(leader)}/v2/nothing`);
    assert.equal(unknown.status, 404);
    const method = await fetch(`${cluster.http(leader)}/v1/kv/k`, { method: 'POST' });
    assert.equal(method.status, 405);
    // A client that goes away part-way through a PUT's body: nothing is written, the node carries on.
    const port = Number(new URL(cluster.http(leader)).port);
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection(port, '127.0.0.1', () => {
        socket.write('PUT /v1/kv/cut-short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789', () => socket.end());
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
    assert.equal((await cluster.get(leader, 'cut-short')).status, 404, 'a body cut short is not written');
    const after = await cluster.status(leader);
    assert.equal(after.lastIndex, before.lastIndex, 'no bad request reached the log');
  });

  it('survives kill -9 of the leader under majority writes: a new leader takes writes, nothing acknowledged is lost', async () => {
    const oldLeader = await cluster.leader();
    let stop = false;
    let failedAttempts = 0;
    const writer = async (w: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const key = `w${w}-${n}`;
        // Each attempt goes to the next node: a dead one is skipped on the retry.
        for (let attempt = w + n; ; attempt++) {
          const target = cluster.ids[attempt % cluster.ids.length] as string;
          try {
            const response = await cluster.put(target, key, `${w}:${n}`, 'majority');
            if (response.status === 200) {
              acknowledged.set(key, `${w}:${n}`);
              break;
            }
            await response.text();
          } catch {
            // the node died mid-request: the write's fate is unknown, and it is not counted
          }
          failedAttempts++;
          if (stop) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const writers = [0, 1, 2, 3, 4].map(writer);
    try {
      await waitFor('25 acknowledged writes', 10_000, () => acknowledged.size >= 25);
      const killedAt = performance.now();
      await cluster.kill(oldLeader, 'SIGKILL');
      const survivors = cluster.ids.filter((id) => id !== oldLeader);
      const newLeader = await cluster.leader(survivors);
      assert.notEqual(newLeader, oldLeader);
      const countAtKill = acknowledged.size;
      await waitFor('writes acknowledged by the new leader', 10_000, () => acknowledged.size >= countAtKill + 20);
      console.log(`# new leader ${newLeader} took writes ${Math.round(performance.now() - killedAt)} ms after kill -9 of ${oldLeader}`);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    cluster.start(oldLeader);
    const statuses = await cluster.converged();
    assert.ok(statuses.every((s) => s.appliedIndex > 0));
    for (const id of cluster.ids) {
      for (const [key, value] of acknowledged) {
        const response = await cluster.get(id, key, 'stale');
        assert.equal(response.status, 200, `${key} missing on ${id}`);
        assert.equal(await response.text(), value, `${key} on ${id}`);
      }
    }
    console.log(`# ${acknowledged.size} acknowledged writes present on all three nodes (${failedAttempts} attempts failed and were retried)`);
  });

  it('a follower restarted after 10,000 writes catches up, by a snapshot streamed in chunks', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    await cluster.kill(follower, 'SIGKILL');
    const inFlight: Promise<void>[] = [];
    let written = 0;
    // Writes that reach the leader in one turn share an entry: count the entries by index.
    const indexes = new Set<number>();
    const payload = 'b'.repeat(200);
    for (let n = 0; n < 10_000; n++) {
      inFlight.push(
        cluster.put(leader, `bulk-${n}`, `${n}:${payload}`, 'majority').then(async (r) => {
          const body = await r.text();
          assert.equal(r.status, 200, body);
          indexes.add((JSON.parse(body) as { index: number }).index);
          written++;
        }),
      );
      if (inFlight.length >= 50) await Promise.all(inFlight.splice(0));
    }
    await Promise.all(inFlight);
    assert.equal(written, 10_000);
    const lagging = (await cluster.status(leader)).followers.find((f) => f.id === follower);
    assert.ok(lagging !== undefined && lagging.lagEntries >= indexes.size, `the leader counts the ${indexes.size} entries the stopped follower lacks (${lagging?.lagEntries})`);
    console.log(`# 10,000 writes from 50 concurrent clients took ${indexes.size} log entries`);
    assert.ok(lagging.lagMs >= 200, `and their age in ms (${lagging.lagMs})`);
    // The bytes of compacted entries are estimated from the entries the leader still holds, and
    // entries now hold different numbers of writes: the figure is near the 2.3 MB written, not exact.
    assert.ok(lagging.lagBytes >= 10_000 * 100 && lagging.lagBytes <= 10_000 * 1000, `and their size in bytes (${lagging.lagBytes})`);
    cluster.start(follower);
    await cluster.converged(60_000);
    const output = cluster.output.get(follower) ?? '';
    assert.match(output, /snapshot installed.*"restoredFrom":"file"/, 'the compacted range came as a snapshot, staged in a file and restored from it');
    assert.match(output, /"event":"receiving snapshot".*"percent":100/, 'the snapshot came in chunks, with progress');
    assert.match(cluster.output.get(leader) ?? '', /"event":"sending snapshot".*"percent":100/, 'the sender shows its progress too');
    const response = await cluster.get(follower, 'bulk-9999', 'stale');
    assert.equal(await response.text(), `9999:${payload}`);
  });

  it('repairs a torn last record at start', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    // Records in the follower's newest segment, whatever the tests before left (a snapshot
    // install leaves a fresh, empty segment).
    for (let i = 0; i < 5; i++) assert.equal((await cluster.put(leader, `torn-${i}`, 'x', 'all')).status, 200);
    await cluster.kill(follower, 'SIGKILL');
    const logDir = join(cluster.dir(follower), 'log');
    const last = readdirSync(logDir).sort().pop() as string;
    const path = join(logDir, last);
    const end = recordsEnd(path);
    assert.ok(end > 10, 'the segment has records');
    truncateSync(path, end - 7);
    cluster.start(follower);
    try {
      await waitFor('the torn tail to be reported', 10_000, () => /torn tail cut/.test(cluster.output.get(follower) ?? ''));
      await cluster.converged();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${follower} said:\n${(cluster.output.get(follower) ?? '').slice(-3000)}`);
    }
  });

  it('refuses to start on a flipped byte in the middle of the log, naming the file and offset', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    for (let i = 0; i < 20; i++) assert.equal((await cluster.put(leader, `flip-${i}`, 'twenty bytes of value', 'all')).status, 200);
    await cluster.kill(follower, 'SIGTERM');
    const logDir = join(cluster.dir(follower), 'log');
    const path = join(logDir, readdirSync(logDir).sort()[0] as string);
    const bytes = readFileSync(path);
    const end = recordsEnd(path);
    assert.ok(end > 200);
    const at = Math.floor(end / 3);
    bytes[at] = (bytes[at] as number) ^ 0x10;
    writeFileSync(path, bytes);
    const result = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli', 'main.js'), 'start', '--id', follower, '--dir', cluster.dir(follower), '--peers', 'n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3', '--http-port', '1'], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /CORRUPT/);
    assert.ok(result.stderr.includes(path), result.stderr);
    assert.match(result.stderr, /offset \d+/);
  });
});

/** A leader that keeps no applied entries in memory: a follower behind is fed from the log on disk. */
describe('a follower behind the entries the leader keeps in memory', () => {
  const cluster = new ProcessCluster(['m1', 'm2', 'm3'], ['--log-cache-mb', '0', '--snapshot-every', '100000000', '--snapshot-every-mb', '1000000']);

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(() => cluster.stopAll());

  it('is sent entries read back from the leader\'s log on disk, and catches up with equal digests', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    await cluster.kill(follower, 'SIGKILL');
    const before = (await cluster.status(leader)).lastIndex;
    const payload = 'c'.repeat(300);
    for (let start = 0; start < 2000; start += 50) {
      const batch = Array.from({ length: 50 }, (_, k) => cluster.put(leader, `cold-${start + k}`, `${start + k}:${payload}`, 'majority'));
      for (const response of await Promise.all(batch)) assert.equal(response.status, 200, await response.text());
    }
    cluster.start(follower);
    await cluster.converged(60_000);
    let read = 0;
    for (const id of cluster.ids) {
      const metrics = await (await cluster.request(id, 'GET', '/metrics')).text();
      read += Number(/^tandem_log_entries_read_from_disk_total\{for="follower"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    }
    const missed = (await cluster.status(leader)).lastIndex - before;
    console.log(`# the follower missed ${missed} entries; ${read} entries were read from disk for it`);
    assert.ok(missed > 0 && read >= missed, `every entry the follower missed was read from disk (${read} read, ${missed} missed)`);
    assert.doesNotMatch(cluster.output.get(follower) ?? '', /snapshot installed/, 'no snapshot: the log was kept');
    const response = await cluster.get(follower, 'cold-1999', 'stale');
    assert.equal(await response.text(), `1999:${payload}`);
  });

  it('a restarted node keeps in memory only the entries its state machine has not applied', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    const { lastIndex } = await cluster.status(follower);
    await cluster.kill(follower, 'SIGTERM');
    cluster.output.set(follower, '');
    cluster.start(follower);
    await cluster.converged(30_000);
    const line = (cluster.output.get(follower) ?? '').split('\n').find((l) => l.includes('"event":"recovered"'));
    const recovered = JSON.parse(line ?? '{}') as { entries?: number; entriesInMemory?: number; applied?: number };
    console.log(`# recovered: ${line}`);
    assert.ok((recovered.entries ?? 0) >= lastIndex, `the whole log was read and checked (${recovered.entries} entries, log at ${lastIndex})`);
    assert.ok((recovered.entriesInMemory ?? Infinity) < 50, `only the unapplied tail stayed in memory (${recovered.entriesInMemory})`);
    const response = await cluster.get(follower, 'cold-0', 'stale');
    assert.equal(await response.text(), `0:${'c'.repeat(300)}`);
  });
});
