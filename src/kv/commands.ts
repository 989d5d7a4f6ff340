import { ByteReader, ByteWriter } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';

/** A state-machine operation. Keys are strings (binary keys travel as latin1 strings). */
export type Operation =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'del'; readonly key: string }
  /** Sets `key` to `value` (null deletes) only when it now holds `expected` (null: absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: Uint8Array | null; readonly value: Uint8Array | null }
  /** Redis SET: `when` nx (only if absent) or xx (only if present); `returnPrevious` is SET … GET. */
  | { readonly op: 'set'; readonly key: string; readonly value: Uint8Array; readonly when: SetCondition; readonly returnPrevious: boolean }
  /** Sets every pair at once (one entry, so atomic). */
  | { readonly op: 'mset'; readonly pairs: readonly (readonly [string, Uint8Array])[] }
  /** Deletes every key at once; the reply counts those that existed. */
  | { readonly op: 'delKeys'; readonly keys: readonly string[] }
  /** Adds `delta` to the signed 64-bit decimal integer stored at `key` (absent counts as 0). */
  | { readonly op: 'incrBy'; readonly key: string; readonly delta: bigint }
  /** Appends `value` to the value at `key` (absent counts as empty); the reply is the new length. */
  | { readonly op: 'append'; readonly key: string; readonly value: Uint8Array }
  /** Deletes `key` and answers its old value. */
  | { readonly op: 'getdel'; readonly key: string }
  /** Deletes every key. */
  | { readonly op: 'flushall' };

/** When a SET applies: always, only if the key is absent (nx), only if present (xx). */
export type SetCondition = 'always' | 'nx' | 'xx';

/**
 * A client's write as it travels through the log. (clientId, seq) makes it exactly-once:
 * the state machine remembers the latest reply per client. An empty clientId opts out.
 */
export interface Command {
  readonly clientId: string;
  readonly seq: number;
  readonly operation: Operation;
}

/** What applying a command answered. */
export type Reply =
  | { readonly kind: 'ok' }
  | { readonly kind: 'deleted'; readonly count: number }
  | { readonly kind: 'cas'; readonly swapped: boolean }
  /** A SET: whether it wrote, and the previous value (kept only when the SET asked for it). */
  | { readonly kind: 'set'; readonly written: boolean; readonly previous: Uint8Array | null }
  | { readonly kind: 'integer'; readonly value: bigint }
  | { readonly kind: 'value'; readonly value: Uint8Array | null }
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string };

const opCodes = { put: 1, del: 2, cas: 3, set: 4, mset: 5, delKeys: 6, incrBy: 7, append: 8, getdel: 9, flushall: 10 } as const;
const setConditions: readonly SetCondition[] = ['always', 'nx', 'xx'];
const formatVersion = 1;
/** Keys one multi-key command may name (MSET, DEL). */
export const commandKeysMax = 100_000;
/** Room in a log record beyond a command's keys and values. */
const commandOverheadBytes = 2048;

/** The keys a command names. */
export function keysOf(operation: Operation): readonly string[] {
  switch (operation.op) {
    case 'mset':
      return operation.pairs.map(([key]) => key);
    case 'delKeys':
      return operation.keys;
    case 'flushall':
      return [];
    default:
      return [operation.key];
  }
}

function valuesOf(operation: Operation): readonly (Uint8Array | null)[] {
  switch (operation.op) {
    case 'put':
    case 'set':
    case 'append':
      return [operation.value];
    case 'cas':
      return [operation.expected, operation.value];
    case 'mset':
      return operation.pairs.map(([, value]) => value);
    default:
      return [];
  }
}

/** Checks a command's sizes before it is proposed; throws a TandemError naming the problem. */
export function validateCommand(command: Command): void {
  const { operation } = command;
  let total = 0;
  if (operation.op === 'put' || operation.op === 'set' || operation.op === 'append') {
    // The common case, without the lists below: one key, one value.
    total = checkKey(operation.key) + checkValue(operation.value);
  } else {
    const keys = keysOf(operation);
    if (keys.length > commandKeysMax) throw new TandemError(ErrorCode.tooLarge, `the command names ${keys.length} keys; the limit is ${commandKeysMax}`);
    for (const key of keys) total += checkKey(key);
    for (const value of valuesOf(operation)) if (value !== null) total += checkValue(value);
  }
  const commandBytesMax = limits.valueBytesMax + limits.keyBytesMax;
  if (total > commandBytesMax) throw new TandemError(ErrorCode.tooLarge, `the command carries ${total} bytes of keys and values; the limit is ${commandBytesMax}`);
  if (operation.op === 'incrBy' && (operation.delta > int64Max || operation.delta < int64Min)) {
    throw new TandemError(ErrorCode.badRequest, 'value is not an integer or out of range');
  }
}

/** Throws unless the key's size is allowed; its share of the command's size. */
function checkKey(key: string): number {
  const keyBytes = Buffer.byteLength(key, 'latin1');
  if (keyBytes === 0) throw new TandemError(ErrorCode.badRequest, 'the key is empty');
  if (keyBytes > limits.keyBytesMax) throw new TandemError(ErrorCode.tooLarge, `the key is ${keyBytes} bytes; the limit is ${limits.keyBytesMax}`);
  return keyBytes + 8;
}

/** Throws unless the value's size is allowed; its share of the command's size. */
function checkValue(value: Uint8Array): number {
  if (value.length > limits.valueBytesMax) throw new TandemError(ErrorCode.tooLarge, `the value is ${value.length} bytes; the limit is ${limits.valueBytesMax}`);
  return value.length + 8;
}

/** The range of a Redis integer. */
export const int64Max = (1n << 63n) - 1n;
export const int64Min = -(1n << 63n);

function keyOut(w: ByteWriter, key: string): void {
  w.latin1(key);
}

function keyIn(r: ByteReader): string {
  return r.latin1(limits.keyBytesMax);
}

function writeOptional(w: ByteWriter, value: Uint8Array | null): void {
  if (value === null) w.u8(0);
  else w.u8(1).bytes(value);
}

function readOptional(r: ByteReader): Uint8Array | null {
  return r.u8() === 0 ? null : r.sharedBytes(limits.valueBytesMax);
}

/** Encodes a command for a log entry. */
export function encodeCommand(command: Command): Uint8Array {
  const { operation } = command;
  const w = new ByteWriter(64 + (operation.op === 'put' || operation.op === 'set' ? operation.key.length + operation.value.length : 64));
  w.u8(formatVersion).string(command.clientId).u64(command.seq).u8(opCodes[operation.op]);
  switch (operation.op) {
    case 'put':
    case 'append':
      keyOut(w, operation.key);
      w.bytes(operation.value);
      break;
    case 'del':
    case 'getdel':
      keyOut(w, operation.key);
      break;
    case 'cas':
      keyOut(w, operation.key);
      writeOptional(w, operation.expected);
      writeOptional(w, operation.value);
      break;
    case 'set':
      keyOut(w, operation.key);
      w.bytes(operation.value).u8(setConditions.indexOf(operation.when)).u8(operation.returnPrevious ? 1 : 0);
      break;
    case 'mset':
      w.u32(operation.pairs.length);
      for (const [key, value] of operation.pairs) {
        keyOut(w, key);
        w.bytes(value);
      }
      break;
    case 'delKeys':
      w.u32(operation.keys.length);
      for (const key of operation.keys) keyOut(w, key);
      break;
    case 'incrBy':
      keyOut(w, operation.key);
      w.string(operation.delta.toString());
      break;
    case 'flushall':
      break;
  }
  return w.finish();
}

function readCount(r: ByteReader): number {
  const count = r.u32();
  if (count > commandKeysMax) throw new TandemError(ErrorCode.corrupt, `command: ${count} keys is over the limit`);
  return count;
}

function decodeOperation(code: number, r: ByteReader): Operation {
  switch (code) {
    case opCodes.put:
      return { op: 'put', key: keyIn(r), value: r.sharedBytes(limits.valueBytesMax) };
    case opCodes.del:
      return { op: 'del', key: keyIn(r) };
    case opCodes.cas:
      return { op: 'cas', key: keyIn(r), expected: readOptional(r), value: readOptional(r) };
    case opCodes.set: {
      const key = keyIn(r);
      const value = r.sharedBytes(limits.valueBytesMax);
      const when = setConditions[r.u8()];
      if (when === undefined) throw new TandemError(ErrorCode.corrupt, 'command: unknown SET condition');
      return { op: 'set', key, value, when, returnPrevious: r.u8() === 1 };
    }
    case opCodes.mset: {
      const pairs: [string, Uint8Array][] = [];
      for (let n = readCount(r); n > 0; n--) pairs.push([keyIn(r), r.sharedBytes(limits.valueBytesMax)]);
      return { op: 'mset', pairs };
    }
    case opCodes.delKeys: {
      const keys: string[] = [];
      for (let n = readCount(r); n > 0; n--) keys.push(keyIn(r));
      return { op: 'delKeys', keys };
    }
    case opCodes.incrBy: {
      const key = keyIn(r);
      const text = r.string(32);
      if (!/^-?\d{1,20}$/.test(text)) throw new TandemError(ErrorCode.corrupt, 'command: bad increment');
      return { op: 'incrBy', key, delta: BigInt(text) };
    }
    case opCodes.append:
      return { op: 'append', key: keyIn(r), value: r.sharedBytes(limits.valueBytesMax) };
    case opCodes.getdel:
      return { op: 'getdel', key: keyIn(r) };
    case opCodes.flushall:
      return { op: 'flushall' };
    default:
      throw new TandemError(ErrorCode.corrupt, `command: unknown operation code ${code}`);
  }
}

/**
 * The first byte of an entry that holds several commands (one command starts with its format
 * version): [marker u8][count u32] then each command as [length u32][bytes].
 */
const batchMarker = 0xb7;
/** Commands one entry may hold, and the bytes they may take together (a larger command goes alone). */
export const batchCommandsMax = 1024;
export const batchBytesMax = 256 * 1024;
/** A batch's framing: its marker and count, and each command's length. */
export const batchHeaderBytes = 5;
export const batchCommandHeaderBytes = 4;

/**
 * Joins encoded commands into one entry's data, applied in this order as one step. A leader puts
 * the writes that arrive together in one entry: the log, the peers and the state machine then
 * pay once per entry for what they paid once per write.
 */
export function encodeCommandBatch(commands: readonly Uint8Array[]): Uint8Array {
  let total = batchHeaderBytes;
  for (const command of commands) total += batchCommandHeaderBytes + command.length;
  const w = new ByteWriter(total).u8(batchMarker).u32(commands.length);
  for (const command of commands) w.bytes(command);
  return w.finish();
}

/**
 * The commands an entry's data holds, in order: itself when it is one command, its parts when it
 * is a batch. Throws a TandemError (CORRUPT) when a batch's framing is wrong; the parts themselves
 * are decoded one by one (decodeCommand), so one bad part spoils only its own reply.
 */
export function commandsOfEntry(data: Uint8Array): Uint8Array[] {
  if (data[0] !== batchMarker) return [data];
  const r = new ByteReader(data, 'command batch');
  r.u8();
  const count = r.u32();
  if (count < 2 || count > batchCommandsMax) throw new TandemError(ErrorCode.corrupt, `command batch: ${count} commands is out of range`);
  const parts: Uint8Array[] = [];
  for (let k = 0; k < count; k++) parts.push(r.sharedBytes(batchBytesMax));
  r.end();
  return parts;
}

/**
 * Decodes a command; throws a TandemError (CORRUPT) on bytes that are not one. Its values are
 * views of `bytes` (an entry's data, which never changes), not copies.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  const r = new ByteReader(bytes, 'command');
  const version = r.u8();
  if (version !== formatVersion) throw new TandemError(ErrorCode.corrupt, `command: unknown format version ${version}`);
  const clientId = r.string(256);
  const seq = r.u64();
  const operation = decodeOperation(r.u8(), r);
  r.end();
  return { clientId, seq, operation };
}

/** Encodes a reply for the client-session table. */
export function encodeReply(reply: Reply): Uint8Array {
  const w = new ByteWriter(16);
  switch (reply.kind) {
    case 'ok':
      return w.u8(1).finish();
    case 'deleted':
      return w.u8(2).u32(reply.count).finish();
    case 'cas':
      return w.u8(3).u8(reply.swapped ? 1 : 0).finish();
    case 'error':
      return w.u8(4).string(reply.code).string(reply.message).finish();
    case 'set':
      w.u8(5).u8(reply.written ? 1 : 0);
      writeOptional(w, reply.previous);
      return w.finish();
    case 'integer':
      return w.u8(6).string(reply.value.toString()).finish();
    case 'value':
      w.u8(7);
      writeOptional(w, reply.value);
      return w.finish();
  }
}

/** Decodes a reply from the client-session table. */
export function decodeReply(bytes: Uint8Array): Reply {
  const r = new ByteReader(bytes, 'reply');
  const kind = r.u8();
  if (kind === 1) return { kind: 'ok' };
  if (kind === 2) return { kind: 'deleted', count: r.u32() };
  if (kind === 3) return { kind: 'cas', swapped: r.u8() === 1 };
  if (kind === 4) return { kind: 'error', code: r.string(64) as ErrorCode, message: r.string(4096) };
  if (kind === 5) return { kind: 'set', written: r.u8() === 1, previous: readOptional(r) };
  if (kind === 6) return { kind: 'integer', value: BigInt(r.string(32)) };
  if (kind === 7) return { kind: 'value', value: readOptional(r) };
  throw new TandemError(ErrorCode.corrupt, `reply: unknown kind ${kind}`);
}
