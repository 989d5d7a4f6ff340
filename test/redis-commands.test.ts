import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RespReplyParser, RespErrorReply } from '../src/codec/resp.js';
import type { Entry } from '../src/core/types.js';
import { decodeCommand, decodeReply, encodeCommand, encodeReply, validateCommand, type Operation, type Reply } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore } from '../src/kv/store.js';
import { globMatch } from '../src/server/glob.js';

/** The Redis-shaped operations of the state machine, the glob matcher and the reply parser. */
function applier(): (operation: Operation) => Reply | null {
  const kv = new KvStateMachine(new MemoryStore());
  let index = 0;
  return (operation) => {
    index++;
    const entry: Entry = { index, term: 1, kind: 'command', data: encodeCommand({ clientId: '', seq: 0, operation }) };
    return (kv.applyBatch([entry])[0] as { reply: Reply | null }).reply;
  };
}
const b = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));

describe('Redis operations in the state machine', () => {
  it('applies SET with NX, XX and GET as Redis does', () => {
    const apply = applier();
    assert.deepEqual(apply({ op: 'set', key: 'k', value: b('1'), when: 'xx', returnPrevious: false }), { kind: 'set', written: false, previous: null });
    assert.deepEqual(apply({ op: 'set', key: 'k', value: b('1'), when: 'nx', returnPrevious: false }), { kind: 'set', written: true, previous: null });
    assert.deepEqual(apply({ op: 'set', key: 'k', value: b('2'), when: 'nx', returnPrevious: true }), { kind: 'set', written: false, previous: b('1') });
    assert.deepEqual(apply({ op: 'set', key: 'k', value: b('3'), when: 'xx', returnPrevious: true }), { kind: 'set', written: true, previous: b('1') });
    assert.deepEqual(apply({ op: 'getdel', key: 'k' }), { kind: 'value', value: b('3') });
    assert.deepEqual(apply({ op: 'getdel', key: 'k' }), { kind: 'value', value: null });
  });

  it('does 64-bit integer arithmetic, refusing overflow and values that are not integers', () => {
    const apply = applier();
    assert.deepEqual(apply({ op: 'incrBy', key: 'n', delta: 5n }), { kind: 'integer', value: 5n });
    assert.deepEqual(apply({ op: 'incrBy', key: 'n', delta: -7n }), { kind: 'integer', value: -2n });
    apply({ op: 'put', key: 'max', value: b('9223372036854775807') });
    assert.deepEqual(apply({ op: 'incrBy', key: 'max', delta: 1n }), { kind: 'error', code: 'BAD_REQUEST', message: 'increment or decrement would overflow' });
    for (const bad of ['1.5', ' 1', '01', '-0', '', 'abc', '99999999999999999999']) {
      apply({ op: 'put', key: 'bad', value: b(bad) });
      assert.deepEqual(apply({ op: 'incrBy', key: 'bad', delta: 1n }), { kind: 'error', code: 'BAD_REQUEST', message: 'value is not an integer or out of range' }, `'${bad}'`);
    }
  });

  it('applies MSET and multi-key DEL as one entry, and FLUSHALL back to the empty digest', () => {
    const empty = new KvStateMachine(new MemoryStore()).digest();
    const kv = new KvStateMachine(new MemoryStore());
    const entry = (index: number, operation: Operation): Entry => ({ index, term: 1, kind: 'command', data: encodeCommand({ clientId: '', seq: 0, operation }) });
    kv.applyBatch([entry(1, { op: 'mset', pairs: [['a', b('1')], ['b', b('2')], ['c', b('3')]] })]);
    assert.equal(kv.size, 3);
    const [deleted] = kv.applyBatch([entry(2, { op: 'delKeys', keys: ['a', 'b', 'zz'] })]);
    assert.deepEqual(deleted?.reply, { kind: 'deleted', count: 2 });
    assert.deepEqual(kv.applyBatch([entry(3, { op: 'append', key: 'c', value: b('45') })])[0]?.reply, { kind: 'integer', value: 3n });
    assert.notEqual(kv.digest(), empty);
    kv.applyBatch([entry(4, { op: 'flushall' })]);
    assert.equal(kv.size, 0);
    assert.equal(kv.digest(), empty, 'the digest covers data only through its items');
  });

  it('encodes and decodes every operation and reply without loss', () => {
    const key = fc.string({ minLength: 1, maxLength: 20 });
    const bytes = fc.uint8Array({ maxLength: 50 });
    const operation: fc.Arbitrary<Operation> = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key, value: bytes, when: fc.constantFrom('always' as const, 'nx' as const, 'xx' as const), returnPrevious: fc.boolean() }),
      fc.record({ op: fc.constant('mset' as const), pairs: fc.array(fc.tuple(key, bytes), { minLength: 1, maxLength: 5 }) }),
      fc.record({ op: fc.constant('delKeys' as const), keys: fc.array(key, { minLength: 1, maxLength: 5 }) }),
      fc.record({ op: fc.constant('incrBy' as const), key, delta: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }) }),
      fc.record({ op: fc.constant('append' as const), key, value: bytes }),
      fc.record({ op: fc.constant('getdel' as const), key }),
      fc.constant({ op: 'flushall' as const }),
    );
    fc.assert(
      fc.property(operation, fc.nat(), (op, seq) => {
        const command = { clientId: 'c', seq, operation: op };
        validateCommand(command);
        const decoded = decodeCommand(encodeCommand(command));
        assert.deepEqual(JSON.stringify(decoded, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v)), JSON.stringify(command, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v)));
      }),
      { seed: 4242, numRuns: 300 },
    );
    for (const reply of [{ kind: 'set', written: true, previous: b('x') }, { kind: 'integer', value: -(1n << 63n) }, { kind: 'value', value: null }] as Reply[]) {
      assert.deepEqual(decodeReply(encodeReply(reply)), reply);
    }
  });

  it('refuses a multi-key command whose keys and values exceed one log record', () => {
    const pairs: [string, Uint8Array][] = Array.from({ length: 3 }, (_, i) => [`k${i}`, new Uint8Array(512 * 1024)]);
    assert.throws(() => validateCommand({ clientId: '', seq: 0, operation: { op: 'mset', pairs } }), /the command carries \d+ bytes of keys and values; the limit is/);
  });
});

describe('glob patterns (KEYS, SCAN MATCH)', () => {
  it('matches like Redis', () => {
    const cases: [string, string, boolean][] = [
      ['*', 'anything', true],
      ['h?llo', 'hello', true],
      ['h?llo', 'hllo', false],
      ['h*llo', 'heeeello', true],
      ['h[ae]llo', 'hallo', true],
      ['h[ae]llo', 'hillo', false],
      ['h[^e]llo', 'hallo', true],
      ['h[^e]llo', 'hello', false],
      ['h[a-b]llo', 'hbllo', true],
      ['h\\*llo', 'h*llo', true],
      ['h\\*llo', 'hello', false],
      ['a*b*c', 'aXXbYYc', true],
      ['a*b*c', 'aXXbYY', false],
      ['', '', true],
      ['user:*:name', 'user:42:name', true],
    ];
    for (const [pattern, text, expected] of cases) assert.equal(globMatch(pattern, text), expected, `${pattern} ~ ${text}`);
  });

  it('stays fast on patterns that would explode a naive backtracker', () => {
    const started = performance.now();
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
    assert.ok(performance.now() - started < 2000);
  });
});

describe('the RESP reply parser', () => {
  it('reads every reply type, split at any byte', () => {
    const wire = Buffer.from('+OK\r\n-ERR bad thing\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:7\r\n_\r\n%1\r\n+k\r\n+v\r\n');
    for (let split = 0; split <= wire.length; split++) {
      const parser = new RespReplyParser();
      parser.push(wire.subarray(0, split));
      const values = [];
      for (let v = parser.next(); v !== undefined; v = parser.next()) values.push(v);
      parser.push(wire.subarray(split));
      for (let v = parser.next(); v !== undefined; v = parser.next()) values.push(v);
      assert.equal(values.length, 8, `split at ${split}`);
      assert.equal(values[0], 'OK');
      assert.ok(values[1] instanceof RespErrorReply && values[1].code === 'ERR');
      assert.equal(values[2], 42n);
      assert.deepEqual(values[3], Buffer.from('abc'));
      assert.equal(values[4], null);
      assert.deepEqual(values[5], [Buffer.from('a'), [7n]]);
      assert.equal(values[6], null);
      assert.deepEqual(values[7], ['k', 'v']);
    }
  });

  it('refuses bytes that are not RESP', () => {
    const parser = new RespReplyParser(1024);
    parser.push(Buffer.from('$99999\r\n'));
    assert.throws(() => parser.next(), /bad RESP bulk length/);
    const other = new RespReplyParser();
    other.push(Buffer.from('?what\r\n'));
    assert.throws(() => other.next(), /unexpected RESP type byte/);
  });
});
