import { crc32c } from '../codec/crc32c.js';
import type { HardState, Snapshot, SnapshotMeta } from '../core/types.js';
import { fromUtf8, utf8 } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';

/**
 * The on-disk forms of the hard state and of snapshots. Both start with a magic word and a
 * CRC32C of everything after it, so a damaged file is refused by name, never half-read.
 */

const hardStateMagic = 0x54485331; // "THS1"
const snapshotMagic = 0x54534e31; // "TSN1"

function seal(magic: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  view.setUint32(4, crc32c(body), true);
  out.set(body, 8);
  return out;
}

function unseal(magic: number, bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length < 8) throw new TandemError(ErrorCode.corrupt, `${file}: ${bytes.length} bytes is too short to be a Tandem file`, { file });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== magic) throw new TandemError(ErrorCode.corrupt, `${file}: not a Tandem file of the expected kind (bad magic)`, { file });
  const body = bytes.subarray(8);
  const expected = view.getUint32(4, true);
  const actual = crc32c(body);
  if (expected !== actual) throw new TandemError(ErrorCode.corrupt, `${file}: checksum ${actual.toString(16)} does not match ${expected.toString(16)}`, { file, offset: 8 });
  return body;
}

/** Encodes the hard state (term and vote). */
export function encodeHardState(state: HardState): Uint8Array {
  return seal(hardStateMagic, utf8(JSON.stringify(state)));
}

/** Decodes the hard state; throws CORRUPT naming `file` on damage. */
export function decodeHardState(bytes: Uint8Array, file: string): HardState {
  const value = JSON.parse(fromUtf8(unseal(hardStateMagic, bytes, file))) as { term?: unknown; votedFor?: unknown };
  if (typeof value.term !== 'number' || !Number.isSafeInteger(value.term) || value.term < 0 || !(value.votedFor === null || typeof value.votedFor === 'string')) {
    throw new TandemError(ErrorCode.corrupt, `${file}: hard state has bad fields`, { file });
  }
  return { term: value.term, votedFor: value.votedFor };
}

/** Encodes a snapshot: [magic][crc][meta length][meta JSON][state bytes]. */
export function encodeSnapshot(snapshot: { readonly meta: SnapshotMeta; readonly data: Uint8Array }): Uint8Array {
  const meta = utf8(JSON.stringify(snapshot.meta));
  const body = new Uint8Array(4 + meta.length + snapshot.data.length);
  new DataView(body.buffer).setUint32(0, meta.length, true);
  body.set(meta, 4);
  body.set(snapshot.data, 4 + meta.length);
  return seal(snapshotMagic, body);
}

/**
 * The same bytes as encodeSnapshot for a snapshot whose state bytes are `parts` in order, as parts
 * (no copy of the state) with the checksum computed a megabyte at a time, yielding between
 * pieces: a large snapshot does not hold the event loop.
 */
export async function encodeSnapshotInPieces(snapshotMeta: SnapshotMeta, parts: readonly Uint8Array[]): Promise<Uint8Array[]> {
  const lead = snapshotLead(snapshotMeta);
  let crc = crc32c(lead);
  const piece = 1024 * 1024;
  for (const part of parts) {
    for (let offset = 0; offset < part.length; offset += piece) {
      crc = crc32c(part.subarray(offset, offset + piece), crc);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return [snapshotSeal(crc), lead, ...parts];
}

/** What a snapshot file holds between its seal and its state bytes: the metadata's length and the metadata. */
export function snapshotLead(snapshotMeta: SnapshotMeta): Uint8Array {
  const meta = utf8(JSON.stringify(snapshotMeta));
  const lead = new Uint8Array(4 + meta.length);
  new DataView(lead.buffer).setUint32(0, meta.length, true);
  lead.set(meta, 4);
  return lead;
}

/** A snapshot file's first 8 bytes: the magic word and `crc`, the CRC32C of the lead and the state bytes. */
export function snapshotSeal(crc: number): Uint8Array {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint32(0, snapshotMagic, true);
  view.setUint32(4, crc, true);
  return head;
}

/** The bytes of a snapshot file before its metadata: magic, checksum, metadata length. */
export const snapshotHeadBytes = 12;
/** The largest snapshot metadata a file may claim (config and term history). */
const snapshotMetaBytesMax = 1024 * 1024;

/** What a snapshot file's first bytes say: the checksum of all after them, and the metadata's length. */
export function decodeSnapshotHead(head: Uint8Array, fileBytes: number, file: string): { crc: number; metaBytes: number } {
  if (head.length < snapshotHeadBytes) throw new TandemError(ErrorCode.corrupt, `${file}: ${head.length} bytes is too short to be a Tandem snapshot`, { file });
  const view = new DataView(head.buffer, head.byteOffset, snapshotHeadBytes);
  if (view.getUint32(0, true) !== snapshotMagic) throw new TandemError(ErrorCode.corrupt, `${file}: not a Tandem file of the expected kind (bad magic)`, { file });
  const metaBytes = view.getUint32(8, true);
  if (metaBytes > snapshotMetaBytesMax || metaBytes > fileBytes - snapshotHeadBytes) {
    throw new TandemError(ErrorCode.corrupt, `${file}: snapshot metadata length ${metaBytes} exceeds the file or ${snapshotMetaBytesMax}`, { file, offset: 8 });
  }
  return { crc: view.getUint32(4, true), metaBytes };
}

/** Parses a snapshot's metadata JSON; throws CORRUPT naming `file`. */
export function decodeSnapshotMeta(bytes: Uint8Array, file: string): SnapshotMeta {
  try {
    return JSON.parse(fromUtf8(bytes)) as SnapshotMeta;
  } catch {
    throw new TandemError(ErrorCode.corrupt, `${file}: snapshot metadata is not JSON`, { file, offset: snapshotHeadBytes });
  }
}

/** Decodes a snapshot file; throws CORRUPT naming `file` on damage. */
export function decodeSnapshot(bytes: Uint8Array, file: string): { readonly meta: SnapshotMeta; readonly data: Uint8Array } {
  const { metaBytes } = decodeSnapshotHead(bytes, bytes.length, file);
  const body = unseal(snapshotMagic, bytes, file);
  const meta = decodeSnapshotMeta(body.subarray(4, 4 + metaBytes), file);
  return { meta, data: body.slice(4 + metaBytes) };
}
