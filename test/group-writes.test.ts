import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Space } from '../src/kv/store.js';
import { forEachChange } from '../src/storage/change-group.js';
import { GroupWrites, type Replaced } from '../src/storage/group-writes.js';
import { RecordIndex } from '../src/storage/record-index.js';

/** What the writer thread would be given: each change it puts, in order, as text. */
function handedOver(writes: GroupWrites): string[] {
  const { changes, bytes } = writes.close();
  const out: string[] = [];
  forEachChange(changes, bytes, (space, key, value) => out.push(`${space} ${key.toString('latin1')}=${value === null ? '(deleted)' : value.toString()}`));
  return out;
}

describe("an uncommitted group's writes", () => {
  it('hands a key written several times to the writer once, with its newest value, and the meta changes last', () => {
    const writes = new GroupWrites();
    writes.set('meta', 'state', Buffer.from('1'));
    writes.set('data', 'a', Buffer.from('one'));
    writes.set('data', 'b', Buffer.from('two'));
    writes.set('session', 'c1', Buffer.from('s'));
    writes.set('data', 'a', null);
    writes.set('meta', 'state', Buffer.from('2'));
    writes.set('data', 'a', Buffer.from('three'));
    assert.equal(writes.keys, 4);
    assert.equal(Buffer.from(writes.get('data', 'a') as Uint8Array).toString(), 'three');
    assert.deepEqual(handedOver(writes), ['data b=two', 'session c1=s', 'data a=three', 'meta state=2']);
    assert.equal(writes.bytes, writes.close().bytes, 'once closed, its bytes are the bytes handed over (meta counted once)');
    assert.equal(Buffer.from(writes.get('data', 'b') as Uint8Array).toString(), 'two', 'still read once closed');
    assert.throws(() => writes.set('data', 'd', null), /closed group/);
  });

  it('takes back a failed batch: the values, the counts and what the writer is given are those before it (seed 31)', () => {
    const space = fc.constantFrom<Space>('data', 'session', 'meta');
    const change = fc.record({ space, key: fc.constantFrom('a', 'b', 'c'), value: fc.option(fc.string({ maxLength: 3 }), { nil: null }) });
    const batch = fc.record({ changes: fc.array(change, { maxLength: 5 }), fails: fc.boolean() });
    fc.assert(
      fc.property(fc.array(batch, { maxLength: 8 }), (batches) => {
        const writes = new GroupWrites();
        // The model: the newest value of each key, and the order keys were first written.
        const model = new Map<string, string | null>();
        for (const { changes, fails } of batches) {
          const mark = writes.mark();
          const bytesBefore = writes.bytes;
          const undo: (Space | string | Replaced)[] = [];
          for (const c of changes) undo.push(c.space, c.key, writes.set(c.space, c.key, c.value === null ? null : Buffer.from(c.value)));
          if (fails) {
            writes.rollBack(mark, undo);
            assert.equal(writes.bytes, bytesBefore);
          } else {
            for (const c of changes) {
              const id = `${c.space} ${c.key}`;
              if (c.space !== 'meta') model.delete(id);
              model.set(id, c.value);
            }
          }
        }
        assert.equal(writes.keys, model.size);
        for (const [id, value] of model) {
          const [space, key] = id.split(' ') as [Space, string];
          const got = writes.get(space, key);
          assert.equal(got === null ? null : Buffer.from(got as Uint8Array).toString(), value, id);
        }
        // Data and session keys in the order of their newest change (older ones superseded), then meta.
        const expected = [...model].map(([id, value]) => `${id}=${value ?? '(deleted)'}`);
        const order = (line: string): number => (line.startsWith('meta') ? 1 : 0);
        assert.deepEqual(handedOver(writes), expected.sort((x, y) => order(x) - order(y)));
      }),
      { seed: 31 },
    );
  });

  it('finds the newest record of each key through sets, deletes and growth, as a Map does (seed 57)', () => {
    const space = fc.constantFrom<Space>('data', 'session');
    // Up to 300 keys: the table grows from 64 slots several times, and probe runs wrap around its end.
    const key = fc.integer({ min: 0, max: 299 }).map((k) => `k${k}`);
    const step = fc.oneof(fc.record({ kind: fc.constant('set' as const), space, key }), fc.record({ kind: fc.constant('delete' as const), space, key }));
    fc.assert(
      fc.property(fc.array(step, { minLength: 300, maxLength: 600 }), (steps) => {
        // Records: offset k holds the (space, key) of the k-th set.
        const records: [Space, string][] = [];
        const index = new RecordIndex({ keyIs: (offset, s, k) => records[offset]![0] === s && records[offset]![1] === k });
        const model = new Map<string, number>();
        for (const { kind, space: s, key: k } of steps) {
          const id = `${s} ${k}`;
          if (kind === 'set') {
            records.push([s, k]);
            assert.equal(index.set(s, k, records.length - 1), model.get(id), `the offset set replaced, ${id}`);
            model.set(id, records.length - 1);
          } else {
            index.delete(s, k);
            model.delete(id);
          }
          assert.equal(index.size, model.size);
        }
        for (const s of ['data', 'session'] as const) for (let k = 0; k < 300; k++) assert.equal(index.get(s, `k${k}`), model.get(`${s} k${k}`), `${s} k${k}`);
      }),
      { seed: 57 },
    );
  });
});
