import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Entry } from '../src/core/types.js';
import { encodeCommand } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/machine.js';
import { MemoryStore } from '../src/kv/store.js';
import { LmdbStore } from '../src/storage/lmdb-store.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const put = (index: number, key: string, value: string): Entry => ({
  index,
  term: 1,
  kind: 'command',
  data: encodeCommand({ clientId: 'c', seq: index, operation: { op: 'put', key, value: Buffer.from(value) } }),
});

describe('the LMDB store', () => {
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

  it('a batch that fails part-way leaves nothing behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-lmdb-'));
    dirs.push(dir);
    const store = new LmdbStore(dir);
    assert.throws(() =>
      store.batch(() => {
        store.put('data', 'half', Buffer.from('x'));
        throw new Error('boom');
      }),
    );
    assert.equal(store.get('data', 'half'), undefined);
  });
});
