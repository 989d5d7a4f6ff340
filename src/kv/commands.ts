import { ByteReader, ByteWriter } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';

/** A state-machine operation. Keys are strings (binary keys travel as latin1 strings). */
export type Operation =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'del'; readonly key: string }
  /** Sets `key` to `value` (null deletes) only when it now holds `expected` (null: absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: Uint8Array | null; readonly value: Uint8Array | null };

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
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string };

const opCodes = { put: 1, del: 2, cas: 3 } as const;
const formatVersion = 1;

/** Checks a command's sizes before it is proposed; throws a TandemError naming the problem. */
export function validateCommand(command: Command): void {
  const { operation } = command;
  const keyBytes = Buffer.byteLength(operation.key, 'latin1');
  if (keyBytes === 0) throw new TandemError(ErrorCode.badRequest, 'the key is empty');
  if (keyBytes > limits.keyBytesMax) throw new TandemError(ErrorCode.tooLarge, `the key is ${keyBytes} bytes; the limit is ${limits.keyBytesMax}`);
  const values = operation.op === 'put' ? [operation.value] : operation.op === 'cas' ? [operation.expected, operation.value] : [];
  for (const value of values) {
    if (value !== null && value.length > limits.valueBytesMax) {
      throw new TandemError(ErrorCode.tooLarge, `the value is ${value.length} bytes; the limit is ${limits.valueBytesMax}`);
    }
  }
}

function writeOptional(w: ByteWriter, value: Uint8Array | null): void {
  if (value === null) w.u8(0);
  else w.u8(1).bytes(value);
}

function readOptional(r: ByteReader): Uint8Array | null {
  return r.u8() === 0 ? null : r.bytes(limits.valueBytesMax);
}

/** Encodes a command for a log entry. */
export function encodeCommand(command: Command): Uint8Array {
  const { operation } = command;
  const w = new ByteWriter(32 + operation.key.length + (operation.op === 'put' ? operation.value.length : 16));
  w.u8(formatVersion).string(command.clientId).u64(command.seq).u8(opCodes[operation.op]);
  w.bytes(Buffer.from(operation.key, 'latin1'));
  if (operation.op === 'put') w.bytes(operation.value);
  else if (operation.op === 'cas') {
    writeOptional(w, operation.expected);
    writeOptional(w, operation.value);
  }
  return w.finish();
}

/** Decodes a command; throws a TandemError (CORRUPT) on bytes that are not one. */
export function decodeCommand(bytes: Uint8Array): Command {
  const r = new ByteReader(bytes, 'command');
  const version = r.u8();
  if (version !== formatVersion) throw new TandemError(ErrorCode.corrupt, `command: unknown format version ${version}`);
  const clientId = r.string(256);
  const seq = r.u64();
  const code = r.u8();
  const key = Buffer.from(r.bytes(limits.keyBytesMax)).toString('latin1');
  let operation: Operation;
  if (code === opCodes.put) operation = { op: 'put', key, value: r.bytes(limits.valueBytesMax) };
  else if (code === opCodes.del) operation = { op: 'del', key };
  else if (code === opCodes.cas) operation = { op: 'cas', key, expected: readOptional(r), value: readOptional(r) };
  else throw new TandemError(ErrorCode.corrupt, `command: unknown operation code ${code}`);
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
  throw new TandemError(ErrorCode.corrupt, `reply: unknown kind ${kind}`);
}
