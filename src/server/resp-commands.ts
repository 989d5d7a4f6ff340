import { resp } from '../codec/resp.js';
import { int64Max, int64Min, type Operation, type Reply, type SetCondition } from '../kv/commands.js';
import type { KvStateMachine } from '../kv/machine.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { globMatch } from './glob.js';

/**
 * The Redis data commands Tandem speaks, as plans: a write becomes one state-machine operation
 * (so MSET and multi-key DEL are atomic) and a rendering of its reply; a read becomes a function
 * of the state, run once the read's consistency is satisfied. Reply shapes and error texts are
 * Redis's.
 */

/** A write: the operation to log, whether its reply needs the applied result, how to answer. */
export interface WritePlan {
  readonly operation: Operation;
  readonly needsResult: boolean;
  readonly render: (reply: Reply | null, resp3: boolean) => Buffer;
}

/** A read: renders its answer from the state machine. */
export type ReadPlan = (kv: KvStateMachine, resp3: boolean, scans: ScanCursors) => Buffer;

/** A Redis-style error reply: the text carries its own prefix (ERR, WRONGTYPE, …). */
export class RespCommandError extends Error {}

/** Redis's answers to bad arguments. */
export const respErrors = {
  syntax: () => new RespCommandError('ERR syntax error'),
  notInteger: () => new RespCommandError('ERR value is not an integer or out of range'),
  arity: (name: string) => new RespCommandError(`ERR wrong number of arguments for '${name.toLowerCase()}' command`),
};

/** Keys, values and options arrive as bytes; keys are held as latin1 strings (one char per byte). */
const text = (arg: Buffer | undefined): string => (arg as Buffer).toString('latin1');
const upper = (arg: Buffer | undefined): string => text(arg).toUpperCase();

/** A byte's ASCII upper case (Redis compares command names as strcasecmp does: ASCII only). */
const upperByte = (byte: number): number => (byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte);

/**
 * Finds a command's name (upper case) from its bytes without making strings of them — the text
 * and its upper case were two strings per command — among the names it was given (upper-case
 * ASCII); null for any other.
 */
export class CommandNames {
  private readonly byHash = new Map<number, string[]>();
  private readonly longest: number;

  constructor(names: Iterable<string>) {
    let longest = 0;
    for (const name of new Set(names)) {
      const h = CommandNames.hash(Buffer.from(name, 'latin1'));
      const same = this.byHash.get(h);
      if (same === undefined) this.byHash.set(h, [name]);
      else same.push(name);
      longest = Math.max(longest, name.length);
    }
    this.longest = longest;
  }

  private static hash(bytes: Uint8Array): number {
    let h = bytes.length;
    for (let i = 0; i < bytes.length; i++) h = (Math.imul(h, 31) + upperByte(bytes[i] as number)) | 0;
    return h;
  }

  find(bytes: Uint8Array): string | null {
    if (bytes.length > this.longest) return null;
    const candidates = this.byHash.get(CommandNames.hash(bytes));
    if (candidates === undefined) return null;
    for (const name of candidates) {
      if (name.length !== bytes.length) continue;
      let k = 0;
      while (k < name.length && name.charCodeAt(k) === upperByte(bytes[k] as number)) k++;
      if (k === name.length) return name;
    }
    return null;
  }
}

/** Parses a Redis integer argument (signed 64-bit); throws Redis's error otherwise. */
export function integerArgument(arg: Buffer | undefined): bigint {
  const s = text(arg);
  if (!/^-?\d{1,20}$/.test(s)) throw respErrors.notInteger();
  const n = BigInt(s);
  if (n > int64Max || n < int64Min) throw respErrors.notInteger();
  return n;
}

function smallInteger(arg: Buffer | undefined, min: number, max: number): number {
  const n = integerArgument(arg);
  if (n < BigInt(min) || n > BigInt(max)) throw respErrors.notInteger();
  return Number(n);
}

const ok = (): Buffer => resp.simple('OK');

/** Renders a reply that carries an error from the state machine, or falls through to `render`. */
function withErrors(render: (reply: Reply | null, resp3: boolean) => Buffer): (reply: Reply | null, resp3: boolean) => Buffer {
  return (reply, resp3) => {
    if (reply?.kind === 'error') return resp.error(reply.code === ErrorCode.staleRequest ? `${reply.code} ${reply.message}` : `ERR ${reply.message}`);
    return render(reply, resp3);
  };
}

function integerReply(reply: Reply | null): Buffer {
  if (reply?.kind === 'integer') return Buffer.from(`:${reply.value.toString()}\r\n`);
  if (reply?.kind === 'deleted') return resp.integer(reply.count);
  throw new TandemError(ErrorCode.corrupt, `expected an integer reply, got ${reply?.kind ?? 'none'}`);
}

function valueReply(value: Uint8Array | null | undefined, resp3: boolean): Buffer {
  return value === null || value === undefined ? resp.nil(resp3) : resp.bulk(value);
}

/** A plain SET's reply (OK, or the state machine's error): one function for every such SET. */
const plainSetRender = withErrors(() => ok());

function parseSet(args: Buffer[]): WritePlan {
  const key = text(args[1]);
  const value = args[2] as Buffer;
  let when: SetCondition = 'always';
  let returnPrevious = false;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]);
    if ((option === 'NX' || option === 'XX') && when === 'always') when = option === 'NX' ? 'nx' : 'xx';
    else if (option === 'GET' && !returnPrevious) returnPrevious = true;
    else if (option === 'KEEPTTL') continue;
    else if (option === 'EX' || option === 'PX' || option === 'EXAT' || option === 'PXAT') {
      throw new RespCommandError(`ERR SET ${option}: Tandem keeps no expiry times (keys live until deleted)`);
    } else throw respErrors.syntax();
  }
  const plain = when === 'always' && !returnPrevious;
  if (plain) return { operation: { op: 'set', key, value, when, returnPrevious }, needsResult: false, render: plainSetRender };
  return {
    operation: { op: 'set', key, value, when, returnPrevious },
    needsResult: true,
    render: withErrors((reply, resp3) => {
      if (reply?.kind !== 'set') throw new TandemError(ErrorCode.corrupt, 'SET answered without a set reply');
      if (returnPrevious) return valueReply(reply.previous, resp3);
      return reply.written ? ok() : resp.nil(resp3);
    }),
  };
}

function incrementPlan(key: string, delta: bigint): WritePlan {
  return { operation: { op: 'incrBy', key, delta }, needsResult: true, render: withErrors(integerReply) };
}

/** The write commands: name → [arity (Redis's convention: negative means at least), parser]. */
export const writeCommands: ReadonlyMap<string, readonly [number, (args: Buffer[]) => WritePlan]> = new Map<string, readonly [number, (args: Buffer[]) => WritePlan]>([
  ['SET', [-3, parseSet]],
  [
    'MSET',
    [
      -3,
      (args) => {
        if ((args.length - 1) % 2 !== 0) throw respErrors.arity('mset');
        const pairs: [string, Uint8Array][] = [];
        for (let i = 1; i < args.length; i += 2) pairs.push([text(args[i]), args[i + 1] as Buffer]);
        return { operation: { op: 'mset', pairs }, needsResult: false, render: withErrors(ok) };
      },
    ],
  ],
  ['DEL', [-2, (args) => ({ operation: { op: 'delKeys', keys: args.slice(1).map((a) => text(a)) }, needsResult: true, render: withErrors(integerReply) })]],
  ['UNLINK', [-2, (args) => ({ operation: { op: 'delKeys', keys: args.slice(1).map((a) => text(a)) }, needsResult: true, render: withErrors(integerReply) })]],
  ['INCR', [2, (args) => incrementPlan(text(args[1]), 1n)]],
  ['DECR', [2, (args) => incrementPlan(text(args[1]), -1n)]],
  ['INCRBY', [3, (args) => incrementPlan(text(args[1]), integerArgument(args[2]))]],
  [
    'DECRBY',
    [
      3,
      (args) => {
        const delta = integerArgument(args[2]);
        if (delta === int64Min) throw new RespCommandError('ERR decrement would overflow');
        return incrementPlan(text(args[1]), -delta);
      },
    ],
  ],
  ['APPEND', [3, (args) => ({ operation: { op: 'append', key: text(args[1]), value: args[2] as Buffer }, needsResult: true, render: withErrors(integerReply) })]],
  [
    'GETDEL',
    [2, (args) => ({ operation: { op: 'getdel', key: text(args[1]) }, needsResult: true, render: withErrors((reply, resp3) => valueReply(reply?.kind === 'value' ? reply.value : null, resp3)) })],
  ],
  ['FLUSHALL', [-1, (args) => flushPlan(args)]],
  ['FLUSHDB', [-1, (args) => flushPlan(args)]],
]);

function flushPlan(args: Buffer[]): WritePlan {
  if (args.length > 2 || (args.length === 2 && !['SYNC', 'ASYNC'].includes(upper(args[1])))) throw respErrors.syntax();
  return { operation: { op: 'flushall' }, needsResult: false, render: withErrors(ok) };
}

/** Scan cursors: a number handed to the client stands for the last key it was given. */
export class ScanCursors {
  private readonly lastKeys = new Map<number, string>();
  private next = 1;

  constructor(private readonly cursorsMax = 10_000) {}

  /** The key after which cursor `cursor` resumes (null: the start); throws on an unknown cursor. */
  resume(cursor: bigint): string | null {
    if (cursor === 0n) return null;
    const key = this.lastKeys.get(Number(cursor));
    if (key === undefined) throw new RespCommandError('ERR invalid cursor');
    return key;
  }

  /** A new cursor that resumes after `key`. Old cursors are forgotten beyond the limit. */
  remember(key: string): number {
    const cursor = this.next++;
    this.lastKeys.set(cursor, key);
    if (this.lastKeys.size > this.cursorsMax) this.lastKeys.delete(this.lastKeys.keys().next().value as number);
    return cursor;
  }
}

/** The most keys SCAN looks at per call, whatever COUNT asks. */
const scanCountMax = 10_000;
/** KEYS reads the keyspace in pages of this many. */
const keysPageSize = 1000;

function parseScan(args: Buffer[]): ReadPlan {
  const cursor = integerArgument(args[1]);
  if (cursor < 0n) throw new RespCommandError('ERR invalid cursor');
  let pattern: string | null = null;
  let count = 10;
  for (let i = 2; i < args.length; i += 2) {
    const option = upper(args[i]);
    if (i + 1 >= args.length) throw respErrors.syntax();
    if (option === 'MATCH') pattern = text(args[i + 1]);
    else if (option === 'COUNT') count = smallInteger(args[i + 1], 1, Number.MAX_SAFE_INTEGER);
    else if (option === 'TYPE') pattern = text(args[i + 1]).toLowerCase() === 'string' ? pattern : '\u0000never';
    else throw respErrors.syntax();
  }
  return (kv, _resp3, scans) => {
    const keys = kv.keysAfter(scans.resume(cursor), Math.min(count, scanCountMax));
    const last = keys[keys.length - 1];
    const next = keys.length < Math.min(count, scanCountMax) || last === undefined ? 0 : scans.remember(last);
    const matched = pattern === null ? keys : keys.filter((key) => globMatch(pattern as string, key));
    return resp.array([resp.bulk(String(next)), resp.array(matched.map((key) => resp.bulk(Buffer.from(key, 'latin1'))))]);
  };
}

function keysPlan(pattern: string): ReadPlan {
  return (kv) => {
    const found: Buffer[] = [];
    let after: string | null = null;
    for (;;) {
      const page = kv.keysAfter(after, keysPageSize);
      for (const key of page) if (globMatch(pattern, key)) found.push(resp.bulk(Buffer.from(key, 'latin1')));
      if (page.length < keysPageSize) return resp.array(found);
      after = page[page.length - 1] as string;
    }
  };
}

/** The read commands: name → [arity, parser]. */
export const readCommands: ReadonlyMap<string, readonly [number, (args: Buffer[]) => ReadPlan]> = new Map<string, readonly [number, (args: Buffer[]) => ReadPlan]>([
  ['GET', [2, (args) => (kv, resp3) => valueReply(kv.get(text(args[1])), resp3)]],
  ['MGET', [-2, (args) => (kv, resp3) => resp.array(args.slice(1).map((key) => valueReply(kv.get(text(key)), resp3)))]],
  ['EXISTS', [-2, (args) => (kv) => resp.integer(args.slice(1).filter((key) => kv.get(text(key)) !== undefined).length)]],
  ['STRLEN', [2, (args) => (kv) => resp.integer(kv.get(text(args[1]))?.length ?? 0)]],
  ['TYPE', [2, (args) => (kv) => resp.simple(kv.get(text(args[1])) === undefined ? 'none' : 'string')]],
  ['TTL', [2, (args) => (kv) => resp.integer(kv.get(text(args[1])) === undefined ? -2 : -1)]],
  ['PTTL', [2, (args) => (kv) => resp.integer(kv.get(text(args[1])) === undefined ? -2 : -1)]],
  ['DBSIZE', [1, () => (kv) => resp.integer(kv.size)]],
  ['SCAN', [-2, parseScan]],
  ['KEYS', [2, (args) => keysPlan(text(args[1]))]],
]);
