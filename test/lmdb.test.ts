import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { anyOperation } from './support/operations.js';
import type { Entry } from '../src/core/types.js';
import { encodeCommand } from '../src/kv/commands.js';
import { ByteWriter } from '../src/shared/bytes.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore, type SnapshotFile } from '../src/kv/store.js';
import { ErrorCode, TandemError } from '../src/shared/errors.js';
import { LmdbStore } from '../src/storage/lmdb-store.js';
import { Engine, type WriteResult } from '../src/engine/engine.js';
import { realRuntime } from '../src/cli/node.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { Prng } from '../src/shared/prng.js';
import { waitFor } from './support/process-cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const put = (index: number, key: string, value: string): Entry => ({
  index,
  term: 1,
  kind: 'command',
  data: encodeCommand({ clientId: 'c', seq: index, operation: { op: 'put', key, value: Buffer.from(value) } }),
});

describe('the LMDB store', () => {
  it('takes a batch of 300,000 writes (a snapshot restore is one batch of every key)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    const value = Buffer.from('v');
    store.batch(() => {
      for (let k = 0; k < 300_000; k++) store.put('data', `k${k}`, value);
    });
    assert.equal(store.count('data'), 300_000);
    await store.flushed();
    assert.equal(Buffer.from(store.get('data', 'k299999')!).toString(), 'v');
    await store.close();
  });

  it('builds a snapshot in pieces of about a megabyte, the same state as the one-piece snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    const kv = new KvStateMachine(store);
    // 3,000 keys, a third of them with 4 KiB values: about 4 MB of state.
    const entries = Array.from({ length: 3000 }, (_, k) => put(k + 1, `key-${k}`, k % 3 === 0 ? 'v'.repeat(4096) : `small-${k}`));
    kv.applyBatch(entries);
    const reader = await kv.openReader();
    const { index, digest, chunks } = kv.snapshotChunks(reader);
    const parts = [...chunks];
    // A second pass over the same read transaction gives the same bytes (a backup relies on it).
    const again = Buffer.concat([...kv.snapshotChunks(reader).chunks]);
    reader.close();
    assert.equal(index, 3000);
    assert.equal(digest, kv.digest());
    const data = parts.filter((part) => part.length > 1000);
    assert.ok(data.length >= 4 && data.every((part) => part.length <= 1.1 * 1024 * 1024), `a 4 MB state in chunks of about a megabyte (${data.map((p) => p.length).join(', ')})`);
    assert.ok(again.equals(Buffer.concat(parts)));
    const whole = new KvStateMachine(new MemoryStore());
    whole.restore(kv.snapshot());
    const fromPieces = new KvStateMachine(new MemoryStore());
    fromPieces.restore(Buffer.concat(parts));
    assert.equal(fromPieces.digest(), kv.digest());
    assert.equal(fromPieces.digest(), whole.digest());
    assert.equal(fromPieces.appliedIndex, 3000);
    assert.equal(Buffer.from(fromPieces.get('key-2997')!).toString(), 'v'.repeat(4096));
    assert.equal(Buffer.from(fromPieces.get('key-2998')!).toString(), 'small-2998');
    await store.close();
  });

  it('keeps data, sessions, applied index and digest across a reopen, and matches the memory store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const entries = [put(1, 'a', '1'), put(2, '\u00ff\u0000binary', '2'), put(3, 'a', '3')];
    const store = new LmdbStore(dir);
    const kv = new KvStateMachine(store);
    kv.applyBatch(entries);
    await store.flushed();
    await store.close();

    const reopened = new KvStateMachine(new LmdbStore(dir));
    assert.equal(reopened.appliedIndex, 3);
    assert.equal(Buffer.from(reopened.get('a')!).toString(), '3');
    assert.equal(Buffer.from(reopened.get('\u00ff\u0000binary')!).toString(), '2');
    const memory = new KvStateMachine(new MemoryStore());
    memory.applyBatch(entries);
    assert.equal(reopened.digest(), memory.digest(), 'the same entries give the same digest on either store');
    const copy = new KvStateMachine(new MemoryStore());
    copy.restore(reopened.snapshot());
    assert.equal(copy.digest(), memory.digest());
  });

  it('a batch that fails part-way leaves nothing behind, and earlier batches of its group as they were', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    // Earlier batches of the same (uncommitted) group: a key written twice, one deleted, one kept.
    store.batch(() => {
      store.put('data', 'kept', Buffer.from('k1'));
      store.put('data', 'twice', Buffer.from('t1'));
      store.put('data', 'gone', Buffer.from('g1'));
    });
    store.batch(() => {
      store.put('data', 'twice', Buffer.from('t2'));
      store.delete('data', 'gone');
    });
    assert.throws(() =>
      store.batch(() => {
        store.put('data', 'half', Buffer.from('x'));
        store.put('data', 'twice', Buffer.from('t3'));
        store.put('data', 'gone', Buffer.from('g3'));
        store.delete('data', 'kept');
        throw new Error('boom');
      }),
    );
    const read = (key: string): string | undefined => {
      const value = store.get('data', key);
      return value === undefined ? undefined : Buffer.from(value).toString();
    };
    assert.deepEqual(['half', 'twice', 'gone', 'kept'].map(read), [undefined, 't2', undefined, 'k1'], 'the overlay is back to the earlier batches');
    await store.flushed();
    assert.deepEqual(['half', 'twice', 'gone', 'kept'].map(read), [undefined, 't2', undefined, 'k1'], 'and so is what LMDB committed');
    store.batch(() => store.put('data', 'after', Buffer.from('a')));
    assert.equal(read('after'), 'a', 'the store takes batches again');
    await store.close();
  });

  it('reports a commit LMDB refuses, rejects flushed() and refuses later batches (the node then stops)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const failures: Error[] = [];
    const store = new LmdbStore(dir, (error) => failures.push(error));
    // LMDB's keys are at most 1,978 bytes (Tandem's own limit is 1,024): the writer thread's commit fails.
    store.batch(() => store.put('data', 'k'.repeat(4000), Buffer.from('v')));
    await assert.rejects(store.flushed(), /LMDB could not commit: .*maximum key size/);
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.message, /maximum key size/);
    assert.throws(() => store.batch(() => store.put('data', 'a', Buffer.from('v'))), /LMDB could not commit/);
    await store.close();
  });

  it('paces a commit nothing waits for (the writer rests between chunks of its work), and not one a flush waits for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir, () => {}, undefined, undefined, 60_000);
    const value = Buffer.alloc(100, 7);
    const write = (from: number): void =>
      store.batch(() => {
        for (let k = from; k < from + 20_000; k++) store.put('data', `k${k}`, value);
      });
    // Awaited: no rest.
    write(0);
    await store.flushed();
    assert.equal(store.writerRestedMs, 0);
    // Due by its delay alone: handed over a second after its first write, and paced.
    write(20_000);
    await waitFor('the paced commit', 30_000, () => store.backlog.bytes() === 0);
    assert.ok(store.writerRestedMs > 0, `rested ${store.writerRestedMs} ms`);
    assert.equal(Buffer.from(store.get('data', 'k39999')!).toString(), value.toString());
    await store.close();
    const reopened = new LmdbStore(dir);
    assert.equal(reopened.count('data'), 40_000);
    await reopened.close();
  });

  it('holds new writes back, in order, while more than its bound is uncommitted, until a commit; refuses them once a commit failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir, () => {}, 10_000);
    const order: string[] = [];
    store.backlog.admit((error) => order.push(`a ${error}`));
    assert.deepEqual(order, ['a null'], 'nothing uncommitted: at once');
    const value = Buffer.alloc(1000, 1);
    store.batch(() => {
      for (let k = 0; k < 20; k++) store.put('data', `k${k}`, value);
    });
    assert.ok(store.backlog.bytes() > 10_000, `${store.backlog.bytes()} bytes uncommitted`);
    store.backlog.admit((error) => order.push(`b ${error}`));
    store.backlog.admit((error) => order.push(`c ${error}`));
    assert.deepEqual(order, ['a null'], 'over the bound: held');
    assert.equal(store.backlog.held(), 2);
    await store.flushed();
    assert.deepEqual(order, ['a null', 'b null', 'c null'], 'let go after the commit, in order');
    assert.equal(store.backlog.bytes(), 0);
    assert.ok(store.backlog.bytesMax() >= 20_000, `the most seen: ${store.backlog.bytesMax()}`);
    await store.close();

    const failingDir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(failingDir);
    const failing = new LmdbStore(failingDir, () => {}, 10);
    const refused: (Error | null)[] = [];
    // LMDB's keys are at most 1,978 bytes: the writer thread's commit fails.
    failing.batch(() => failing.put('data', 'k'.repeat(4000), Buffer.from('v')));
    failing.backlog.admit((error) => refused.push(error));
    assert.equal(refused.length, 0, 'held while the commit runs');
    await assert.rejects(failing.flushed(), /LMDB could not commit/);
    assert.equal(refused.length, 1);
    assert.match(String(refused[0]), /LMDB could not commit/);
    failing.backlog.admit((error) => refused.push(error));
    assert.match(String(refused[1]), /LMDB could not commit/, 'refused at once after the failure');
    await failing.close();
  });

  it('reads the same as the memory store while batches are still being committed, and after batches that fail (seed 777)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    const change = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), value: fc.string({ maxLength: 3 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
      fc.constant({ kind: 'clear' as const }),
    );
    // 'handover' gives the batches so far to the writer thread without waiting: the batches after
    // it are read while that group is still being committed, through two overlays. 'checkpoint'
    // asks for the digest at the batch's state record, which closes the group there: with the
    // writer busy, closed groups queue, and reads go through three overlays or more.
    // `fails`: the batch throws after its changes, so none of them may stay.
    const script = fc.array(fc.record({ changes: fc.array(change, { maxLength: 4 }), settle: fc.constantFrom('none', 'tick', 'handover', 'flush', 'checkpoint'), fails: fc.boolean() }), {
      maxLength: 12,
    });
    const view = (s: LmdbStore | MemoryStore): unknown => ({
      entries: [...s.entries('data')].map(([k, v]) => [k, Buffer.from(v).toString()]),
      count: s.count('data'),
      after: s.keysAfter('data', 'b', 2),
      values: ['a', 'b', 'c', 'd', 'e'].map((key) => {
        const value = s.get('data', key);
        return value === undefined ? null : Buffer.from(value).toString();
      }),
    });
    await fc.assert(
      fc.asyncProperty(script, async (batches) => {
        const memory = new MemoryStore();
        const handedOver: Promise<void>[] = [];
        const told: number[] = [];
        let applied = 0;
        store.batch(() => store.clear());
        for (const { changes, settle, fails } of batches) {
          if (settle === 'checkpoint' && !fails) {
            applied++;
            store.batch(() => store.put('meta', 'state', new ByteWriter(8).u64(applied).finish()));
            store.digests.at(applied, () => told.push(applied));
          }
          for (const target of [store, memory]) {
            const run = (): void =>
              target.batch(() => {
                for (const c of changes) {
                  if (c.kind === 'put') target.put('data', c.key, Buffer.from(c.value));
                  else if (c.kind === 'delete') target.delete('data', c.key);
                  else target.clear();
                }
                if (fails) throw new Error('the batch fails');
              });
            if (fails) assert.throws(run, /the batch fails/);
            else run();
          }
          // Let LMDB commit some batches while later ones are still pending, or all of them.
          if (settle === 'tick') await new Promise((resolve) => setImmediate(resolve));
          if (settle === 'handover') handedOver.push(store.flushed());
          if (settle === 'flush') await store.flushed();
          assert.deepEqual(view(store), view(memory));
        }
        // Once LMDB holds every group, it alone must answer the same.
        await Promise.all(handedOver);
        await store.flushed();
        assert.deepEqual(view(store), view(memory));
        assert.equal(told.length, applied, 'every digest asked for was told');
      }),
      { seed: 777, numRuns: 150 },
    );
    await store.close();
  });

  it('tells the digest of a batch whose group was handed over at its end (the group was full)', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    const kv = new KvStateMachine(store);
    const memory = new KvStateMachine(new MemoryStore());
    const pairs = Array.from({ length: 60_000 }, (_, k) => [`key-${k}`, Buffer.from(`value-${k}`)] as const);
    const entry: Entry = { index: 1, term: 1, kind: 'command', data: encodeCommand({ clientId: '', seq: 0, operation: { op: 'mset', pairs } }) };
    // 60,000 changes fill a group (50,000 at most), so it goes to the writer as the batch ends.
    kv.applyBatch([entry]);
    memory.applyBatch([entry]);
    const told = new Promise<string>((resolve) => kv.digestAtApplied(resolve));
    kv.applyBatch([put(2, 'after', 'x')]);
    memory.applyBatch([put(2, 'after', 'x')]);
    const second = new Promise<string>((resolve) => kv.digestAtApplied(resolve));
    await store.flushed();
    const expected = new KvStateMachine(new MemoryStore());
    expected.applyBatch([entry]);
    assert.equal(await told, expected.digest(), 'the digest at index 1');
    assert.equal(await second, memory.digest(), 'and at index 2');
    await store.close();
  });

  it('keeps the state digest in its writer thread: equal to the memory store\'s at every batch, checkpoint and reopen (seed 4242)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const keys = ['a', 'b', 'c', '\u00ff\u0000k'];
    const key = fc.constantFrom(...keys);
    const value = fc.string({ maxLength: 4 }).map((text) => Buffer.from(text));
    const operation = anyOperation(key, value);
    // A command with a client id also writes the session space (part of the digest); a repeated
    // (client, seq) is answered from it.
    const command = fc.record({ client: fc.constantFrom('', 'c1', 'c2'), seq: fc.integer({ min: 1, max: 3 }), operation });
    const script = fc.array(
      fc.record({ commands: fc.array(command, { minLength: 1, maxLength: 4 }), settle: fc.constantFrom('none', 'tick', 'handover', 'flush'), restore: fc.boolean() }),
      { minLength: 1, maxLength: 10 },
    );
    await fc.assert(
      fc.asyncProperty(script, async (batches) => {
        rmSync(dir, { recursive: true, force: true });
        let store = new LmdbStore(dir);
        let kv = new KvStateMachine(store);
        const memory = new KvStateMachine(new MemoryStore());
        const expected = new Map<number, string>();
        const told = new Map<number, string>();
        const handedOver: Promise<void>[] = [];
        for (const { commands, settle, restore } of batches) {
          const entries = commands.map((c, k): Entry => ({
            index: memory.appliedIndex + 1 + k,
            term: 1,
            kind: 'command',
            data: encodeCommand({ clientId: c.client, seq: c.client === '' ? 0 : c.seq, operation: c.operation }),
          }));
          if (restore) {
            // As a follower installing a snapshot: the whole state replaced, its digest checked.
            memory.applyBatch(entries);
            kv.restore(memory.snapshot());
          } else {
            assert.deepEqual(kv.applyBatch(entries), memory.applyBatch(entries));
          }
          const index = memory.appliedIndex;
          expected.set(index, memory.digest());
          kv.digestAtApplied((digest) => told.set(index, digest));
          assert.equal(kv.digest(), memory.digest(), `the digest at ${index}, with batches pending`);
          assert.equal(kv.size, memory.size);
          if (settle === 'tick') await new Promise((resolve) => setImmediate(resolve));
          if (settle === 'handover') handedOver.push(store.flushed());
          if (settle === 'flush') await store.flushed();
          assert.equal(kv.digest(), memory.digest(), `the digest at ${index}, after '${settle}'`);
        }
        await Promise.all(handedOver);
        await store.flushed();
        assert.deepEqual(told, expected, 'the writer told the digest at every index asked for, and the right one');
        await store.close();
        store = new LmdbStore(dir);
        kv = new KvStateMachine(store);
        assert.equal(kv.appliedIndex, memory.appliedIndex);
        assert.equal(kv.digest(), memory.digest(), 'the committed state record holds the digest');
        kv.reset();
        assert.equal(kv.digest(), new KvStateMachine(new MemoryStore()).digest(), 'a reset empties the digest');
        await store.close();
      }),
      { seed: 4242, numRuns: 40 },
    );
  });
});

describe('a snapshot restored from its file by the LMDB writer thread', () => {
  const restore = (kv: KvStateMachine, file: SnapshotFile) => new Promise<Error | null>((resolve) => kv.restoreFromFile(file, resolve));
  /** A memory state machine after `count` writes (a quarter of them 9,000-byte values: pieces of the read are crossed), and its snapshot. */
  function source(count: number): { kv: KvStateMachine; bytes: Uint8Array } {
    const kv = new KvStateMachine(new MemoryStore());
    kv.applyBatch(Array.from({ length: count }, (_, k) => put(k + 1, `key-${k}`, k % 4 === 0 ? 'x'.repeat(9000) : `v${k}`)));
    return { kv, bytes: kv.snapshot() };
  }
  /** The snapshot's bytes written after 100 bytes of something else, as in a snapshot file. */
  function written(dir: string, bytes: Uint8Array): SnapshotFile {
    const path = join(dir, 'snap.bin');
    writeFileSync(path, Buffer.concat([Buffer.alloc(100, 9), bytes]));
    return { path, offset: 100, bytes: bytes.length };
  }

  it('replaces the whole state (keys of the state before are gone), durably, with the digest of the memory state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const { kv: memory, bytes } = source(3000);
    const store = new LmdbStore(join(dir, 'state'));
    const kv = new KvStateMachine(store);
    kv.applyBatch([put(1, 'old-key', 'old'), put(2, 'key-7', 'old value')]);
    // Not yet committed when the restore is asked for: it waits for the commit, then replaces it.
    assert.equal(await restore(kv, written(dir, bytes)), null);
    assert.equal(kv.appliedIndex, 3000);
    assert.equal(kv.digest(), memory.digest());
    assert.equal(kv.get('old-key'), undefined);
    assert.equal(Buffer.from(kv.get('key-7')!).toString(), 'v7');
    assert.equal(kv.size, 3000);
    kv.applyBatch([put(3001, 'after', 'yes')]);
    memory.applyBatch([put(3001, 'after', 'yes')]);
    await store.close();
    const reopened = new KvStateMachine(new LmdbStore(join(dir, 'state')));
    assert.equal(reopened.appliedIndex, 3001);
    assert.equal(reopened.digest(), memory.digest());
  });

  it('commits a transaction per so many bytes of pairs, the state record last', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const { kv: memory, bytes } = source(3000);
    // About 7 MB of pairs, 100 KB a transaction: seventy of them.
    const store = new LmdbStore(join(dir, 'state'), () => {}, undefined, 100_000);
    const kv = new KvStateMachine(store);
    kv.applyBatch([put(1, 'old-key', 'old')]);
    assert.equal(await restore(kv, written(dir, bytes)), null);
    assert.equal(kv.appliedIndex, 3000);
    assert.equal(kv.digest(), memory.digest());
    assert.equal(kv.size, 3000);
    assert.equal(kv.get('old-key'), undefined);
    assert.equal(Buffer.from(kv.get('key-2996')!).toString(), 'x'.repeat(9000));
    await store.close();
    const reopened = new KvStateMachine(new LmdbStore(join(dir, 'state')));
    assert.equal(reopened.appliedIndex, 3000);
    assert.equal(reopened.digest(), memory.digest());
    assert.equal(reopened.size, 3000);
  });

  it('refuses a damaged snapshot (CORRUPT) and leaves no state that passes for one: applied index 0, restored again from the snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const { kv: memory, bytes } = source(500);
    const store = new LmdbStore(join(dir, 'state'), () => {}, undefined, 10_000);
    const kv = new KvStateMachine(store);
    kv.applyBatch([put(1, 'old-key', 'old')]);
    await store.flushed();
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 2] ^= 0x01;
    const damaged = await restore(kv, written(dir, flipped));
    assert.ok(damaged instanceof TandemError && damaged.code === ErrorCode.corrupt && /digest/.test(damaged.message), String(damaged));
    assert.equal(kv.appliedIndex, 0, 'no state record: the node is behind its snapshot and restores it again at start');
    assert.equal(kv.get('old-key'), undefined);
    // A length that claims more than the file holds is refused before anything is read for it.
    const cut = await restore(kv, written(dir, bytes.subarray(0, bytes.length - 5000)));
    assert.ok(cut instanceof TandemError && cut.code === ErrorCode.corrupt && /needs \d+ bytes/.test(cut.message), String(cut));
    assert.equal(kv.appliedIndex, 0);
    await store.close();
    const reopened = new KvStateMachine(new LmdbStore(join(dir, 'state')));
    assert.equal(reopened.appliedIndex, 0, 'after a restart too');
    assert.equal(await restore(reopened, written(dir, bytes)), null, 'the good snapshot restores over what was left');
    assert.equal(reopened.appliedIndex, 500);
    assert.equal(reopened.digest(), memory.digest());
    assert.equal(reopened.size, 500);
  });
});

describe('a node whose state machine is behind its snapshot at start', () => {
  it('restores the snapshot from its file before it starts (not loaded whole), then takes part', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-engine-'));
    dirs.push(dir);
    const source = new KvStateMachine(new MemoryStore());
    source.applyBatch(Array.from({ length: 2000 }, (_, k) => put(k + 1, `key-${k}`, `value-${k}`)));
    const meta = { index: 2000, term: 1, config: { voters: ['n1'], learners: [] }, termStarts: [[1, 1]] as [number, number][] };
    // As after a crash between a snapshot's install and its restore: the snapshot on disk, LMDB empty.
    FileStorage.seed(dir, { meta, data: source.snapshot() });
    const { storage, recovered } = FileStorage.open(dir);
    const store = new LmdbStore(join(dir, 'state'));
    const kv = new KvStateMachine(store);
    assert.equal(kv.appliedIndex, 0);
    let loaded = false;
    const snapshot = recovered.snapshot!;
    const watched = { ...recovered, snapshot: { ...snapshot, load: () => ((loaded = true), snapshot.load()) } };
    const engine = new Engine(
      { raft: { id: 'n1', prng: new Prng(3), electionTimeoutTicks: 3, heartbeatTicks: 1, tickMs: 10, priority: 1 }, bootstrap: meta.config, tickMs: 10, requestTimeoutMs: 5000, snapshotEveryEntries: 100_000, snapshotKeepEntries: 0 },
      watched,
      kv,
      storage,
      { send: () => undefined, sendSnapshot: (_m, reader) => reader.close() },
      realRuntime,
    );
    try {
      engine.start();
      const deadline = performance.now() + 10_000;
      const written = await new Promise<WriteResult>((resolve) => {
        const attempt = (): void => {
          if (engine.raft.role !== 'leader') {
            if (performance.now() > deadline) resolve({ ok: false, error: new TandemError(ErrorCode.timeout, `no leader within 10 s (role ${engine.raft.role}, applied ${kv.appliedIndex})`) });
            else setTimeout(attempt, 10);
            return;
          }
          // needsResult: answered once applied.
          engine.write(encodeCommand({ clientId: 'another', seq: 1, operation: { op: 'put', key: 'after', value: Buffer.from('yes') } }), 'majority', true, resolve);
        };
        attempt();
      });
      assert.ok(written.ok, `it leads and takes a write after the restore${written.ok ? '' : `: ${written.error.message}`}`);
      assert.ok(!loaded, 'the snapshot was not read into memory');
      assert.equal(Buffer.from(kv.get('key-1999')!).toString(), 'value-1999');
      assert.equal(Buffer.from(kv.get('after')!).toString(), 'yes');
      assert.ok(kv.appliedIndex > 2000);
    } finally {
      engine.halt();
      await storage.close();
      await store.close();
    }
  });
});

describe('a reader over LMDB', () => {
  it('may be closed after its store was (a snapshot a halted node was building): once, without an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    store.batch(() => store.put('data', 'k', Buffer.from('v')));
    const reader = await store.openReader();
    assert.equal(reader.count('data'), 1);
    await store.close();
    reader.close();
    reader.close();
  });
});
