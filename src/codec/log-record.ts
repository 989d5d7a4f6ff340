import type { ClusterConfig, Entry, EntryKind } from '../core/types.js';
import { ByteReader, fromUtf8, utf8 } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { crc32c } from './crc32c.js';

/**
 * One log record on disk: [length u32][crc32c u32][index u64][term u64][kind u8][payload].
 * `length` counts the bytes after the crc; the crc covers those same bytes.
 */
export const recordHeaderBytes = 8;
const bodyFixedBytes = 17;
/** The largest record body accepted: a value, its key, and the command's framing. */
export const recordBodyBytesMax = limits.valueBytesMax + limits.keyBytesMax + 4096;

const kindCodes: Record<EntryKind, number> = { command: 1, config: 2, noop: 3 };
const kindsByCode: Record<number, EntryKind> = { 1: 'command', 2: 'config', 3: 'noop' };

/**
 * Records recently encoded, by entry: a leader writes each entry to its own log and sends it to
 * every follower, and entries never change, so the bytes and their checksum are made once. Only
 * the newest are kept (insertion order, at most recordCacheEntriesMax and recordCacheBytesMax):
 * kept for every entry in the log, the copies doubled a node's memory.
 */
const encodedRecords = new Map<Entry, Uint8Array>();
const recordCacheEntriesMax = 8192;
const recordCacheBytesMax = 32 * 1024 * 1024;
let encodedBytes = 0;

/** Encodes one entry as a record (the same bytes for the same recent entry object, computed once). */
export function encodeRecord(entry: Entry): Uint8Array {
  const known = encodedRecords.get(entry);
  if (known !== undefined) return known;
  const record = encodeRecordOnce(entry);
  rememberRecord(entry, record);
  return record;
}

/**
 * Remembers the record an entry was decoded from (a follower's received entries), so writing it
 * to the log needs no new copy and checksum.
 */
export function rememberRecord(entry: Entry, record: Uint8Array): void {
  if (encodedRecords.has(entry)) return;
  encodedRecords.set(entry, record);
  encodedBytes += record.length;
  while (encodedRecords.size > recordCacheEntriesMax || encodedBytes > recordCacheBytesMax) {
    const oldest = encodedRecords.entries().next().value as [Entry, Uint8Array];
    encodedRecords.delete(oldest[0]);
    encodedBytes -= oldest[1].length;
  }
}

function encodeRecordOnce(entry: Entry): Uint8Array {
  // A config record holds the new configuration and the entry's own bytes (a new member's addresses).
  const payload = entry.kind === 'config' ? utf8(JSON.stringify(entry.data.length === 0 ? entry.config : { ...entry.config, data: Buffer.from(entry.data).toString('base64') })) : entry.data;
  const bodyBytes = bodyFixedBytes + payload.length;
  // From Node's shared pool when small (see ByteWriter): fewer ArrayBuffers for V8 to track.
  const pooled = Buffer.allocUnsafe(recordHeaderBytes + bodyBytes);
  const record = new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.length);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  view.setUint32(0, bodyBytes, true);
  view.setUint32(8, entry.index % 0x100000000, true);
  view.setUint32(12, Math.floor(entry.index / 0x100000000), true);
  view.setUint32(16, entry.term % 0x100000000, true);
  view.setUint32(20, Math.floor(entry.term / 0x100000000), true);
  view.setUint8(24, kindCodes[entry.kind]);
  record.set(payload, 25);
  view.setUint32(4, crc32c(record.subarray(recordHeaderBytes)), true);
  return record;
}

/** What decoding the bytes at one offset found. */
export type RecordRead =
  | { readonly kind: 'record'; readonly entry: Entry; readonly bytes: number }
  /** The bytes end inside a record: a torn write, if this is the end of the log. */
  | { readonly kind: 'short' }
  /** The record is complete but wrong (bad length or checksum). */
  | { readonly kind: 'bad'; readonly reason: string };

/** Decodes the record starting at `offset`, checking the length before it reads the body. */
export function decodeRecord(buffer: Uint8Array, offset: number): RecordRead {
  if (buffer.length - offset < recordHeaderBytes) return { kind: 'short' };
  const view = new DataView(buffer.buffer, buffer.byteOffset + offset, buffer.length - offset);
  const bodyBytes = view.getUint32(0, true);
  if (bodyBytes < bodyFixedBytes || bodyBytes > recordBodyBytesMax) return { kind: 'bad', reason: `record length ${bodyBytes} is out of range` };
  if (buffer.length - offset < recordHeaderBytes + bodyBytes) return { kind: 'short' };
  const body = buffer.subarray(offset + recordHeaderBytes, offset + recordHeaderBytes + bodyBytes);
  const expected = view.getUint32(4, true);
  const actual = crc32c(body);
  if (expected !== actual) return { kind: 'bad', reason: `checksum ${actual.toString(16)} does not match ${expected.toString(16)}` };
  const r = new ByteReader(body, 'log record');
  const index = r.u64();
  const term = r.u64();
  const kind = kindsByCode[r.u8()];
  if (kind === undefined) return { kind: 'bad', reason: 'unknown entry kind' };
  // A view: the bytes it shares (a received message, a segment read at start) never change.
  const payload = r.shared(r.remaining);
  if (kind === 'config') {
    const { config, data } = parseConfig(payload);
    return { kind: 'record', entry: { index, term, kind, data, config }, bytes: recordHeaderBytes + bodyBytes };
  }
  return { kind: 'record', entry: { index, term, kind, data: payload }, bytes: recordHeaderBytes + bodyBytes };
}

function parseConfig(payload: Uint8Array): { config: ClusterConfig; data: Uint8Array } {
  const value = JSON.parse(fromUtf8(payload)) as { voters?: unknown; learners?: unknown; data?: unknown };
  const ids = (list: unknown): string[] => {
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string')) throw new TandemError(ErrorCode.corrupt, 'config record: bad member list');
    return list as string[];
  };
  if (value.data !== undefined && typeof value.data !== 'string') throw new TandemError(ErrorCode.corrupt, 'config record: bad data');
  const data = typeof value.data === 'string' ? new Uint8Array(Buffer.from(value.data, 'base64')) : new Uint8Array(0);
  return { config: { voters: ids(value.voters), learners: ids(value.learners) }, data };
}

/**
 * The most bytes one write of the log holds: several records, or one record of the largest size.
 * The storage never writes more at once, so a torn write (the only damage a crash leaves) spans
 * at most this many bytes.
 */
export const logWriteBytesMax = recordHeaderBytes + recordBodyBytesMax;

/** Sector size assumed for torn writes: a sector is written whole or not at all. */
const sectorBytes = 512;

/**
 * Decodes a whole log file. Zeros after the last record are space written ahead of time (the
 * storage keeps the active segment zero-filled past its end), not damage. What a crash can leave
 * after the last good record is cut (`tornBytes`, zeros included, from `validBytes` on): a record cut
 * short, or the last write's records with some of their sectors missing. Damage anywhere else
 * throws CORRUPT naming the file and offset: nothing is silently dropped.
 */
export function decodeLog(buffer: Uint8Array, fileName: string): { entries: Entry[]; offsets: number[]; validBytes: number; tornBytes: number } {
  const entries: Entry[] = [];
  const offsets: number[] = [];
  const dataEnd = endOfData(buffer);
  let offset = 0;
  while (offset < dataEnd) {
    const read = decodeRecord(buffer, offset);
    if (read.kind === 'record') {
      entries.push(read.entry);
      offsets.push(offset);
      offset += read.bytes;
      continue;
    }
    if (read.kind === 'short' || isTornWrite(buffer, offset, dataEnd)) return { entries, offsets, validBytes: offset, tornBytes: buffer.length - offset };
    throw new TandemError(ErrorCode.corrupt, `${fileName}: ${read.reason} at offset ${offset}; the log is damaged before its end`, { file: fileName, offset });
  }
  return { entries, offsets, validBytes: offset, tornBytes: 0 };
}

/** The offset just past the last non-zero byte (0 for a file of zeros): where a segment's data ends. */
export function endOfData(buffer: Uint8Array): number {
  let end = buffer.length;
  while (end > 0 && buffer[end - 1] === 0) end--;
  return end;
}

/**
 * True when the bad record at `offset`, and every byte after it up to `dataEnd`, can be one write
 * that a crash interrupted rather than damage: the bytes fit in one write, and a sector of them
 * is missing that explains the bad record — either the record claims bytes past the end of the
 * data (its last sectors never arrived) and no intact record follows it, or a whole sector reads
 * as zeros between `offset` and the first intact record after it. A flipped byte leaves no missing
 * sector, so damage before the end is still refused: also a flipped length that claims past the
 * data, and a flipped byte followed by a record whose value holds a sector of zeros (both were
 * once read as torn, and the intact records after them cut).
 */
function isTornWrite(buffer: Uint8Array, offset: number, dataEnd: number): boolean {
  if (dataEnd - offset > logWriteBytesMax) return false;
  const intact = nextIntactRecord(buffer, offset, dataEnd);
  const view = new DataView(buffer.buffer, buffer.byteOffset + offset);
  const bodyBytes = view.getUint32(0, true);
  const inRange = bodyBytes >= bodyFixedBytes && bodyBytes <= recordBodyBytesMax;
  if (inRange && offset + recordHeaderBytes + bodyBytes >= dataEnd && intact === dataEnd) return true;
  // A sector of the write that never reached the disk: all zeros from `offset` (or from its start)
  // to its end. It cannot reach into an intact record (a record's length field is never zero).
  for (let start = offset - (offset % sectorBytes); start < intact; start += sectorBytes) {
    let zero = true;
    for (let i = Math.max(start, offset); i < start + sectorBytes && zero; i++) zero = buffer[i] === 0;
    if (zero) return true;
  }
  return false;
}

/** Checksummed bytes nextIntactRecord may spend looking (an adversarial tail could make it quadratic). */
const intactScanBytesMax = 64 * 1024 * 1024;

/**
 * Where the first intact record after `offset` starts — one decodeRecord reads whole from the
 * data before `dataEnd` — or `dataEnd` when there is none. Past its budget it
 * answers where it stopped, as if it had found one: the damage is then refused, the safe side.
 */
function nextIntactRecord(buffer: Uint8Array, offset: number, dataEnd: number): number {
  const data = buffer.subarray(0, dataEnd);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  let checkedBytes = 0;
  for (let at = offset + 1; at + recordHeaderBytes + bodyFixedBytes <= dataEnd; at++) {
    // Only a length in range costs a checksum (decodeRecord refuses the rest before reading on).
    const bodyBytes = view.getUint32(at, true);
    if (bodyBytes < bodyFixedBytes || bodyBytes > recordBodyBytesMax) continue;
    checkedBytes += bodyBytes;
    if (checkedBytes > intactScanBytesMax) return at;
    if (decodeRecord(data, at).kind === 'record') return at;
  }
  return dataEnd;
}
