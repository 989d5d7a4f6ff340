import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ack, Message } from '../src/core/types.js';
import { Engine, type EngineObserver, type EngineOptions, type WriteResult } from '../src/engine/engine.js';
import type { Runtime, Storage } from '../src/engine/interfaces.js';
import { batchBytesMax, commandsOfEntry, encodeCommand, encodeCommandBatch, type Operation } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore } from '../src/kv/store.js';
import { ErrorCode, TandemError } from '../src/shared/errors.js';
import { Prng } from '../src/shared/prng.js';
import { Scheduler } from '../src/sim/scheduler.js';
import { SimDisk } from '../src/sim/disk.js';
import { simTransport } from '../src/sim/node.js';

/** An engine over the simulator's disk and clock; one voter leads itself once started. */
function engineOf(voters: readonly string[], options: Partial<EngineOptions> = {}, observer: EngineObserver = {}): { engine: Engine; scheduler: Scheduler } {
  const scheduler = new Scheduler();
  const disk = new SimDisk(new Prng(1), { minMs: 0.1, maxMs: 0.1, slowChance: 0, slowMs: 0 }, (ms, fn) => scheduler.after(ms, fn));
  const runtime: Runtime = {
    now: () => scheduler.now,
    defer: (fn) => scheduler.after(0, fn),
    setTimeout: (fn, ms) => {
      let cancelled = false;
      scheduler.after(ms, () => (cancelled ? undefined : fn()));
      return () => {
        cancelled = true;
      };
    },
  };
  const engine = new Engine(
    {
      raft: { id: voters[0] as string, prng: new Prng(2), electionTimeoutTicks: 3, heartbeatTicks: 1, tickMs: 10, priority: 1 },
      bootstrap: { voters, learners: [] },
      tickMs: 10,
      requestTimeoutMs: 1000,
      snapshotEveryEntries: 100_000,
      snapshotKeepEntries: 0,
      ...options,
    },
    disk.recover(),
    new KvStateMachine(new MemoryStore()),
    disk,
    simTransport(() => undefined),
    runtime,
    observer,
  );
  return { engine, scheduler };
}

function leaderOfItself(options: Partial<EngineOptions> = {}, observer: EngineObserver = {}): { engine: Engine; scheduler: Scheduler } {
  const cluster = engineOf(['n1'], options, observer);
  cluster.engine.start();
  cluster.scheduler.run(500, () => cluster.engine.raft.role === 'leader' && cluster.engine.kv.appliedIndex === cluster.engine.raft.lastIndex);
  assert.equal(cluster.engine.raft.role, 'leader');
  return cluster;
}

const command = (operation: Operation): Uint8Array => encodeCommand({ clientId: '', seq: 0, operation });

/** Writes every operation in the same turn; runs the clock until all are answered. */
function writeInOneTurn(cluster: { engine: Engine; scheduler: Scheduler }, writes: readonly { operation: Operation; ack?: Ack; needsResult?: boolean }[]): WriteResult[] {
  const results: WriteResult[] = [];
  for (const [k, w] of writes.entries()) cluster.engine.write(command(w.operation), w.ack ?? 'majority', w.needsResult ?? true, (result) => (results[k] = result));
  cluster.scheduler.run(cluster.scheduler.now + 500, () => results.filter((r) => r !== undefined).length === writes.length);
  assert.equal(results.filter((r) => r !== undefined).length, writes.length, 'every write is answered');
  return results;
}

function ok(result: WriteResult | undefined): { index: number; reply: unknown } {
  assert.ok(result?.ok, `the write failed: ${result?.ok === false ? result.error.message : 'no answer'}`);
  return result;
}

describe('the engine gathers the writes of one turn into one entry', () => {
  it('writes of one turn share an index, each answered with its own reply, in order', () => {
    const cluster = leaderOfItself();
    const before = cluster.engine.raft.lastIndex;
    const results = writeInOneTurn(cluster, [
      { operation: { op: 'incrBy', key: 'n', delta: 1n } },
      { operation: { op: 'incrBy', key: 'n', delta: 1n } },
      { operation: { op: 'put', key: 'k', value: Buffer.from('v') }, needsResult: false },
      { operation: { op: 'incrBy', key: 'n', delta: 5n } },
    ]).map(ok);
    assert.deepEqual(
      results.map((r) => r.index),
      [before + 1, before + 1, before + 1, before + 1],
    );
    assert.deepEqual(
      [0, 1, 3].map((k) => results[k]?.reply),
      [{ kind: 'integer', value: 1n }, { kind: 'integer', value: 2n }, { kind: 'integer', value: 7n }],
    );
    assert.equal(cluster.engine.raft.lastIndex, before + 1, 'one entry');
    assert.equal(Buffer.from(cluster.engine.kv.get('k') as Uint8Array).toString(), 'v');
    // A write in a later turn takes the next entry.
    const [later] = writeInOneTurn(cluster, [{ operation: { op: 'incrBy', key: 'n', delta: 1n } }]).map(ok);
    assert.equal(later?.index, before + 2);
    assert.deepEqual(later?.reply, { kind: 'integer', value: 8n });
  });

  it('writes with different ack levels, and more bytes than one entry takes, go into separate entries', () => {
    const cluster = leaderOfItself();
    const before = cluster.engine.raft.lastIndex;
    const acks = writeInOneTurn(cluster, [
      { operation: { op: 'put', key: 'a', value: Buffer.from('1') }, ack: 'majority' },
      { operation: { op: 'put', key: 'b', value: Buffer.from('2') }, ack: 'majority' },
      { operation: { op: 'put', key: 'c', value: Buffer.from('3') }, ack: 'leader' },
      { operation: { op: 'put', key: 'd', value: Buffer.from('4') }, ack: 'majority' },
    ]).map(ok);
    assert.deepEqual(
      acks.map((r) => r.index),
      [before + 1, before + 1, before + 2, before + 3],
    );
    const big = Buffer.alloc(Math.floor(batchBytesMax / 3), 7);
    const sized = writeInOneTurn(
      cluster,
      Array.from({ length: 6 }, (_, k) => ({ operation: { op: 'put', key: `big${k}`, value: big } as Operation })),
    ).map(ok);
    const entries = new Set(sized.map((r) => r.index));
    assert.ok(entries.size >= 3, `six values of a third of the limit took ${entries.size} entries`);
    for (const index of entries) {
      const entry = cluster.engine.raft.log.slice(index, index, 1)[0];
      assert.ok(entry !== undefined && entry.data.length <= batchBytesMax, `entry ${index} holds ${entry?.data.length} bytes`);
    }
  });

  it('a node that is not the leader refuses every write of the turn', () => {
    const { engine, scheduler } = engineOf(['n1', 'n2', 'n3']);
    const results: WriteResult[] = [];
    for (let k = 0; k < 3; k++) engine.write(command({ op: 'put', key: `k${k}`, value: Buffer.from('v') }), 'majority', false, (r) => results.push(r));
    scheduler.run(1);
    assert.equal(results.length, 3);
    for (const r of results) assert.ok(!r.ok && r.error instanceof TandemError && r.error.code === ErrorCode.notLeader);
  });
});

describe('writes proposed with their decoded commands', () => {
  it('are applied from those commands, unless one is over 1 KiB or comes as bytes alone', () => {
    const cluster = leaderOfItself();
    // The commands given differ from the bytes on purpose, to show which each apply used.
    const propose = (writes: readonly { key: string; bytes: number; given: boolean }[]): void => {
      let answered = 0;
      for (const w of writes) {
        const data = command({ op: 'put', key: w.key, value: Buffer.alloc(w.bytes, 'b') });
        const decoded = w.given ? { clientId: '', seq: 0, operation: { op: 'put' as const, key: w.key, value: Buffer.from('given') } } : null;
        cluster.engine.write(data, 'majority', false, () => answered++, decoded);
      }
      cluster.scheduler.run(cluster.scheduler.now + 500, () => answered === writes.length && cluster.engine.kv.appliedIndex === cluster.engine.raft.lastIndex);
      assert.equal(answered, writes.length);
    };
    const value = (key: string): string => Buffer.from(cluster.engine.kv.get(key) as Uint8Array).toString();
    propose([{ key: 'a', bytes: 10, given: true }, { key: 'b', bytes: 10, given: true }]);
    assert.deepEqual([value('a'), value('b')], ['given', 'given'], 'an entry whose every command came decoded is applied from them');
    propose([{ key: 'c', bytes: 10, given: true }, { key: 'd', bytes: 10, given: false }]);
    assert.deepEqual([value('c'), value('d')], ['b'.repeat(10), 'b'.repeat(10)], 'one command as bytes alone: the entry is decoded');
    propose([{ key: 'e', bytes: 10, given: true }, { key: 'f', bytes: 2000, given: true }]);
    assert.deepEqual([value('e'), value('f')], ['b'.repeat(10), 'b'.repeat(2000)], 'a command over 1 KiB: the entry is decoded (its values stay views of its bytes)');
  });
});

describe('snapshots by bytes', () => {
  /** Writes 100-byte values one per turn until the first snapshot; the payload bytes applied by then. */
  function bytesBeforeFirstSnapshot(stagger: number): number {
    let snapshotAt: number | null = null;
    const cluster = leaderOfItself({ snapshotEveryBytes: 2000, snapshotStagger: stagger }, { snapshotTaken: (meta) => (snapshotAt ??= meta.index) });
    const payloads = new Map<number, number>();
    for (let k = 0; k < 200 && snapshotAt === null; k++) {
      const operation: Operation = { op: 'put', key: `k${k}`, value: Buffer.alloc(100, 1) };
      const [result] = writeInOneTurn(cluster, [{ operation, needsResult: false }]);
      payloads.set(ok(result).index, command(operation).length);
    }
    assert.notEqual(snapshotAt, null, 'a snapshot was taken');
    return [...payloads].filter(([index]) => index <= (snapshotAt as number)).reduce((sum, [, bytes]) => sum + bytes, 0);
  }

  it("a leader waits half as long again, and each node's stagger stretches the interval", () => {
    const plain = bytesBeforeFirstSnapshot(0);
    const staggered = bytesBeforeFirstSnapshot(0.2);
    const entry = command({ op: 'put', key: 'k100', value: Buffer.alloc(100, 1) }).length;
    assert.ok(plain >= 2000 * 1.5 && plain < 2000 * 1.5 + entry, `a leader's first snapshot after ${plain} bytes (due at 3,000)`);
    assert.ok(staggered >= 2000 * 1.5 * 1.2 && staggered < 2000 * 1.5 * 1.2 + entry, `with a stagger of 0.2, after ${staggered} bytes (due at 3,600)`);
  });
});

describe('snapshots by entries', () => {
  it('wait, after a large snapshot, until the log since it holds a quarter of its bytes', () => {
    const taken: { index: number; bytes: number }[] = [];
    const cluster = leaderOfItself({ snapshotEveryEntries: 10, snapshotEveryBytes: 10_000_000 }, { snapshotTaken: (meta, bytes) => taken.push({ index: meta.index, bytes }) });
    const logBytes = new Map<number, number>();
    const put = (key: string, bytes: number): void => {
      const operation: Operation = { op: 'put', key, value: Buffer.alloc(bytes, 1) };
      const [result] = writeInOneTurn(cluster, [{ operation, needsResult: false }]);
      logBytes.set(ok(result).index, command(operation).length);
    };
    // A state of 40 KB, then small writes: the first snapshot comes by entries alone (15: a leader's 10 × 1.5).
    for (let k = 0; k < 4; k++) put(`big${k}`, 10_000);
    for (let k = 0; taken.length === 0 && k < 100; k++) put(`a${k}`, 100);
    const first = taken[0];
    assert.ok(first !== undefined && first.bytes > 40_000, `the first snapshot: ${JSON.stringify(first)}`);
    assert.ok(first.index <= 16, `taken after ${first.index} entries`);
    // The next: not after 15 more entries of about 120 bytes, but once they hold 10 KB (a quarter of 40 KB).
    for (let k = 0; taken.length === 1 && k < 500; k++) put(`b${k}`, 100);
    const second = taken[1];
    assert.ok(second !== undefined, 'a second snapshot was taken');
    const since = [...logBytes].filter(([index]) => index > first.index && index <= second.index);
    const bytesSince = since.reduce((sum, [, bytes]) => sum + bytes, 0);
    assert.ok(bytesSince >= first.bytes / 4 && bytesSince < first.bytes / 4 + 200, `the second after ${since.length} entries, ${bytesSince} bytes (the first held ${first.bytes})`);
  });
});

describe('an entry of several commands', () => {
  it('frames the commands in order and refuses a batch whose framing is wrong', () => {
    const parts = [command({ op: 'del', key: 'x' }), command({ op: 'put', key: 'y', value: Buffer.from('z') })];
    const joined = encodeCommandBatch(parts);
    assert.deepEqual(
      commandsOfEntry(joined).map((p) => Buffer.from(p)),
      parts.map((p) => Buffer.from(p)),
    );
    assert.deepEqual(commandsOfEntry(parts[0] as Uint8Array), [parts[0]], 'one command is itself');
    const cut = joined.subarray(0, joined.length - 1);
    assert.throws(() => commandsOfEntry(cut), (e: unknown) => e instanceof TandemError && e.code === ErrorCode.corrupt);
    const trailing = Buffer.concat([joined, Buffer.of(0)]);
    assert.throws(() => commandsOfEntry(trailing), (e: unknown) => e instanceof TandemError && /trailing/.test(e.message));
    const one = Buffer.from(encodeCommandBatch(parts));
    one.writeUInt32LE(1, 1);
    assert.throws(() => commandsOfEntry(one), /1 commands is out of range/);
  });

  it('is applied command by command: one bad command spoils only its own reply; sessions count each', () => {
    const kv = new KvStateMachine(new MemoryStore());
    const data = encodeCommandBatch([
      encodeCommand({ clientId: 'c1', seq: 1, operation: { op: 'put', key: 'a', value: Buffer.from('1') } }),
      Uint8Array.of(9, 9, 9),
      encodeCommand({ clientId: 'c1', seq: 1, operation: { op: 'put', key: 'a', value: Buffer.from('2') } }),
      encodeCommand({ clientId: '', seq: 0, operation: { op: 'incrBy', key: 'a', delta: 1n } }),
    ]);
    const results = kv.applyBatch([{ index: 1, term: 1, kind: 'command', data }]);
    assert.deepEqual(
      results.map((r) => [r.index, r.position, r.reply?.kind, r.deduplicated]),
      [
        [1, 0, 'ok', false],
        [1, 1, 'error', false],
        [1, 2, 'ok', true],
        [1, 3, 'integer', false],
      ],
    );
    assert.equal(Buffer.from(kv.get('a') as Uint8Array).toString(), '2', 'the retry in the same entry did not write again; the INCR did');
    assert.equal(kv.appliedIndex, 1);
    const broken = kv.applyBatch([{ index: 2, term: 1, kind: 'command', data: data.subarray(0, 9) }]);
    assert.equal(broken.length, 1);
    assert.equal(broken[0]?.reply?.kind, 'error', 'a batch cut short is one bad request, not a crash');
    assert.equal(kv.appliedIndex, 2);
  });
});

describe('snapshots staged in a file by the transport', () => {
  it('removes those the core does not take, and one a newer snapshot replaced before its install', () => {
    const disk = new SimDisk(new Prng(1), { minMs: 0.1, maxMs: 0.1, slowChance: 0, slowMs: 0 }, () => undefined);
    const discarded: string[] = [];
    const storage: Storage = {
      persist: (work, done) => disk.persist(work, done),
      openSnapshot: (index, done) => disk.openSnapshot(index, done),
      discardStaged: (staged) => discarded.push(staged.path),
      readEntries: (lo, hi, entriesMax, bytesMax, done) => disk.readEntries(lo, hi, entriesMax, bytesMax, done),
      createSnapshot: (meta) => disk.createSnapshot(meta),
    };
    const runtime: Runtime = { now: () => 0, defer: () => undefined, setTimeout: () => () => undefined };
    const engine = new Engine(
      { raft: { id: 'n2', prng: new Prng(2), electionTimeoutTicks: 3, heartbeatTicks: 1, tickMs: 10, priority: 1 }, bootstrap: { voters: ['n1', 'n2'], learners: [] }, tickMs: 10, requestTimeoutMs: 1000, snapshotEveryEntries: 100_000, snapshotKeepEntries: 0 },
      disk.recover(),
      new KvStateMachine(new MemoryStore()),
      storage,
      simTransport(() => undefined),
      runtime,
    );
    const snapshot = (index: number, path: string): Message => ({
      type: 'snapshot',
      from: 'n1',
      to: 'n2',
      term: 1,
      meta: { index, term: 1, config: { voters: ['n1', 'n2'], learners: [] }, termStarts: [[1, 1]] },
      data: { path, bytes: 10 },
    });
    // Within one turn (nothing is installed yet): a taken, b replaces it, c is older than b.
    engine.receive(snapshot(5, '/staged/a'));
    assert.deepEqual(discarded, []);
    engine.receive(snapshot(8, '/staged/b'));
    assert.deepEqual(discarded, ['/staged/a']);
    engine.receive(snapshot(6, '/staged/c'));
    assert.deepEqual(discarded, ['/staged/a', '/staged/c'], 'b waits for its install');
    engine.halt();
  });
});
