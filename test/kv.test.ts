import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../src/core/types.js';
import { encodeCommand, type Operation } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore } from '../src/kv/store.js';

let nextIndex = 1;
function command(clientId: string, seq: number, operation: Operation, index = nextIndex++): Entry {
  return { index, term: 1, kind: 'command', data: encodeCommand({ clientId, seq, operation }) };
}
const put = (key: string, value: string): Operation => ({ op: 'put', key, value: Buffer.from(value) });

describe('the state machine', () => {
  it('applies puts, deletes and compare-and-set', () => {
    nextIndex = 1;
    const kv = new KvStateMachine(new MemoryStore());
    const results = kv.applyBatch([
      command('', 0, put('a', '1')),
      command('', 0, { op: 'cas', key: 'a', expected: Buffer.from('1'), value: Buffer.from('2') }),
      command('', 0, { op: 'cas', key: 'a', expected: Buffer.from('1'), value: Buffer.from('3') }),
      command('', 0, { op: 'del', key: 'a' }),
      command('', 0, { op: 'del', key: 'a' }),
      command('', 0, { op: 'cas', key: 'b', expected: null, value: Buffer.from('new') }),
    ]);
    assert.deepEqual(results.map((r) => r.reply), [
      { kind: 'ok' },
      { kind: 'cas', swapped: true },
      { kind: 'cas', swapped: false },
      { kind: 'deleted', count: 1 },
      { kind: 'deleted', count: 0 },
      { kind: 'cas', swapped: true },
    ]);
    assert.equal(kv.get('a'), undefined);
    assert.equal(Buffer.from(kv.get('b')!).toString(), 'new');
    assert.equal(kv.appliedIndex, 6);
  });

  it('applies a retried (clientId, seq) once and answers it with the original reply', () => {
    nextIndex = 1;
    const kv = new KvStateMachine(new MemoryStore());
    const [first] = kv.applyBatch([command('c', 1, { op: 'cas', key: 'k', expected: null, value: Buffer.from('x') })]);
    const [retry] = kv.applyBatch([command('c', 1, { op: 'cas', key: 'k', expected: null, value: Buffer.from('x') })]);
    assert.deepEqual(first?.reply, { kind: 'cas', swapped: true });
    assert.deepEqual(retry?.reply, { kind: 'cas', swapped: true }, 'the retry gets the first reply, not a failed swap');
    assert.equal(retry?.deduplicated, true);
    const [newer] = kv.applyBatch([command('c', 2, put('k', 'y'))]);
    assert.deepEqual(newer?.reply, { kind: 'ok' });
    const [late] = kv.applyBatch([command('c', 1, put('k', 'w'))]);
    assert.equal(late?.reply?.kind, 'error', 'a request older than the latest is refused');
    assert.equal(Buffer.from(kv.get('k')!).toString(), 'y', 'an older request never overwrites a newer one');
  });

  it('two replicas that applied the same entries have the same digest; any difference changes it', () => {
    nextIndex = 1;
    const entries = [command('a', 1, put('x', '1')), command('b', 1, put('y', '2')), command('a', 2, { op: 'del', key: 'x' })];
    const one = new KvStateMachine(new MemoryStore());
    const two = new KvStateMachine(new MemoryStore());
    one.applyBatch(entries);
    two.applyBatch(entries.slice(0, 1));
    two.applyBatch(entries.slice(1));
    assert.equal(one.digest(), two.digest());
    const three = new KvStateMachine(new MemoryStore());
    nextIndex = 1;
    three.applyBatch([command('a', 1, put('x', '1')), command('b', 1, put('y', '3')), command('a', 2, { op: 'del', key: 'x' })]);
    assert.notEqual(three.digest(), one.digest());
  });

  it('a snapshot restores the same state and digest, and a damaged one is refused', () => {
    nextIndex = 1;
    const kv = new KvStateMachine(new MemoryStore());
    kv.applyBatch([command('a', 1, put('x', '1')), command('b', 1, put('y', Buffer.from([0, 1, 2]).toString('latin1')))]);
    const snapshot = kv.snapshot();
    const copy = new KvStateMachine(new MemoryStore());
    copy.restore(snapshot);
    assert.equal(copy.digest(), kv.digest());
    assert.equal(copy.appliedIndex, kv.appliedIndex);
    assert.equal(Buffer.from(copy.get('x')!).toString(), '1');
    const damaged = Uint8Array.from(snapshot);
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
    assert.throws(() => new KvStateMachine(new MemoryStore()).restore(damaged), /digest|bytes/);
  });

  it('refuses an entry out of order instead of applying it', () => {
    nextIndex = 1;
    const kv = new KvStateMachine(new MemoryStore());
    assert.throws(() => kv.applyBatch([command('', 0, put('a', '1'), 2)]), /follows applied index 0/);
    assert.equal(kv.appliedIndex, 0);
  });

  it('keeps its key count without walking the store, through deletes, failed restores and a reset', () => {
    nextIndex = 1;
    // LMDB counts by walking every key: the count is asked per INFO, DBSIZE and forwarded write.
    class CountingStore extends MemoryStore {
      counts = 0;
      override count(space: Parameters<MemoryStore['count']>[0]): number {
        this.counts++;
        return super.count(space);
      }
    }
    const store = new CountingStore();
    const kv = new KvStateMachine(store);
    const asked = store.counts;
    kv.applyBatch([command('', 0, put('a', '1')), command('', 0, put('b', '2')), command('', 0, put('a', '3')), command('c', 1, put('c', '4'))]);
    assert.equal(kv.size, 3, 'an overwrite and a session entry do not add keys');
    kv.applyBatch([command('', 0, { op: 'del', key: 'b' }), command('', 0, { op: 'del', key: 'zz' }), command('', 0, { op: 'getdel', key: 'c' })]);
    assert.equal(kv.size, 1);
    kv.applyBatch([command('', 0, { op: 'mset', pairs: [['m1', Buffer.from('x')], ['m2', Buffer.from('y')], ['a', Buffer.from('z')]] })]);
    assert.equal(kv.size, 3);
    assert.equal(store.counts, asked, 'size did not ask the store to count');
    assert.equal(kv.size, store.count('data'));

    const before = { size: kv.size, digest: kv.digest(), applied: kv.appliedIndex };
    const other = new KvStateMachine(new MemoryStore());
    other.applyBatch([command('', 0, put('only', '1'), 1)]);
    const damaged = Uint8Array.from(other.snapshot());
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
    assert.throws(() => kv.restore(damaged), /digest|bytes/);
    assert.deepEqual({ size: kv.size, digest: kv.digest(), applied: kv.appliedIndex }, before, 'a refused snapshot leaves count, digest and index as they were');
    assert.equal(Buffer.from(kv.get('m1')!).toString(), 'x');

    kv.restore(other.snapshot());
    assert.equal(kv.size, 1);
    kv.reset();
    assert.equal(kv.size, 0);
    const reopened = new KvStateMachine(store);
    assert.equal(reopened.size, 0);
  });
});
