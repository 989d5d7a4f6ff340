import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { anyOperation } from './support/operations.js';
import type { Entry } from '../src/core/types.js';
import { encodeCommand, encodeCommandBatch, type Command, type Operation } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore } from '../src/kv/store.js';

let nextIndex = 1;
function command(clientId: string, seq: number, operation: Operation, index = nextIndex++): Entry {
  return { index, term: 1, kind: 'command', data: encodeCommand({ clientId, seq, operation }) };
}
const put = (key: string, value: string): Operation => ({ op: 'put', key, value: Buffer.from(value) });
/** A reply with its byte values as plain arrays of numbers, for comparing contents. */
const plain = (reply: unknown): unknown =>
  reply instanceof Uint8Array ? [...reply] : reply !== null && typeof reply === 'object' ? Object.fromEntries(Object.entries(reply).map(([k, v]) => [k, plain(v)])) : reply;

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

  it('applies an entry proposed here from the commands it was proposed with, and a copy of its bytes by decoding them', () => {
    const written: Command = { clientId: '', seq: 0, operation: put('k', 'from the bytes') };
    // Given commands that differ from the bytes on purpose, to show which path each apply took.
    const given: Command = { clientId: '', seq: 0, operation: put('k', 'from the commands') };
    const single = encodeCommand(written);
    const here = new KvStateMachine(new MemoryStore());
    here.proposedHere(single, [given]);
    here.applyBatch([{ index: 1, term: 1, kind: 'command', data: single }]);
    assert.equal(Buffer.from(here.get('k')!).toString(), 'from the commands', 'the very entry proposed here is applied from its commands');
    const elsewhere = new KvStateMachine(new MemoryStore());
    elsewhere.proposedHere(single, [given]);
    elsewhere.applyBatch([{ index: 1, term: 1, kind: 'command', data: Uint8Array.from(single) }]);
    assert.equal(Buffer.from(elsewhere.get('k')!).toString(), 'from the bytes', 'the same bytes in another array (read back, received) are decoded');

    const batch = encodeCommandBatch([encodeCommand(written), encodeCommand({ clientId: '', seq: 0, operation: { op: 'del', key: 'k' } })]);
    here.proposedHere(batch, [given, { clientId: '', seq: 0, operation: put('j', '2') }]);
    const results = here.applyBatch([{ index: 2, term: 1, kind: 'command', data: batch }]);
    assert.deepEqual(results.map((r) => [r.index, r.position, r.reply?.kind]), [[2, 0, 'ok'], [2, 1, 'ok']]);
    assert.equal(Buffer.from(here.get('j')!).toString(), '2', 'every command of a batch entry comes from the given list, in order');
  });

  it('a replica applying its own proposals from their commands and one decoding the same entries agree: replies and digest (seed 515)', () => {
    // What makes the shortcut safe: a command the front ends build decodes from its bytes to itself.
    const key = fc.constantFrom('a', 'b', '\u00ff\u0000k', 'key:000000000042');
    const value = fc.uint8Array({ maxLength: 6 }).map((bytes) => Buffer.from(bytes));
    const operation = anyOperation(key, value, [fc.record({ op: fc.constant('incrBy' as const), key, delta: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }) })]);
    const command: fc.Arbitrary<Command> = fc.record({ clientId: fc.constantFrom('', 'c1', 'client-é'), seq: fc.integer({ min: 1, max: 4 }), operation });
    fc.assert(
      fc.property(fc.array(fc.array(command, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), (entries) => {
        const leader = new KvStateMachine(new MemoryStore());
        const follower = new KvStateMachine(new MemoryStore());
        entries.forEach((commands, i) => {
          const parts = commands.map((c) => encodeCommand(c));
          const data = parts.length === 1 ? (parts[0] as Uint8Array) : encodeCommandBatch(parts);
          leader.proposedHere(data, commands);
          const mine = leader.applyBatch([{ index: i + 1, term: 1, kind: 'command', data }]);
          const theirs = follower.applyBatch([{ index: i + 1, term: 1, kind: 'command', data: Uint8Array.from(data) }]);
          // The same bytes; a value may be a Buffer on one side (as a front end read it) and a view on the other.
          assert.deepEqual(mine.map((r) => plain(r.reply)), theirs.map((r) => plain(r.reply)));
          assert.equal(leader.digest(), follower.digest());
        });
      }),
      { seed: 515, numRuns: 300 },
    );
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
