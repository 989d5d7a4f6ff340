import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeRecord, encodeRecord } from '../src/codec/log-record.js';
import { decodeMessage, encodeMessageParts } from '../src/codec/messages.js';
import type { Entry, Message } from '../src/core/types.js';
import { TandemError } from '../src/shared/errors.js';

const id = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
const n = fc.nat(2 ** 40);
const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ index: n, term: n, kind: fc.constant('command' as const), data: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ index: n, term: n, kind: fc.constant('noop' as const), data: fc.constant(new Uint8Array(0)) }),
  fc.record({
    index: n,
    term: n,
    kind: fc.constant('config' as const),
    data: fc.constant(new Uint8Array(0)),
    config: fc.record({ voters: fc.array(id, { minLength: 1, maxLength: 5 }), learners: fc.array(id, { maxLength: 2 }) }),
  }),
);
const base = { from: id, to: id, term: n };
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('append' as const), ...base, prevIndex: n, prevTerm: n, commit: n, entries: fc.array(entryArb, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('appendResp' as const), ...base, success: fc.boolean(), index: n, hintIndex: n, hintTerm: n }),
  fc.record({ type: fc.constant('heartbeat' as const), ...base, commit: n, leaderCommit: n, readRound: n }),
  fc.record({ type: fc.constant('heartbeatResp' as const), ...base, readRound: n, lastIndex: n }),
  fc.record({ type: fc.constantFrom('vote' as const, 'preVote' as const), ...base, lastIndex: n, lastTerm: n, transfer: fc.boolean() }),
  fc.record({ type: fc.constantFrom('voteResp' as const, 'preVoteResp' as const), ...base, granted: fc.boolean() }),
  fc.record({
    type: fc.constant('snapshot' as const),
    ...base,
    meta: fc.record({ index: n, term: n, config: fc.record({ voters: fc.array(id, { minLength: 1, maxLength: 3 }), learners: fc.constant([]) }), termStarts: fc.array(fc.tuple(n, n), { maxLength: 3 }) }),
    data: fc.option(fc.uint8Array({ maxLength: 64 })),
  }),
  fc.record({ type: fc.constant('timeoutNow' as const), ...base }),
  fc.record({ type: fc.constant('readIndex' as const), ...base, requestId: n }),
  fc.record({ type: fc.constant('readIndexResp' as const), ...base, requestId: n, index: fc.option(n) }),
);

/** A message's bytes in one buffer, as the transport sends them (its parts, joined). */
const encodeMessage = (m: Message): Uint8Array => new Uint8Array(Buffer.concat(encodeMessageParts(m)));

/** Compares after normalizing byte arrays (decoding yields Buffers or copies). */
const plain = (m: Message): unknown => JSON.parse(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)));

describe('peer message codec', () => {
  it('round-trips every message type', () => {
    fc.assert(fc.property(messageArb, (m) => assert.deepEqual(plain(decodeMessage(encodeMessage(m))), plain(m))));
  });

  it('writes an append as its head and each entry\'s own record, and a snapshot\'s data, without copying them', () => {
    const entries: Entry[] = [1, 2, 3].map((index) => ({ index, term: 1, kind: 'command', data: new Uint8Array(5000).fill(index) }));
    const append: Message = { type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries };
    const parts = encodeMessageParts(append);
    assert.equal(parts.length, 4);
    entries.forEach((entry, k) => assert.equal(parts[k + 1], encodeRecord(entry)));
    assert.deepEqual(plain(decodeMessage(new Uint8Array(Buffer.concat(parts)))), plain(append));
    const data = new Uint8Array(3000).fill(7);
    const snapshot: Message = { type: 'snapshot', from: 'a', to: 'b', term: 1, meta: { index: 9, term: 1, config: { voters: ['a'], learners: [] }, termStarts: [] }, data };
    const snapshotParts = encodeMessageParts(snapshot);
    assert.equal(snapshotParts[snapshotParts.length - 1], data);
    assert.deepEqual(plain(decodeMessage(new Uint8Array(Buffer.concat(snapshotParts)))), plain(snapshot));
  });

  it('refuses every truncation of a valid message with a TandemError, never a crash', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m);
        for (let cut = 0; cut < bytes.length; cut++) {
          assert.throws(() => decodeMessage(bytes.subarray(0, cut)), TandemError);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('answers random bytes with a message or a TandemError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (error) {
          if (!(error instanceof TandemError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses an entry count the bytes cannot hold before allocating anything', () => {
    const bytes = encodeMessage({ type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [] });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setUint32(bytes.length - 4, 0xffffffff, true);
    assert.throws(() => decodeMessage(bytes), /cannot fit/);
  });

  it('catches a flipped bit inside an entry by its checksum', () => {
    const bytes = encodeMessage({ type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ index: 1, term: 1, kind: 'command', data: Buffer.from('payload') }] });
    bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01;
    assert.throws(() => decodeMessage(bytes), /checksum/);
  });
});

describe('received entries', () => {
  it('share the message bytes and are written to the log as the very records received', () => {
    const sent: Entry[] = [
      { index: 7, term: 2, kind: 'command', data: Uint8Array.from([1, 2, 3]) },
      { index: 8, term: 2, kind: 'command', data: Uint8Array.from([4, 5]) },
    ];
    const bytes = encodeMessage({ type: 'append', from: 'a', to: 'b', term: 2, prevIndex: 6, prevTerm: 2, commit: 6, entries: sent });
    const received = decodeMessage(bytes);
    assert.ok(received.type === 'append');
    const records = sent.map((entry) => Buffer.from(encodeRecord(entry)));
    for (const [k, entry] of received.entries.entries()) {
      assert.equal(entry.data.buffer, bytes.buffer, 'the entry data is a view of the message, not a copy');
      const record = encodeRecord(entry);
      assert.equal(record.buffer, bytes.buffer, 'its record is the received bytes, not encoded again');
      assert.deepEqual(Buffer.from(record), records[k]);
    }
  });
});

describe('config records', () => {
  it('carry the configuration and the entry’s own bytes (a new member’s addresses)', () => {
    const entry: Entry = { index: 7, term: 2, kind: 'config', config: { voters: ['a', 'b'], learners: ['c'] }, data: new Uint8Array(Buffer.from('{"add":{"id":"c"}}')) };
    const read = decodeRecord(encodeRecord(entry), 0);
    assert.equal(read.kind, 'record');
    if (read.kind === 'record') {
      assert.deepEqual(read.entry.config, entry.config);
      assert.equal(Buffer.from(read.entry.data).toString(), '{"add":{"id":"c"}}');
    }
    const plain = decodeRecord(encodeRecord({ ...entry, data: new Uint8Array(0) }), 0);
    assert.ok(plain.kind === 'record' && plain.entry.data.length === 0);
  });
});
