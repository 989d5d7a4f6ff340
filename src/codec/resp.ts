/**
 * The Redis protocol (RESP2, and RESP3 replies after HELLO 3): an incremental request parser
 * that checks every length against a limit before allocating, and reply encoders. Error texts
 * follow Redis's, so clients and people see what they expect.
 */

/** Limits on what one request may claim. */
export interface RespLimits {
  /** The largest bulk string (Redis: proto-max-bulk-len, 512 MB by default). */
  readonly bulkBytesMax: number;
  /** The most arguments in one command. */
  readonly argumentsMax: number;
  /** The longest inline (telnet-style) command line. */
  readonly inlineBytesMax: number;
}

export const defaultRespLimits: RespLimits = { bulkBytesMax: 512 * 1024 * 1024, argumentsMax: 1024 * 1024, inlineBytesMax: 64 * 1024 };

/**
 * What the parser produced: a command or a protocol error (close after replying). A command's
 * arguments are views of the bytes read, not copies: one that is kept past its command (beyond
 * applying a write, which copies its values into the state store) must be copied by its keeper,
 * or it keeps the whole read alive.
 */
export type RespRequest = { readonly kind: 'command'; readonly args: Buffer[] } | { readonly kind: 'error'; readonly message: string };

const CR = 13;
const LF = 10;
/** What a count line ("*3", "$100") held: a number, not yet all of it, too much, or not a number. */
type LineState = 'ok' | 'incomplete' | 'tooLong' | 'invalid';
/** The longest count line before its CRLF. */
const lineBytesMax = 32;

/**
 * Parses requests from a byte stream. `push` adds bytes; `next` returns the next complete
 * request, or null when more bytes are needed. After an error the parser stays failed: the
 * connection must be answered and closed, as Redis does.
 */
export class RespParser {
  /** The bytes read and not yet parsed are `buffer` from `start` on (a cursor, not a new view per command). */
  private buffer: Buffer = Buffer.alloc(0);
  private start = 0;
  private failed: string | null = null;
  /** The last integer integerLine read, and where its line ended. */
  private lineValue = 0;
  private lineEnd = 0;

  constructor(private readonly limits: RespLimits = defaultRespLimits) {}

  push(chunk: Buffer): void {
    this.buffer = this.start >= this.buffer.length ? chunk : Buffer.concat([this.buffer.subarray(this.start), chunk]);
    this.start = 0;
  }

  next(): RespRequest | null {
    if (this.failed !== null) return { kind: 'error', message: this.failed };
    if (this.start >= this.buffer.length) return null;
    const result = this.buffer[this.start] === 0x2a /* '*' */ ? this.parseMultibulk() : this.parseInline();
    if (result !== null && result.kind === 'error') this.failed = result.message;
    return result;
  }

  private fail(message: string): RespRequest {
    return { kind: 'error', message: `ERR Protocol error: ${message}` };
  }

  /**
   * Reads the integer on the CRLF-terminated line at `offset` (at most `lineBytesMax` bytes before
   * the CRLF; an optional '-' and 1 to 18 digits) into `lineValue`, with `lineEnd` past the CRLF.
   * Returns what it found. Parsed from the bytes: no string, regular expression or object per line
   * (three count lines per SET).
   */
  private integerLine(offset: number): LineState {
    const buffer = this.buffer;
    const max = Math.min(buffer.length, offset + lineBytesMax + 2);
    let value = 0;
    let digits = 0;
    let negative = false;
    let valid = true;
    for (let i = offset; i < max - 1; i++) {
      const byte = buffer[i] as number;
      if (byte === CR && buffer[i + 1] === LF) {
        this.lineEnd = i + 2;
        this.lineValue = negative ? -value : value;
        return valid && digits >= 1 && digits <= 18 ? 'ok' : 'invalid';
      }
      if (byte === 0x2d /* '-' */ && i === offset) negative = true;
      else if (byte >= 0x30 && byte <= 0x39) {
        value = value * 10 + (byte - 0x30);
        digits++;
      } else valid = false;
    }
    return buffer.length - offset > lineBytesMax + 2 ? 'tooLong' : 'incomplete';
  }

  private parseMultibulk(): RespRequest | null {
    const header = this.integerLine(this.start + 1);
    if (header === 'incomplete') return null;
    if (header === 'tooLong') return this.fail('too big mbulk count string');
    const count = this.lineValue;
    if (header === 'invalid' || count > this.limits.argumentsMax) return this.fail('invalid multibulk length');
    let offset = this.lineEnd;
    if (count <= 0) {
      this.start = offset;
      return this.next();
    }
    const buffer = this.buffer;
    // Sized at once when small (a SET's three): a growing array starts with room for seventeen.
    // Not when large: an incomplete request is parsed again as its bytes arrive.
    const small = count <= 16;
    const args: Buffer[] = small ? new Array<Buffer>(count) : [];
    for (let k = 0; k < count; k++) {
      if (offset >= buffer.length) return null;
      if (buffer[offset] !== 0x24 /* '$' */) return this.fail(`expected '$', got '${String.fromCharCode(buffer[offset] as number)}'`);
      const size = this.integerLine(offset + 1);
      if (size === 'incomplete') return null;
      if (size === 'tooLong') return this.fail('too big bulk count string');
      const length = this.lineValue;
      if (size === 'invalid' || length < 0 || length > this.limits.bulkBytesMax) return this.fail('invalid bulk length');
      const start = this.lineEnd;
      if (buffer.length < start + length + 2) return null;
      if (buffer[start + length] !== CR || buffer[start + length + 1] !== LF) return this.fail('bulk string not terminated by CRLF');
      const arg = buffer.subarray(start, start + length);
      if (small) args[k] = arg;
      else args.push(arg);
      offset = start + length + 2;
    }
    this.start = offset;
    return { kind: 'command', args };
  }

  private parseInline(): RespRequest | null {
    const newline = this.buffer.indexOf(LF, this.start);
    if (newline === -1) {
      if (this.buffer.length - this.start > this.limits.inlineBytesMax) return this.fail('too big inline request');
      return null;
    }
    if (newline - this.start > this.limits.inlineBytesMax) return this.fail('too big inline request');
    const text = this.buffer.toString('latin1', this.start, newline).replace(/\r$/, '');
    this.start = newline + 1;
    const args = splitInline(text);
    if (args === null) return this.fail('unbalanced quotes in request');
    if (args.length === 0) return this.next();
    return { kind: 'command', args: args.map((a) => Buffer.from(a, 'latin1')) };
  }
}

/** Splits an inline command like Redis's sdssplitargs: spaces separate, quotes group. */
function splitInline(text: string): string[] | null {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    if (i >= text.length) break;
    let arg = '';
    const quote = text[i] === '"' || text[i] === "'" ? (text[i] as string) : null;
    if (quote !== null) {
      i++;
      let closed = false;
      while (i < text.length) {
        const c = text[i] as string;
        if (quote === '"' && c === '\\' && i + 1 < text.length) {
          const escaped = text[i + 1] as string;
          if (escaped === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
            arg += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 4), 16));
            i += 4;
            continue;
          }
          arg += ({ n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' } as Record<string, string>)[escaped] ?? escaped;
          i += 2;
          continue;
        }
        if (c === quote) {
          closed = true;
          i++;
          break;
        }
        arg += c;
        i++;
      }
      if (!closed || (i < text.length && !/\s/.test(text[i] as string))) return null;
    } else {
      while (i < text.length && !/\s/.test(text[i] as string)) arg += text[i++];
    }
    args.push(arg);
  }
  return args;
}

/** The reply to most writes, made once: replies are only ever written out or copied, never changed. */
const okReply = Buffer.from('+OK\r\n');

/** Reply encoders; `resp3` switches null, maps, booleans and doubles to their RESP3 forms. */
export const resp = {
  simple: (text: string): Buffer => (text === 'OK' ? okReply : Buffer.from(`+${text}\r\n`)),
  error: (text: string): Buffer => Buffer.from(`-${text.replace(/[\r\n]/g, ' ')}\r\n`),
  integer: (n: number): Buffer => Buffer.from(`:${n}\r\n`),
  bulk: (value: Uint8Array | string): Buffer => {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    const head = `$${bytes.length}\r\n`;
    // One buffer, written in place: a GET's reply costs one allocation and one copy of the value.
    const out = Buffer.allocUnsafe(head.length + bytes.length + 2);
    out.write(head, 0, 'latin1');
    out.set(bytes, head.length);
    out[out.length - 2] = 13;
    out[out.length - 1] = 10;
    return out;
  },
  nil: (resp3: boolean): Buffer => Buffer.from(resp3 ? '_\r\n' : '$-1\r\n'),
  nilArray: (resp3: boolean): Buffer => Buffer.from(resp3 ? '_\r\n' : '*-1\r\n'),
  array: (items: readonly Buffer[]): Buffer => Buffer.concat([Buffer.from(`*${items.length}\r\n`), ...items]),
  /** A map in RESP3; a flat array of key, value, … in RESP2. */
  map: (pairs: readonly (readonly [Buffer, Buffer])[], resp3: boolean): Buffer =>
    Buffer.concat([Buffer.from(resp3 ? `%${pairs.length}\r\n` : `*${pairs.length * 2}\r\n`), ...pairs.flatMap(([k, v]) => [k, v])]),
};

/** A reply as a client reads it: simple strings, bulk strings, integers, nil, arrays, errors. */
export type RespValue = string | Buffer | bigint | null | RespErrorReply | RespValue[];

/** An error reply (`-CODE message`); `code` is its first word. */
export class RespErrorReply {
  readonly code: string;
  constructor(readonly message: string) {
    this.code = message.split(' ', 1)[0] ?? '';
  }
}

/** What a reply parser may accept: nesting and sizes are limited like requests are. */
const replyDepthMax = 8;

/**
 * Parses replies (RESP2, and RESP3 nil and maps as arrays) from a byte stream, for Tandem's
 * own client and the follower-to-leader forwarder. Throws on bytes that are not RESP.
 */
export class RespReplyParser {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly bulkBytesMax: number = defaultRespLimits.bulkBytesMax) {}

  push(chunk: Buffer): void {
    const rest = this.buffer.subarray(this.offset);
    this.buffer = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    this.offset = 0;
  }

  /** The next complete reply, or undefined when more bytes are needed. */
  next(): RespValue | undefined {
    const parsed = this.parse(this.offset, 0);
    if (parsed === undefined) return undefined;
    this.offset = parsed.end;
    return parsed.value;
  }

  private line(offset: number): { text: string; end: number } | undefined {
    const cr = this.buffer.indexOf('\r\n', offset, 'latin1');
    if (cr === -1) {
      if (this.buffer.length - offset > 64 * 1024) throw new Error('RESP reply line longer than 64 KiB');
      return undefined;
    }
    return { text: this.buffer.toString('latin1', offset, cr), end: cr + 2 };
  }

  private parse(offset: number, depth: number): { value: RespValue; end: number } | undefined {
    if (offset >= this.buffer.length) return undefined;
    if (depth > replyDepthMax) throw new Error('RESP reply nested too deeply');
    const type = String.fromCharCode(this.buffer[offset] as number);
    const header = this.line(offset + 1);
    if (header === undefined) return undefined;
    switch (type) {
      case '+':
        return { value: header.text, end: header.end };
      case '-':
        return { value: new RespErrorReply(header.text), end: header.end };
      case ':':
        if (!/^-?\d+$/.test(header.text)) throw new Error(`bad RESP integer '${header.text}'`);
        return { value: BigInt(header.text), end: header.end };
      case '_':
        return { value: null, end: header.end };
      case '$': {
        const length = Number(header.text);
        if (length === -1) return { value: null, end: header.end };
        if (!Number.isInteger(length) || length < 0 || length > this.bulkBytesMax) throw new Error(`bad RESP bulk length '${header.text}'`);
        if (this.buffer.length < header.end + length + 2) return undefined;
        return { value: Buffer.from(this.buffer.subarray(header.end, header.end + length)), end: header.end + length + 2 };
      }
      case '*':
      case '%': {
        const count = Number(header.text) * (type === '%' ? 2 : 1);
        if (count < 0) return { value: null, end: header.end };
        if (!Number.isInteger(count) || count > defaultRespLimits.argumentsMax) throw new Error(`bad RESP array length '${header.text}'`);
        const items: RespValue[] = [];
        let end = header.end;
        for (let k = 0; k < count; k++) {
          const item = this.parse(end, depth + 1);
          if (item === undefined) return undefined;
          items.push(item.value);
          end = item.end;
        }
        return { value: items, end };
      }
      default:
        throw new Error(`unexpected RESP type byte '${type}'`);
    }
  }
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeRespCommand(args: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
