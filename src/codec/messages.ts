import type { Message, SnapshotMeta } from '../core/types.js';
import { ByteReader, ByteWriter, fromUtf8, utf8 } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { decodeRecord, encodeRecord, recordBodyBytesMax, rememberRecord } from './log-record.js';

/**
 * Peer messages as bytes: a compact binary form (no JSON on the replication path, except a
 * snapshot's small metadata). Entries travel as log records, so their CRC32C is checked end to
 * end. Every length is checked against a limit before anything is allocated.
 */

const typeCodes = {
  append: 1,
  appendResp: 2,
  heartbeat: 3,
  heartbeatResp: 4,
  vote: 5,
  preVote: 6,
  voteResp: 7,
  preVoteResp: 8,
  snapshot: 9,
  timeoutNow: 10,
  readIndex: 11,
  readIndexResp: 12,
} as const satisfies Record<Message['type'], number>;

const typesByCode = new Map<number, Message['type']>(Object.entries(typeCodes).map(([type, code]) => [code, type as Message['type']]));

/** The longest node id accepted on the wire. */
export const nodeIdBytesMax = 128;
/** The largest snapshot metadata accepted (config and term history). */
const snapshotMetaBytesMax = 1024 * 1024;
/** The largest snapshot payload carried in one message. */
export const snapshotBytesMax = 1024 * 1024 * 1024;

/**
 * Encodes one peer message as parts whose concatenation is its bytes: the head, then (an append)
 * each entry's record or (a snapshot) its data, not copied. The transport writes the parts in one
 * go; copying them into one buffer cost the leader a copy of every entry per follower, in
 * ArrayBuffers that V8 counts as external memory (and collects for).
 */
export function encodeMessageParts(m: Message): Uint8Array[] {
  const w = new ByteWriter(64);
  w.u8(typeCodes[m.type]).string(m.from).string(m.to).u64(m.term);
  switch (m.type) {
    case 'append':
      w.u64(m.prevIndex).u64(m.prevTerm).u64(m.commit).u32(m.entries.length);
      return [w.finish(), ...m.entries.map(encodeRecord)];
    case 'appendResp':
      w.u8(m.success ? 1 : 0).u64(m.index).u64(m.hintIndex).u64(m.hintTerm);
      break;
    case 'heartbeat':
      w.u64(m.commit).u64(m.leaderCommit).u64(m.readRound);
      break;
    case 'heartbeatResp':
      w.u64(m.readRound).u64(m.lastIndex);
      break;
    case 'vote':
    case 'preVote':
      w.u64(m.lastIndex).u64(m.lastTerm).u8(m.transfer ? 1 : 0);
      break;
    case 'voteResp':
    case 'preVoteResp':
      w.u8(m.granted ? 1 : 0);
      break;
    case 'snapshot':
      w.bytes(utf8(JSON.stringify(m.meta)));
      if (m.data === null) {
        w.u8(0);
        break;
      }
      // A staged snapshot is never encoded: the transport streams a large one from its reader.
      if (!(m.data instanceof Uint8Array)) throw new Error('a staged snapshot cannot be encoded in one message');
      w.u8(1).u32(m.data.length);
      return [w.finish(), m.data];
    case 'timeoutNow':
      break;
    case 'readIndex':
      w.u64(m.requestId);
      break;
    case 'readIndexResp':
      w.u64(m.requestId);
      if (m.index === null) w.u8(0);
      else w.u8(1).u64(m.index);
      break;
  }
  return [w.finish()];
}

function malformed(why: string): TandemError {
  return new TandemError(ErrorCode.badRequest, `malformed peer message: ${why}`);
}

/** Decodes one peer message; throws a TandemError naming what is wrong with the bytes. */
export function decodeMessage(bytes: Uint8Array): Message {
  const r = new ByteReader(bytes, 'peer message');
  const type = typesByCode.get(r.u8());
  if (type === undefined) throw malformed(`unknown message type ${bytes[0]}`);
  const from = r.string(nodeIdBytesMax);
  const to = r.string(nodeIdBytesMax);
  const term = r.u64();
  const base = { from, to, term };
  let message: Message;
  switch (type) {
    case 'append': {
      const prevIndex = r.u64();
      const prevTerm = r.u64();
      const commit = r.u64();
      const count = r.u32();
      // Every record takes at least 25 bytes: a count the bytes cannot hold is refused up front.
      if (count * 25 > r.remaining) throw malformed(`${count} entries cannot fit in ${r.remaining} bytes`);
      const rest = r.shared(r.remaining);
      const entries = [];
      let offset = 0;
      for (let k = 0; k < count; k++) {
        const read = decodeRecord(rest, offset);
        if (read.kind !== 'record') throw malformed(`entry ${k} of ${count}: ${read.kind === 'bad' ? read.reason : 'cut short'}`);
        rememberRecord(read.entry, rest.subarray(offset, offset + read.bytes));
        entries.push(read.entry);
        offset += read.bytes;
      }
      if (offset !== rest.length) throw malformed(`${rest.length - offset} bytes after the last entry`);
      return { type, ...base, prevIndex, prevTerm, commit, entries };
    }
    case 'appendResp':
      message = { type, ...base, success: r.u8() === 1, index: r.u64(), hintIndex: r.u64(), hintTerm: r.u64() };
      break;
    case 'heartbeat':
      message = { type, ...base, commit: r.u64(), leaderCommit: r.u64(), readRound: r.u64() };
      break;
    case 'heartbeatResp':
      message = { type, ...base, readRound: r.u64(), lastIndex: r.u64() };
      break;
    case 'vote':
    case 'preVote':
      message = { type, ...base, lastIndex: r.u64(), lastTerm: r.u64(), transfer: r.u8() === 1 };
      break;
    case 'voteResp':
    case 'preVoteResp':
      message = { type, ...base, granted: r.u8() === 1 };
      break;
    case 'snapshot': {
      const meta = parseSnapshotMeta(r.bytes(snapshotMetaBytesMax));
      const data = r.u8() === 1 ? r.bytes(snapshotBytesMax) : null;
      message = { type, ...base, meta, data };
      break;
    }
    case 'timeoutNow':
      message = { type, ...base };
      break;
    case 'readIndex':
      message = { type, ...base, requestId: r.u64() };
      break;
    case 'readIndexResp': {
      const requestId = r.u64();
      message = { type, ...base, requestId, index: r.u8() === 1 ? r.u64() : null };
      break;
    }
  }
  r.end();
  return message;
}

function parseSnapshotMeta(bytes: Uint8Array): SnapshotMeta {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    throw malformed('snapshot metadata is not JSON');
  }
  const meta = value as Partial<SnapshotMeta>;
  const isIds = (list: unknown): boolean => Array.isArray(list) && list.every((id) => typeof id === 'string');
  if (
    typeof meta.index !== 'number' ||
    typeof meta.term !== 'number' ||
    meta.config === undefined ||
    !isIds(meta.config.voters) ||
    !isIds(meta.config.learners) ||
    !Array.isArray(meta.termStarts)
  ) {
    throw malformed('snapshot metadata has bad fields');
  }
  return meta as SnapshotMeta;
}

/** The largest peer frame: a full append of maximal records, with room for framing. */
export const peerFrameBytesMax = limits.appendEntriesMax * (recordBodyBytesMax + 16) + 4096;
