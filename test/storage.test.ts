import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Entry, SnapshotMeta } from '../src/core/types.js';
import { encodeRecord } from '../src/codec/log-record.js';
import type { PersistWork, SnapshotReader } from '../src/engine/interfaces.js';
import { ErrorCode, TandemError } from '../src/shared/errors.js';
import { FileStorage, removeDataDir } from '../src/storage/file-storage.js';
import { SnapshotFileReader, SnapshotFileWriter } from '../src/storage/snapshot-file.js';
import { stagedSnapshotName } from '../src/shared/staged-snapshots.js';
import { recordsEnd } from './support/log-files.js';
import { waitFor } from './support/process-cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDataDir));
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-storage-'));
  dirs.push(dir);
  return dir;
}

const entry = (index: number, term: number, text = `value-${index}`): Entry => ({ index, term, kind: 'command', data: Buffer.from(text) });
const range = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term));

function work(partial: Partial<PersistWork>): PersistWork {
  return { hardState: null, installSnapshot: null, compactTo: null, truncateFrom: null, entries: [], rollback: [], sync: true, ...partial };
}

/** A callback-style call as a promise. */
function call(fn: (done: (error: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((error) => (error === null ? resolve() : reject(error))));
}

/** Writes a snapshot this node takes, part by part, as the engine does, and waits until it is durable. */
async function saveSnapshot(storage: FileStorage, meta: SnapshotMeta, parts: readonly Uint8Array[]): Promise<void> {
  const sink = storage.createSnapshot(meta);
  for (const part of parts) await call((done) => sink.write(part, done));
  await call((done) => sink.finish(done));
}

function persist(storage: FileStorage, w: Partial<PersistWork>): Promise<void> {
  return call((done) => storage.persist(work(w), done));
}

describe('the durable log', () => {
  it('keeps entries and hard state across a restart, across segment files', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 200 });
    await persist(storage, { hardState: { term: 3, votedFor: 'n2' }, entries: range(1, 5, 1) });
    await persist(storage, { entries: range(6, 12, 2) });
    await storage.close();
    const { recovered, report } = FileStorage.open(dir, { segmentBytesMax: 200 });
    assert.deepEqual(recovered.hardState, { term: 3, votedFor: 'n2' });
    assert.deepEqual(recovered.entries.map((e) => [e.index, e.term]), [...range(1, 5, 1), ...range(6, 12, 2)].map((e) => [e.index, e.term]));
    assert.ok(report.segments >= 2, `expected a second segment, got ${report.segments}`);
    assert.equal(report.tornBytesCut, 0);
  });

  it('cuts a diverging suffix, across segments, and journals what it cut in rollback/', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 150 });
    await persist(storage, { entries: range(1, 10, 1) });
    await persist(storage, { truncateFrom: 4, entries: range(4, 6, 2), rollback: range(4, 10, 1) });
    await storage.close();
    const { recovered } = FileStorage.open(dir);
    assert.deepEqual(recovered.entries.map((e) => `${e.index}:${e.term}`), ['1:1', '2:1', '3:1', '4:2', '5:2', '6:2']);
    const journal = readFileSync(join(dir, 'rollback', 'rollback.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; term: number; payloadBase64: string });
    assert.deepEqual(journal.map((r) => r.index), [4, 5, 6, 7, 8, 9, 10]);
    assert.equal(Buffer.from(journal[0]!.payloadBase64, 'base64').toString(), 'value-4');
  });

  it('saves a snapshot, drops the segments it covers, and recovers snapshot plus tail', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 100 });
    await persist(storage, { entries: range(1, 20, 1) });
    const before = readdirSync(join(dir, 'log')).length;
    const meta = { index: 15, term: 1, config: { voters: ['n1'], learners: [] }, termStarts: [[1, 1]] as [number, number][] };
    await saveSnapshot(storage, meta, [Buffer.from('state@'), Buffer.from('15')]);
    // The snapshot file is written beside the log; the segments it covers go when the engine says.
    assert.equal(readdirSync(join(dir, 'log')).length, before, 'nothing is dropped before the engine compacts');
    await persist(storage, { entries: range(21, 21, 1), compactTo: 15 });
    await storage.close();
    assert.ok(readdirSync(join(dir, 'log')).length < before, 'covered segments were removed');
    const { recovered } = FileStorage.open(dir);
    assert.equal(recovered.snapshot?.meta.index, 15);
    assert.equal(Buffer.from(recovered.snapshot!.load()).toString(), 'state@15');
    assert.equal(recovered.entries[recovered.entries.length - 1]?.index, 21);
    assert.ok(recovered.entries[0]!.index <= 16, 'no gap between the snapshot and the log');
  });

  it('keeps in memory at start only the entries from keepEntriesFrom on; of the others, their terms and configuration entries', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 200 });
    const config: Entry = { index: 6, term: 2, kind: 'config', data: Buffer.from('{}'), config: { voters: ['n1', 'n2'], learners: [] } };
    await persist(storage, { entries: [...range(1, 5, 1), config, ...range(7, 9, 2), ...range(10, 14, 4)] });
    await storage.close();
    const { recovered, report } = FileStorage.open(dir, { segmentBytesMax: 200, keepEntriesFrom: 12 });
    assert.equal(report.entries, 14, 'every entry was read and checked');
    assert.deepEqual(recovered.entries.map((e) => e.index), [12, 13, 14]);
    assert.equal(recovered.cold?.through, 11);
    assert.deepEqual(recovered.cold?.termStarts, [[1, 1], [2, 6], [4, 10]]);
    assert.deepEqual(recovered.cold?.configEntries.map((e) => [e.index, e.config?.voters]), [[6, ['n1', 'n2']]]);
    const all = FileStorage.open(dir, { segmentBytesMax: 200 }).recovered;
    assert.equal(all.entries.length, 14, 'by default every entry');
    assert.equal(all.cold, null);
  });

  it('reports its progress through the segments while it reads the log at start', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 100 });
    await persist(storage, { entries: range(1, 40, 1) });
    await storage.close();
    const seen: [number, number][] = [];
    FileStorage.open(dir, { onRecoveryProgress: (read, total) => seen.push([read, total]) });
    const total = readdirSync(join(dir, 'log')).length;
    assert.ok(total >= 10, `many segments (${total})`);
    assert.ok(seen.length >= 2 && seen.length <= 10, 'a line per tenth, not per segment');
    assert.deepEqual(seen[seen.length - 1], [total, total]);
  });

  it('installing a received snapshot replaces the whole log', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 5, 1) });
    const meta = { index: 100, term: 4, config: { voters: ['n1', 'n2', 'n3'], learners: [] }, termStarts: [[4, 90]] as [number, number][] };
    await persist(storage, { installSnapshot: { meta, data: Buffer.from('s') } });
    await persist(storage, { entries: range(101, 103, 4) });
    await storage.close();
    const { recovered } = FileStorage.open(dir);
    assert.equal(recovered.snapshot?.meta.index, 100);
    assert.deepEqual(recovered.entries.map((e) => e.index), [101, 102, 103]);
  });

  it('keeps zeros written ahead of the active segment; appends overwrite them and survive a restart', async () => {
    const dir = tempDir();
    const first = FileStorage.open(dir);
    await persist(first.storage, { entries: range(1, 50, 1) });
    await first.storage.close();
    const [segment] = readdirSync(join(dir, 'log'));
    const path = join(dir, 'log', segment!);
    const end = recordsEnd(path);
    const size = statSync(path).size;
    assert.ok(size >= end + 512 * 1024, `zeros written ahead: ${size} bytes for ${end} of records`);
    const second = FileStorage.open(dir);
    assert.equal(second.report.tornBytesCut, 0, 'zeros after the records are not a torn tail');
    assert.deepEqual(second.recovered.entries.map((e) => e.index), range(1, 50, 1).map((e) => e.index));
    await persist(second.storage, { entries: range(51, 60, 1) });
    await second.storage.close();
    assert.equal(statSync(path).size, size, 'the appends went into the zeros, not past the end of the file');
    assert.ok(recordsEnd(path) > end);
    const third = FileStorage.open(dir);
    assert.deepEqual(third.recovered.entries.map((e) => e.index), range(1, 60, 1).map((e) => e.index));
    assert.equal(third.report.tornBytesCut, 0);
    await third.storage.close();
  });

  it('cuts a last write with a sector missing in zeroed space, keeps what came before, and appends again', async () => {
    const dir = tempDir();
    const first = FileStorage.open(dir);
    await persist(first.storage, { entries: range(1, 3, 1) });
    const longer = Array.from({ length: 4 }, (_, k) => entry(4 + k, 1, String(k).repeat(600)));
    await persist(first.storage, { entries: longer });
    await first.storage.close();
    const [segment] = readdirSync(join(dir, 'log'));
    const path = join(dir, 'log', segment!);
    const bytes = readFileSync(path);
    const firstWriteEnd = bytes.indexOf(Buffer.from('0'.repeat(600))) - 25;
    // The sector after the one the last write starts in never reached the disk.
    const missing = firstWriteEnd - (firstWriteEnd % 512) + 512;
    bytes.fill(0, missing, missing + 512);
    writeFileSync(path, bytes);
    const second = FileStorage.open(dir);
    assert.ok(second.report.tornBytesCut > 0);
    const kept = second.recovered.entries.map((e) => e.index);
    assert.deepEqual(kept.slice(0, 3), [1, 2, 3], 'the earlier write is kept whole');
    assert.ok(kept.length < 7, `the torn write is cut (kept ${kept.join(',')})`);
    await persist(second.storage, { entries: range(kept.length + 1, kept.length + 2, 2) });
    await second.storage.close();
    const third = FileStorage.open(dir);
    assert.equal(third.report.tornBytesCut, 0);
    assert.deepEqual(third.recovered.entries.map((e) => e.index), [...kept, kept.length + 1, kept.length + 2]);
    await third.storage.close();
  });

  it('writes a batch larger than one write in pieces and reads it all back', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    const big = Array.from({ length: 5 }, (_, k) => entry(k + 1, 1, String(k).repeat(400 * 1024)));
    await persist(storage, { entries: big });
    await storage.close();
    const { recovered, report } = FileStorage.open(dir);
    assert.equal(report.tornBytesCut, 0);
    assert.deepEqual(recovered.entries.map((e) => [e.index, e.data.length]), big.map((e) => [e.index, e.data.length]));
  });

  it('cuts a torn last record at start and repairs the file', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 3, 1) });
    await storage.close();
    const [segment] = readdirSync(join(dir, 'log'));
    const path = join(dir, 'log', segment!);
    const end = recordsEnd(path);
    truncateSync(path, end - 5);
    const { recovered, report } = FileStorage.open(dir);
    assert.deepEqual(recovered.entries.map((e) => e.index), [1, 2]);
    assert.ok(report.tornBytesCut > 0);
    assert.equal(report.tornFile, path);
    assert.ok(statSync(path).size < end - 5, 'the torn bytes are gone from the file');
    const again = FileStorage.open(dir);
    assert.equal(again.report.tornBytesCut, 0, 'the second start finds a clean log');
    await again.storage.close();
  });

  it('refuses to start on a flipped byte before the end, naming the file and offset', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 5, 1) });
    await storage.close();
    const [segment] = readdirSync(join(dir, 'log'));
    const path = join(dir, 'log', segment!);
    const bytes = readFileSync(path);
    const recordBytes = recordsEnd(path) / 5;
    bytes[recordBytes + 20] = bytes[recordBytes + 20]! ^ 0x40;
    writeFileSync(path, bytes);
    assert.throws(
      () => FileStorage.open(dir),
      (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(path) && error.message.includes(`offset ${recordBytes}`),
    );
  });

  it('refuses a damaged hard state file by name', () => {
    const dir = tempDir();
    FileStorage.open(dir);
    writeFileSync(join(dir, 'hardstate'), Buffer.from('not a hard state'));
    assert.throws(() => FileStorage.open(dir), /hardstate: not a Tandem file/);
  });
});

describe('log entries read back for a follower', () => {
  const read = (storage: FileStorage, lo: number, hi: number, entriesMax: number, bytesMax: number): Promise<readonly Entry[]> =>
    new Promise((resolve, reject) => storage.readEntries(lo, hi, entriesMax, bytesMax, (error, entries) => (error === null ? resolve(entries) : reject(error))));
  const ids = (entries: readonly Entry[]): string[] => entries.map((e) => `${e.index}:${e.term}:${Buffer.from(e.data).toString()}`);

  it('reads what was written, within one segment, up to the entry and byte limits', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir, { segmentBytesMax: 300 });
    await persist(storage, { entries: range(1, 6, 1) });
    await persist(storage, { entries: range(7, 20, 2) });
    assert.deepEqual(ids(await read(storage, 1, 20, 3, 1 << 20)), ids(range(1, 3, 1)));
    assert.deepEqual(ids(await read(storage, 4, 5, 100, 1 << 20)), ids(range(4, 5, 1)), 'no further than hi');
    const record = encodeRecord(entry(2, 1)).length;
    assert.deepEqual(ids(await read(storage, 2, 20, 100, 2 * record)), ids(range(2, 4, 1)), 'the first record, then two more records of bytes');
    assert.deepEqual(ids(await read(storage, 2, 20, 100, 0)), ids(range(2, 2, 1)), 'always the first');
    const all: Entry[] = [];
    for (let lo = 1; lo <= 20; ) {
      const got = await read(storage, lo, 20, 100, 1 << 20);
      assert.ok(got.length > 0);
      all.push(...got);
      lo += got.length;
    }
    assert.deepEqual(ids(all), ids([...range(1, 6, 1), ...range(7, 20, 2)]), 'segment by segment, everything');
    await storage.close();
  });

  it('refuses an index the disk does not hold, and a damaged record by file and offset', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 5, 1) });
    await assert.rejects(read(storage, 6, 9, 10, 1 << 20), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.unavailable && /index 6 is not in the log/.test(error.message));
    const path = join(dir, 'log', readdirSync(join(dir, 'log'))[0]!);
    const recordBytes = recordsEnd(path) / 5;
    const bytes = readFileSync(path);
    bytes[2 * recordBytes + 20] = bytes[2 * recordBytes + 20]! ^ 0x40;
    writeFileSync(path, bytes);
    assert.deepEqual(ids(await read(storage, 1, 2, 10, 1 << 20)), ids(range(1, 2, 1)), 'records before the damage read well');
    await assert.rejects(
      read(storage, 2, 5, 10, 1 << 20),
      (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(path) && error.message.includes(`offset ${2 * recordBytes}`),
    );
    await storage.close();
  });
});

describe('snapshots read back from disk', () => {
  const meta = (index: number) => ({ index, term: 2, config: { voters: ['n1'], learners: [] }, termStarts: [[2, 1]] as [number, number][] });
  const open = (storage: FileStorage, index: number) =>
    new Promise<SnapshotReader | null>((resolve, reject) => storage.openSnapshot(index, (error, reader) => (error === null ? resolve(reader) : reject(error))));
  const read = (reader: SnapshotReader, offset: number, length: number) =>
    new Promise<Uint8Array>((resolve, reject) => reader.read(offset, length, (error, chunk) => (error === null && chunk !== null ? resolve(chunk) : reject(error))));
  async function readAll(reader: SnapshotReader, piece: number): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    for (let offset = 0; offset < reader.bytes; offset += piece) parts.push(await read(reader, offset, Math.min(piece, reader.bytes - offset)));
    return Buffer.concat(parts);
  }
  // Seed 9: the state bytes are random, 300,001 of them, read in pieces that do not divide them.
  const state = (seed: number) => Buffer.from(Array.from({ length: 300_001 }, (_, k) => (k * 7919 + seed * 104_729) % 251));
  // Saved as the parts a snapshot is built in, of uneven sizes.
  const parts = (data: Buffer) => [data.subarray(0, 1000), data.subarray(1000, 150_000), data.subarray(150_000)];

  it('gives the newest snapshot, once written, in pieces equal to what was saved; none past it', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 30, 2) });
    assert.equal(await open(storage, 1), null, 'no snapshot yet');
    await saveSnapshot(storage, meta(20), parts(state(9)));
    const reader = await open(storage, 20);
    assert.ok(reader !== null);
    assert.deepEqual(reader.meta, meta(20));
    assert.equal(reader.bytes, 300_001);
    assert.ok((await readAll(reader, 65_536)).equals(state(9)));
    reader.close();
    assert.equal(await open(storage, 21), null, 'the newest snapshot is at 20');
    await storage.close();
  });

  it('writes a snapshot as it is built: nothing is visible before it is finished, an abandoned one leaves nothing, an older one finished late is dropped', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 30, 2) });
    const building = storage.createSnapshot(meta(20));
    for (const part of parts(state(4))) await call((done) => building.write(part, done));
    assert.equal(await open(storage, 1), null, 'a snapshot being written is not yet a snapshot');
    const abandoned = storage.createSnapshot(meta(22));
    await call((done) => abandoned.write(Buffer.from('partial'), done));
    abandoned.abort();
    const late = storage.createSnapshot(meta(12));
    await call((done) => late.write(state(5), done));
    await call((done) => building.finish(done));
    await call((done) => late.finish(done));
    await waitFor('the abandoned file to go', 2000, async () => (readdirSync(join(dir, 'snapshots')).length === 1 ? true : undefined));
    assert.deepEqual(readdirSync(join(dir, 'snapshots')), ['snapshot-00000000000000000020.snap'], 'only the newest finished snapshot stays');
    const reader = await open(storage, 1);
    assert.equal(reader?.meta.index, 20);
    assert.ok((await readAll(reader!, 70_000)).equals(state(4)));
    reader?.close();
    await storage.close();
  });

  it('syncs a snapshot file every so many bytes as it is written, not all at its seal, and it reads back whole', async () => {
    const path = join(tempDir(), 'snapshot-00000000000000000020.snap');
    // Every 64 KiB: 300,001 bytes in pieces of 50,000 cross it after the 2nd, 4th and 6th piece.
    const writer = await SnapshotFileWriter.create(path, meta(20), 64 * 1024);
    const data = state(7);
    for (let offset = 0; offset < data.length; offset += 50_000) {
      await writer.append(data.subarray(offset, offset + 50_000));
      if (offset === 50_000) assert.equal(writer.syncs, 1, 'synced once 100,000 bytes were unsynced');
    }
    assert.equal(writer.syncs, 3);
    await writer.seal();
    const reader = await SnapshotFileReader.open(path);
    assert.deepEqual(reader.meta, meta(20));
    assert.ok((await readAll(reader, 65_536)).equals(data));
    reader.close();
  });

  it('keeps reading a snapshot that a newer one replaced on disk', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 30, 2) });
    await saveSnapshot(storage, meta(10), parts(state(1)));
    const old = await open(storage, 10);
    assert.ok(old !== null);
    await saveSnapshot(storage, meta(25), parts(state(2)));
    assert.deepEqual(readdirSync(join(dir, 'snapshots')), ['snapshot-00000000000000000025.snap'], 'the old file is gone');
    assert.ok((await readAll(old, 100_000)).equals(state(1)), 'the open file still reads whole');
    old.close();
    const newest = await open(storage, 10);
    assert.equal(newest?.meta.index, 25, 'a newer snapshot serves an older request');
    newest?.close();
    await storage.close();
  });

  it('fails the read that completes a damaged snapshot, naming the file', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 30, 2) });
    await saveSnapshot(storage, meta(20), parts(state(3)));
    const path = join(dir, 'snapshots', 'snapshot-00000000000000000020.snap');
    const bytes = readFileSync(path);
    bytes[bytes.length - 150_000] ^= 0x01;
    writeFileSync(path, bytes);
    const reader = await open(storage, 20);
    assert.ok(reader !== null);
    await read(reader, 0, 200_000);
    await assert.rejects(read(reader, 200_000, 100_001), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(path));
    reader.close();
    await storage.close();
  });
});

describe('a snapshot found at start', () => {
  it('is checked whole but read only when asked; a damaged one stops the start, naming the file', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 30, 2) });
    const meta = { index: 20, term: 2, config: { voters: ['n1'], learners: [] }, termStarts: [[2, 1]] as [number, number][] };
    // More than one piece of the check (8 MiB), so the checksum is carried across pieces.
    const data = Buffer.alloc(9 * 1024 * 1024 + 5, 7);
    data.write('the end', data.length - 7);
    await saveSnapshot(storage, meta, [data]);
    await storage.close();
    const { recovered } = FileStorage.open(dir);
    assert.deepEqual(recovered.snapshot?.meta, meta);
    assert.equal(recovered.snapshot?.bytes, data.length);
    assert.ok(Buffer.from(recovered.snapshot!.load()).equals(data));
    const path = join(dir, 'snapshots', 'snapshot-00000000000000000020.snap');
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] ^= 0x20;
    writeFileSync(path, bytes);
    assert.throws(() => FileStorage.open(dir), (error: unknown) => error instanceof TandemError && error.code === ErrorCode.corrupt && error.message.includes(path) && /checksum/.test(error.message));
  });
});

describe('a snapshot staged in a file by the transport', () => {
  it('is installed by copying it into its snapshot file (checksummed), and the staged file goes', async () => {
    const dir = tempDir();
    const { storage } = FileStorage.open(dir);
    await persist(storage, { entries: range(1, 5, 1) });
    // More than one piece of the copy (8 MiB).
    const data = Buffer.alloc(8 * 1024 * 1024 + 100, 3);
    data.write('last', data.length - 4);
    const staged = join(dir, 'snapshots', stagedSnapshotName('n2', 1, 1));
    writeFileSync(staged, data);
    const meta = { index: 100, term: 4, config: { voters: ['n1', 'n2'], learners: [] }, termStarts: [[4, 90]] as [number, number][] };
    await persist(storage, { installSnapshot: { meta, data: { path: staged, bytes: data.length } } });
    assert.ok(!existsSync(staged), 'the staged file was consumed');
    const reader = await new Promise<SnapshotReader | null>((resolve, reject) => storage.openSnapshot(100, (error, r) => (error === null ? resolve(r) : reject(error))));
    assert.ok(reader !== null && reader.file !== null);
    assert.equal(reader.bytes, data.length);
    assert.ok(readFileSync(reader.file.path).subarray(reader.file.offset).equals(data), 'the state bytes sit at the offset the reader gives');
    reader.close();
    await storage.close();
    const { recovered } = FileStorage.open(dir);
    assert.deepEqual(recovered.snapshot?.meta, meta);
    assert.ok(Buffer.from(recovered.snapshot!.load()).equals(data), 'the file passes the checksum at start');
  });

  it('leftovers of staging and of a snapshot file written in part are removed at start', async () => {
    const dir = tempDir();
    FileStorage.open(dir);
    const snapshots = join(dir, 'snapshots');
    writeFileSync(join(snapshots, stagedSnapshotName('n2', 7, 3)), 'partial');
    writeFileSync(join(snapshots, 'snapshot-00000000000000000009.snap.tmp'), 'partial');
    FileStorage.open(dir);
    assert.deepEqual(readdirSync(snapshots), []);
  });
});
