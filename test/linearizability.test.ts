import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkHistory, checkKeyValueHistory, registerModel, type HistoryOp, type RegisterInput, type RegisterOutput } from '../src/sim/linearizability.js';

type Op = HistoryOp<RegisterInput, RegisterOutput>;
let nextId = 0;
const op = (call: number, ret: number, input: RegisterInput, output: RegisterOutput | undefined): Op => ({ id: nextId++, call, ret, input, output });
const put = (value: string): RegisterInput => ({ op: 'put', value });
const get: RegisterInput = { op: 'get' };

describe('the linearizability checker', () => {
  it('accepts a sequential history that follows the model', () => {
    const history = [op(0, 1, put('a'), null), op(2, 3, get, 'a'), op(4, 5, { op: 'del' }, 1), op(6, 7, get, null)];
    assert.equal(checkHistory(registerModel, history).result, 'ok');
  });

  it('rejects a read of a value that was overwritten before the read began', () => {
    const history = [op(0, 1, put('a'), null), op(2, 3, put('b'), null), op(4, 5, get, 'a')];
    assert.equal(checkHistory(registerModel, history).result, 'violation');
  });

  it('accepts either order for concurrent operations', () => {
    const history = [op(0, 10, put('a'), null), op(1, 9, put('b'), null), op(11, 12, get, 'a')];
    assert.equal(checkHistory(registerModel, history).result, 'ok');
    const other = [op(0, 10, put('a'), null), op(1, 9, put('b'), null), op(11, 12, get, 'b')];
    assert.equal(checkHistory(registerModel, other).result, 'ok');
  });

  it('rejects two reads that see the writes in opposite orders (no single order exists)', () => {
    const history = [
      op(0, 100, put('a'), null),
      op(0, 100, put('b'), null),
      op(10, 20, get, 'a'),
      op(30, 40, get, 'b'),
      op(50, 60, get, 'a'),
    ];
    assert.equal(checkHistory(registerModel, history).result, 'violation');
  });

  it('lets an operation of unknown outcome take effect or not', () => {
    const tookEffect = [op(0, Infinity, put('a'), undefined), op(5, 6, get, 'a')];
    const didNot = [op(0, Infinity, put('a'), undefined), op(5, 6, get, null)];
    assert.equal(checkHistory(registerModel, tookEffect).result, 'ok');
    assert.equal(checkHistory(registerModel, didNot).result, 'ok');
    const flipFlop = [op(0, Infinity, put('a'), undefined), op(5, 6, get, 'a'), op(7, 8, get, null)];
    assert.equal(checkHistory(registerModel, flipFlop).result, 'violation', 'once seen, a write cannot be unseen');
  });

  it('checks compare-and-set outcomes', () => {
    const ok = [op(0, 1, put('a'), null), op(2, 3, { op: 'cas', expected: 'a', value: 'b' }, true), op(4, 5, get, 'b')];
    assert.equal(checkHistory(registerModel, ok).result, 'ok');
    const wrong = [op(0, 1, put('a'), null), op(2, 3, { op: 'cas', expected: 'a', value: 'b' }, false), op(4, 5, get, 'a')];
    assert.equal(checkHistory(registerModel, wrong).result, 'violation');
  });

  it('partitions by key: each key is its own register', () => {
    const history = [
      { ...op(0, 1, put('a'), null), key: 'x' },
      { ...op(2, 3, get, null), key: 'y' },
      { ...op(4, 5, get, 'a'), key: 'x' },
      { ...op(6, 7, get, 'a'), key: 'y' },
    ];
    assert.deepEqual(checkKeyValueHistory(history), { violations: ['y'], unknown: [] });
  });

  it('accepts every history produced by a real sequential register, however the calls overlap', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('put', 'get', 'del'), fc.nat(3), fc.nat(20), fc.nat(20)), { maxLength: 14 }), (script) => {
        // Execute atomically at a point inside [call, ret]; record what a real register answers.
        let state: string | null = null;
        const events = script.map(([kind, value, before, after], k) => ({ kind, value: `v${value}`, point: k * 100 + 50, call: k * 100 + 50 - before, ret: k * 100 + 50 + after }));
        const history: Op[] = events.map((e) => {
          if (e.kind === 'put') {
            state = e.value;
            return op(e.call, e.ret, put(e.value), null);
          }
          if (e.kind === 'del') {
            const count = state === null ? 0 : 1;
            state = null;
            return op(e.call, e.ret, { op: 'del' }, count);
          }
          return op(e.call, e.ret, get, state);
        });
        return checkHistory(registerModel, history).result === 'ok';
      }),
    );
  });
});
