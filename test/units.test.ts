import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c, crc32cImplementation, crc32cPortable } from '../src/codec/crc32c.js';
import { decodeLog, encodeRecord, logWriteBytesMax } from '../src/codec/log-record.js';
import { RaftLog, termFromHistory } from '../src/core/log.js';
import { ackCount, indexReachedBy, majority } from '../src/core/quorum.js';
import type { Entry } from '../src/core/types.js';
import { decodeCommand, encodeCommand, validateCommand, type Command } from '../src/kv/commands.js';
import { ErrorCode, TandemError } from '../src/shared/errors.js';
import { Prng } from '../src/shared/prng.js';
import { ByteReader, ByteWriter } from '../src/shared/bytes.js';
import { memorySnapshotReader } from '../src/engine/snapshot-reader.js';
import { CommandNames } from '../src/server/resp-commands.js';

const entry = (index: number, term: number, text = ''): Entry => ({ index, term, kind: 'command', data: new TextEncoder().encode(text) });

describe('quorum arithmetic', () => {
  it('a majority is more than half', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4]);
  });

  it('the index reached by k voters is the k-th largest (seed 4711)', () => {
    assert.equal(indexReachedBy([5, 9, 7], 2), 7);
    assert.equal(indexReachedBy([5, 9, 7], 3), 5);
    assert.equal(indexReachedBy([5, 9], 3), 0);
    fc.assert(
      // -1: a voter never heard from (the leader's contact check passes ticks, -1 for none).
      fc.property(fc.array(fc.integer({ min: -1, max: 1000 }), { minLength: 1, maxLength: 9 }), fc.integer({ min: 1, max: 9 }), (indexes, k) => {
        const reached = indexReachedBy(indexes, k);
        if (k > indexes.length) return reached === 0;
        return reached === [...indexes].sort((a, b) => b - a)[k - 1] && indexes.filter((i) => i >= reached).length >= k && indexes.filter((i) => i > reached).length < k;
      }),
      { seed: 4711, numRuns: 2000 },
    );
  });

  it('maps ack levels to voter counts and refuses impossible ones', () => {
    assert.equal(ackCount('leader', 3), 1);
    assert.equal(ackCount('majority', 3), 2);
    assert.equal(ackCount('all', 3), 3);
    assert.equal(ackCount(2, 3), 2);
    assert.equal(ackCount(4, 3), null);
    assert.equal(ackCount(0, 3), null);
    assert.equal(ackCount(1.5, 3), null);
  });
});

describe('the in-memory log', () => {
  it('appends, finds terms, and cuts a conflicting suffix', () => {
    const log = RaftLog.restore(null, [entry(1, 1), entry(2, 1), entry(3, 2)]);
    assert.equal(log.lastIndex(), 3);
    assert.equal(log.termAt(0), 0);
    assert.equal(log.termAt(3), 2);
    assert.equal(log.termAt(4), null);
    const { truncateFrom, removed } = log.appendMatching([entry(2, 1), entry(3, 3), entry(4, 3)]);
    assert.equal(truncateFrom, 3);
    assert.deepEqual(removed.map((e) => e.term), [2]);
    assert.equal(log.lastIndex(), 4);
    assert.equal(log.termAt(3), 3);
  });

  it('counts the payload bytes it holds through appends, cuts and compactions', () => {
    const log = RaftLog.restore(null, [entry(1, 1, 'a'.repeat(10)), entry(2, 1, 'b'.repeat(20)), entry(3, 1, 'c'.repeat(30))]);
    assert.equal(log.payloadBytes, 60);
    log.appendMatching([entry(3, 2, 'd'.repeat(5)), entry(4, 2, 'e'.repeat(7))]);
    assert.equal(log.payloadBytes, 10 + 20 + 5 + 7);
    // Keeping at most 30 bytes behind index 4: entries 4 (7 B) and 3 (5 B) fit, 2 (20 B) does not.
    assert.equal(log.entriesWithin(4, 30, 100), 2);
    assert.equal(log.entriesWithin(4, 1000, 3), 3, 'the entry limit holds too');
    log.compact(2);
    assert.equal(log.payloadBytes, 12);
    log.resetTo({ index: 10, term: 3, config: { voters: ['a'], learners: [] }, termStarts: [] });
    assert.equal(log.payloadBytes, 0);
  });

  it('ignores entries it already has (duplicated or reordered messages)', () => {
    const log = RaftLog.restore(null, [entry(1, 1), entry(2, 1)]);
    const result = log.appendMatching([entry(1, 1), entry(2, 1)]);
    assert.equal(result.truncateFrom, null);
    assert.equal(log.lastIndex(), 2);
  });

  it('finds where two logs may agree a whole term back', () => {
    const log = RaftLog.restore(null, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2), entry(5, 4)]);
    assert.equal(log.findConflictByTerm(5, 3), 4);
    assert.equal(log.findConflictByTerm(5, 1), 2);
    assert.equal(log.findConflictByTerm(9, 9), 5);
  });

  it('compacts, keeps the boundary term, and keeps a term history for snapshots', () => {
    const log = RaftLog.restore(null, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 3)]);
    log.compact(3);
    assert.equal(log.termAt(3), 2);
    assert.equal(log.termAt(2), null);
    const history = log.termStartsUpTo(4);
    assert.equal(termFromHistory(history, 2), 1);
    assert.equal(termFromHistory(history, 3), 2);
    assert.equal(termFromHistory(history, 4), 3);
    assert.equal(termFromHistory([[5, 10]], 3), null);
  });

  it('drops applied payloads from memory but still knows their terms, and refuses to hand them out', () => {
    const log = RaftLog.restore(null, [entry(1, 1, 'aaaa'), entry(2, 1, 'bbbb'), entry(3, 2, 'cccc'), entry(4, 2, 'dd'), entry(5, 3, 'e')]);
    // 15 bytes in all. Keep at most 2, but not past index 3: entries 1..3 go.
    assert.equal(log.evictionPoint(2, 3), 3);
    assert.equal(log.evictionPoint(2, 5), 4, 'down to the byte budget when the limit allows: 4 (2 B) goes too, 5 (1 B) stays');
    assert.equal(log.evictionPoint(3, 5), 3, 'no further than needed: 4 and 5 fit in 3 bytes');
    log.evictThrough(3);
    assert.equal(log.coldThrough, 3);
    assert.equal(log.payloadBytes, 3);
    assert.deepEqual([1, 2, 3, 4, 5].map((i) => log.termAt(i)), [1, 1, 2, 2, 3]);
    assert.throws(() => log.slice(3, 5), /not in memory/);
    assert.throws(() => log.entryAt(2), /no entry 2/);
    assert.throws(() => log.truncateFrom(3), /cold entries/);
    assert.deepEqual(log.slice(4, 5).map((e) => e.index), [4, 5]);
    assert.equal(log.entriesWithin(5, 1000, 100), 2, 'cold entries are never kept behind a snapshot (their sizes are unknown)');
    log.compact(2);
    assert.equal(log.termAt(2), 1);
    assert.equal(log.termAt(3), 2, 'a cold entry after the snapshot keeps its term');
    assert.equal(log.coldThrough, 3);
    log.evictThrough(5);
    assert.equal(log.lastTerm(), 3, 'the last term of a log all on disk');
    assert.equal(log.lastIndex(), 5);
    log.push(entry(6, 3, 'f'));
    assert.deepEqual(log.slice(6, 6).map((e) => e.term), [3]);
  });

  it('rebuilds a log whose older entries recovery left on disk', () => {
    const meta = { index: 10, term: 2, config: { voters: ['a'], learners: [] }, termStarts: [[1, 1], [2, 8]] as [number, number][] };
    const cold = { through: 14, termStarts: [[2, 8], [3, 12], [4, 14]] as [number, number][], configEntries: [] };
    const log = RaftLog.restore(meta, [entry(15, 4), entry(16, 5)], cold);
    assert.deepEqual([10, 11, 12, 13, 14, 15, 16].map((i) => log.termAt(i)), [2, 2, 3, 3, 4, 4, 5]);
    assert.equal(log.coldThrough, 14);
    assert.equal(log.findConflictByTerm(16, 3), 13);
  });

  it('agrees with a plain array of terms through appends, cuts, evictions and compactions', () => {
    console.log('# fast-check seed 8');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 6 }), newTerm: fc.boolean() }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('evict' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('compact' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const log = RaftLog.restore(null, []);
        const terms: number[] = [0]; // terms[i]: the term of index i (0: before the log)
        let term = 1;
        for (const o of ops) {
          const last = terms.length - 1;
          if (o.kind === 'append') {
            if (o.newTerm) term++;
            for (let k = 0; k < o.count; k++) {
              log.push(entry(terms.length, term, 'x'.repeat(1 + (terms.length % 5))));
              terms.push(term);
            }
          } else if (o.kind === 'cut') {
            const from = log.coldThrough + 1 + (o.at % Math.max(1, last - log.coldThrough));
            if (from > last) continue;
            log.truncateFrom(from);
            terms.length = from;
          } else if (o.kind === 'evict') {
            log.evictThrough(log.coldThrough + (o.at % (last - log.coldThrough + 1)));
          } else {
            log.compact(log.snapshotIndex + (o.at % (last - log.snapshotIndex + 1)));
          }
          assert.equal(log.lastIndex(), terms.length - 1);
          assert.equal(log.lastTerm(), terms[terms.length - 1]);
          for (let i = log.snapshotIndex; i < terms.length; i++) assert.equal(log.termAt(i), terms[i], `term of ${i}`);
          for (let t = 0; t <= term + 1; t++) {
            // The plain definition: walk back while the term is above t (not past the snapshot).
            let expected = terms.length - 1;
            while (expected > log.snapshotIndex && (terms[expected] as number) > t) expected--;
            assert.equal(log.findConflictByTerm(terms.length - 1, t), expected, `conflict search for term ${t}`);
          }
          let bytes = 0;
          for (let i = log.coldThrough + 1; i < terms.length; i++) bytes += log.entryAt(i).data.length;
          assert.equal(log.payloadBytes, bytes);
        }
      }),
      { seed: 8, numRuns: 300 },
    );
  });
});

describe('the seeded PRNG', () => {
  it('replays exactly from its seed and spreads values', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    assert.deepEqual(xs, Array.from({ length: 100 }, () => b.nextU32()));
    assert.notDeepEqual(xs, Array.from({ length: 100 }, () => new Prng(43).nextU32()));
    const r = new Prng(7);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[r.int(0, 3)]!++;
    for (const n of counts) assert.ok(n > 800 && n < 1200, `uneven: ${counts.join(',')}`);
  });
});

describe('CRC32C and log records', () => {
  it('computes the standard check value', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  });

  it('agrees with the byte-at-a-time definition at every length and split (native and slicing-by-8)', () => {
    console.log('# fast-check seed 5');
    const bytewise = (bytes: Uint8Array, crc = 0): number => {
      let c = (crc ^ 0xffffffff) >>> 0;
      for (const byte of bytes) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(100), (bytes, cut) => {
        const at = Math.min(cut, bytes.length);
        for (const crc of [crc32c, crc32cPortable]) {
          assert.equal(crc(bytes), bytewise(bytes));
          assert.equal(crc(bytes.subarray(at), crc(bytes.subarray(0, at))), bytewise(bytes));
        }
      }),
      { seed: 5, numRuns: 500 },
    );
    // Known vectors (RFC 3720 B.4): 32 zeros, 32 0xff bytes, 0..31 ascending.
    for (const crc of [crc32c, crc32cPortable]) {
      assert.equal(crc(new Uint8Array(32)), 0x8a9136aa);
      assert.equal(crc(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
      assert.equal(crc(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    }
  });

  it('is the native implementation here, and it agrees with the portable one on large buffers and views', () => {
    // CI runs on linux-x64, which @node-rs/crc32 ships a binary for: the portable code there would be a silent slowdown.
    assert.equal(crc32cImplementation, 'native');
    console.log('# fast-check seed 6');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 20_000 }), fc.nat(20_000), fc.nat(20_000), fc.nat(0xffffffff), (bytes, from, to, start) => {
        const view = bytes.subarray(Math.min(from, to, bytes.length), Math.min(Math.max(from, to), bytes.length));
        assert.equal(crc32c(view, start), crc32cPortable(view, start));
        assert.equal(crc32c(Buffer.from(view.buffer, view.byteOffset, view.length)), crc32cPortable(view));
      }),
      { seed: 6, numRuns: 300 },
    );
  });

  it('round-trips records of every kind', () => {
    const entries: Entry[] = [entry(1, 1, 'hello'), { index: 2, term: 1, kind: 'noop', data: new Uint8Array(0) }, { index: 3, term: 2, kind: 'config', data: new Uint8Array(0), config: { voters: ['a', 'b'], learners: ['c'] } }];
    const file = Buffer.concat(entries.map(encodeRecord));
    const { entries: back, tornBytes } = decodeLog(file, 'log');
    assert.equal(tornBytes, 0);
    assert.deepEqual(back.map((e) => [e.index, e.term, e.kind]), entries.map((e) => [e.index, e.term, e.kind]));
    assert.deepEqual(back[2]?.config, { voters: ['a', 'b'], learners: ['c'] });
    assert.equal(Buffer.from(back[0]!.data).toString(), 'hello');
  });

  it('cuts a torn last record at any length', () => {
    const records = [encodeRecord(entry(1, 1, 'aaaa')), encodeRecord(entry(2, 1, 'bbbbbbbb'))];
    const full = Buffer.concat(records);
    for (let cut = records[0]!.length; cut < full.length; cut++) {
      const { entries, validBytes, tornBytes } = decodeLog(full.subarray(0, cut), 'log');
      assert.equal(entries.length, 1, `cut at ${cut}`);
      assert.equal(validBytes, records[0]!.length);
      assert.equal(tornBytes, cut - records[0]!.length);
    }
  });

  it('refuses damage before the end of the log, naming the file and offset', () => {
    const records = [encodeRecord(entry(1, 1, 'aaaa')), encodeRecord(entry(2, 1, 'bbbb')), encodeRecord(entry(3, 1, 'cccc'))];
    const file = Buffer.concat(records);
    const offset = records[0]!.length + 12;
    file[offset] = file[offset]! ^ 0xff;
    assert.throws(() => decodeLog(file, 'segment-1.log'), (error: unknown) => {
      assert.ok(error instanceof TandemError);
      assert.equal(error.code, ErrorCode.corrupt);
      assert.match(error.message, /segment-1\.log/);
      assert.match(error.message, new RegExp(`offset ${records[0]!.length}`));
      return true;
    });
  });

  it('a length field that claims too much is refused before anything is allocated', () => {
    const record = encodeRecord(entry(1, 1, 'x'));
    const middle = Buffer.concat([record, record, record]);
    middle.writeUInt32LE(0xfffffff0, record.length);
    assert.throws(() => decodeLog(middle, 'log'), /out of range at offset/);
  });

  it('reads zeros after the last record as space written ahead, not as damage', () => {
    const record = encodeRecord(entry(1, 1, 'x'));
    const { entries, validBytes, tornBytes } = decodeLog(Buffer.concat([record, Buffer.alloc(5000)]), 'log');
    assert.equal(entries.length, 1);
    assert.equal(validBytes, record.length);
    assert.equal(tornBytes, 0);
  });

  // One good record, then a last write of four 700-byte records, then zeros written ahead.
  const tornFixture = (): { file: Buffer; first: number; written: number } => {
    const first = encodeRecord(entry(1, 1, 'first'));
    const last = [2, 3, 4, 5].map((i) => encodeRecord(entry(i, 1, String(i).repeat(700))));
    const file = Buffer.concat([first, ...last, Buffer.alloc(4096)]);
    return { file, first: first.length, written: first.length + last.reduce((n, r) => n + r.length, 0) };
  };

  it('cuts a last write whose sectors reached the disk out of order (one in the middle missing)', () => {
    const { file, first } = tornFixture();
    file.fill(0, 512, 1024); // a whole sector of the last write never written (inside its first record)
    const { entries, validBytes, tornBytes } = decodeLog(file, 'log');
    assert.deepEqual(entries.map((e) => e.index), [1]);
    assert.equal(validBytes, first);
    assert.equal(tornBytes, file.length - first);
  });

  it('cuts a last write whose final sectors are missing, the record before them intact', () => {
    const { file, written } = tornFixture();
    const cutAt = written - (written % 512) - 512;
    file.fill(0, cutAt, written);
    const { entries } = decodeLog(file, 'log');
    assert.ok(entries.length >= 1 && entries.length < 5, `kept ${entries.length}`);
    assert.ok(entries.every((e, k) => e.index === k + 1));
  });

  it('refuses a flipped byte before the last record, though zeros follow the records', () => {
    const { file, first } = tornFixture();
    file[first + 100] = file[first + 100]! ^ 0x04;
    assert.throws(() => decodeLog(file, 'segment-7.log'), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(`offset ${first}`));
  });

  it('refuses a length flipped to claim past the end of the data when intact records follow it', () => {
    const records = [1, 2, 3, 4, 5].map((i) => encodeRecord(entry(i, 1, String(i).repeat(300))));
    const file = Buffer.concat([...records, Buffer.alloc(4096)]);
    const second = records[0]!.length;
    const dataEnd = records.reduce((n, r) => n + r.length, 0);
    // The second record's length, one bit flipped, now reaches past the last record (still in range).
    file.writeUInt32LE(file.readUInt32LE(second) ^ 0x1000, second);
    assert.ok(second + 25 + file.readUInt32LE(second) >= dataEnd, 'the flipped length claims past the data');
    assert.throws(() => decodeLog(file, 'segment-9.log'), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(`offset ${second}`));
  });

  it('refuses a flipped byte followed by an intact record whose value holds sectors of zeros', () => {
    const first = encodeRecord(entry(1, 1, 'first'));
    const damaged = encodeRecord(entry(2, 1, 'd'.repeat(200)));
    const zeros = encodeRecord({ index: 3, term: 1, kind: 'command', data: new Uint8Array(4096) });
    const file = Buffer.concat([first, damaged, zeros, encodeRecord(entry(4, 1, 'last')), Buffer.alloc(4096)]);
    file[first.length + 100] = file[first.length + 100]! ^ 0x04;
    assert.throws(() => decodeLog(file, 'segment-10.log'), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(`offset ${first.length}`));
  });

  it('refuses damage followed by more data than one write holds, even beside a zeroed sector', () => {
    const first = encodeRecord(entry(1, 1, 'first'));
    const rest: Buffer[] = [];
    let bytes = 0;
    for (let i = 2; bytes <= logWriteBytesMax; i++) {
      const record = encodeRecord(entry(i, 1, 'r'.repeat(4000)));
      rest.push(Buffer.from(record));
      bytes += record.length;
    }
    const file = Buffer.concat([first, ...rest, Buffer.alloc(1024)]);
    file.fill(0, 1024, 1536);
    assert.throws(() => decodeLog(file, 'segment-8.log'), /damaged before its end/);
  });
});

describe('commands', () => {
  it('round-trips every operation, including binary keys and values', () => {
    const commands: Command[] = [
      { clientId: 'c1', seq: 7, operation: { op: 'put', key: '\u0000\u00ff\u0080k', value: Uint8Array.of(0, 255, 1) } },
      { clientId: '', seq: 0, operation: { op: 'del', key: 'k' } },
      { clientId: 'c2', seq: 2 ** 40, operation: { op: 'cas', key: 'k', expected: null, value: Uint8Array.of(1) } },
    ];
    for (const command of commands) assert.deepEqual(decodeCommand(encodeCommand(command)), command);
  });

  it('refuses empty keys and oversized keys or values with a clear error', () => {
    assert.throws(() => validateCommand({ clientId: '', seq: 0, operation: { op: 'del', key: '' } }), /key is empty/);
    assert.throws(() => validateCommand({ clientId: '', seq: 0, operation: { op: 'del', key: 'k'.repeat(2000) } }), /key is 2000 bytes/);
    assert.throws(() => validateCommand({ clientId: '', seq: 0, operation: { op: 'put', key: 'k', value: new Uint8Array(2 * 1024 * 1024) } }), /limit/);
  });

  it('refuses garbage as a command', () => {
    assert.throws(() => decodeCommand(Uint8Array.of(9, 9, 9)), (e: unknown) => e instanceof TandemError && e.code === ErrorCode.corrupt);
    assert.throws(() => decodeCommand(Uint8Array.of(1, 255, 255, 255, 255)), (e: unknown) => e instanceof TandemError);
  });
});

describe('byte writers over the shared buffer pool', () => {
  it('hand out results that later writers and records never overwrite', () => {
    // Results are views of shared 8 KiB slabs: each must own its bytes.
    const written: [number, Uint8Array][] = [];
    for (let n = 0; n < 3000; n++) {
      const w = new ByteWriter(n % 7 === 0 ? 1 : 64);
      for (let k = 0; k <= n % 40; k++) w.u32(n);
      written.push([n, w.finish()]);
      encodeRecord({ index: n + 1, term: 1, kind: 'command', data: new Uint8Array(n % 300).fill(n % 251) });
    }
    for (const [n, bytes] of written) {
      assert.equal(bytes.length, 4 * ((n % 40) + 1));
      assert.ok(!Buffer.isBuffer(bytes), 'a plain Uint8Array, as before');
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let at = 0; at < bytes.length; at += 4) assert.equal(view.getUint32(at, true), n, `writer ${n} at ${at}`);
    }
  });
});

describe('byte writers', () => {
  it('write a latin1 key as Buffer.from(key, "latin1") does, after its length, and u64s that read back', () => {
    const keys = ['', 'k', '\u0000\u00ff\u0080k', '\u0100\u1234\uffffz', 'x'.repeat(5000)];
    for (const key of keys) {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(key.length);
      assert.deepEqual(Buffer.from(new ByteWriter(2).latin1(key).finish()), Buffer.concat([length, Buffer.from(key, 'latin1')]), `key of ${key.length}`);
    }
    for (const value of [0, 1, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      assert.equal(new ByteReader(new ByteWriter(1).u64(value).u32(value % 2 ** 32).finish()).u64(), value);
    }
  });
});

describe('command names found from their bytes', () => {
  it('match an upper-case name whatever the ASCII case, and nothing else (seed 2027)', () => {
    const known = ['SET', 'GET', 'MSET', 'TANDEM.EXEC', 'CLIENT', 'DEL', 'S'];
    const names = new CommandNames(known);
    assert.equal(names.find(Buffer.from('tAnDeM.eXeC')), 'TANDEM.EXEC');
    assert.equal(names.find(Buffer.from('\u00dfet', 'latin1')), null, "not by JavaScript's upper case ('ß' is 'SS')");
    assert.equal(names.find(Buffer.alloc(0)), null);
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...known, ...known.map((n) => n.toLowerCase())), fc.stringMatching(/^[a-zA-Z.\x80-\xff]{0,12}$/)), (name) => {
        const bytes = Buffer.from(name, 'latin1');
        const upper = [...name].map((c) => (c >= 'a' && c <= 'z' ? c.toUpperCase() : c)).join('');
        return names.find(bytes) === (known.includes(upper) ? upper : null);
      }),
      { seed: 2027, numRuns: 3000 },
    );
  });
});

describe('the byte reader', () => {
  it('reads back what the writer wrote: integers at every width and edge, strings, latin1 keys, views (seed 11)', () => {
    console.log('# fast-check seed 11');
    const field = fc.oneof(
      fc.record({ kind: fc.constant('u8' as const), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('u32' as const), value: fc.oneof(fc.constantFrom(0, 0x7fffffff, 0x80000000, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })) }),
      fc.record({ kind: fc.constant('u64' as const), value: fc.oneof(fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()) }),
      fc.record({ kind: fc.constant('string' as const), value: fc.string({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('latin1' as const), value: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString('latin1')) }),
      fc.record({ kind: fc.constant('bytes' as const), value: fc.uint8Array({ maxLength: 8 }) }),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 12 }), fc.nat(16), (fields, pad) => {
        const w = new ByteWriter(4);
        for (let i = 0; i < pad; i++) w.u8(i);
        for (const f of fields) {
          if (f.kind === 'u8') w.u8(f.value);
          else if (f.kind === 'u32') w.u32(f.value);
          else if (f.kind === 'u64') w.u64(f.value);
          else if (f.kind === 'string') w.string(f.value);
          else if (f.kind === 'latin1') w.bytes(Buffer.from(f.value, 'latin1'));
          else w.bytes(f.value);
        }
        // Read from a view that starts part-way into a larger buffer, as entries' commands are.
        const whole = w.finish();
        const r = new ByteReader(whole.subarray(pad));
        for (const f of fields) {
          if (f.kind === 'u8') assert.equal(r.u8(), f.value);
          else if (f.kind === 'u32') assert.equal(r.u32(), f.value);
          else if (f.kind === 'u64') assert.equal(r.u64(), f.value);
          else if (f.kind === 'string') assert.equal(r.string(), f.value);
          else if (f.kind === 'latin1') assert.equal(r.latin1(), f.value);
          else assert.deepEqual([...r.sharedBytes()], [...f.value]);
        }
        r.end();
        assert.throws(() => r.u8(), (e: unknown) => e instanceof TandemError && e.code === ErrorCode.corrupt);
      }),
      { seed: 11, numRuns: 500 },
    );
    assert.throws(() => new ByteReader(Uint8Array.of(0, 0, 0, 0, 0, 0, 0x20, 0)).u64(), /integer too large/);
    assert.throws(() => new ByteReader(Uint8Array.of(2, 0, 0, 0, 65)).latin1(), /needs 2 bytes at offset 4, has 1/);
    assert.throws(() => new ByteReader(Uint8Array.of(9, 0, 0, 0)).latin1(4), /field of 9 bytes exceeds the limit of 4/);
  });
});

describe('a snapshot read from the parts it was built in', () => {
  it('gives every range of the joined bytes, within a part or across parts, empty parts included', () => {
    console.log('# fast-check seed 7');
    const meta = { index: 1, term: 1, config: { voters: ['a'], learners: [] }, termStarts: [] };
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }), fc.nat(4000), fc.nat(4000), (parts, from, to) => {
        const joined = Buffer.concat(parts);
        const reader = memorySnapshotReader(meta, parts);
        assert.equal(reader.bytes, joined.length);
        const lo = Math.min(from, to, joined.length);
        const hi = Math.min(Math.max(from, to), joined.length);
        let got: Uint8Array | null = null;
        reader.read(lo, hi - lo, (error, chunk) => {
          assert.equal(error, null);
          got = chunk;
        });
        assert.ok(got !== null, 'a reader in memory answers at once');
        assert.deepEqual(Buffer.from(got), joined.subarray(lo, hi));
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});
