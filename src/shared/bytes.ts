import { TandemError, ErrorCode } from './errors.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** The string of UTF-8 bytes; throws a TandemError on invalid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return textDecoder.decode(bytes);
  } catch (error) {
    throw new TandemError(ErrorCode.badRequest, 'invalid UTF-8', {}, error);
  }
}

/** True when two byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Unused bytes a finished writer may keep rather than copy its contents into an exact buffer. */
const finishSlackBytes = 64;

/** The size of the slabs small byte arrays are cut from (as Node's Buffer pool: 8 KiB). */
const slabBytes = 8 * 1024;
let slab = new ArrayBuffer(slabBytes);
let slabUsed = 0;

/**
 * `size` bytes (not zeroed), cut from a shared slab when small — one ArrayBuffer per write (or
 * several) made V8's young-generation collections slow, each with thousands of backing stores to
 * free — and one array object, not Buffer.allocUnsafe's Buffer and a Uint8Array view of it.
 */
function allocBytes(size: number): Uint8Array {
  if (size >= slabBytes >>> 1) {
    // Not zeroed: a snapshot's piece or a large batch is written over at once.
    const own = Buffer.allocUnsafe(size);
    return new Uint8Array(own.buffer, own.byteOffset, size);
  }
  if (slabUsed + size > slabBytes) {
    slab = new ArrayBuffer(slabBytes);
    slabUsed = 0;
  }
  const bytes = new Uint8Array(slab, slabUsed, size);
  slabUsed = (slabUsed + size + 7) & ~7;
  return bytes;
}

/** Appends little-endian fields to a growing buffer (one array object: no DataView, no Buffer). */
export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(initialBytes = 64) {
    this.buffer = allocBytes(initialBytes);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = Math.max(this.buffer.length * 2, 16);
    while (size < this.length + bytes) size *= 2;
    const next = allocBytes(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  private u32At(at: number, value: number): void {
    const b = this.buffer;
    b[at] = value;
    b[at + 1] = value >>> 8;
    b[at + 2] = value >>> 16;
    b[at + 3] = value >>> 24;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.u32At(this.length, value);
    this.length += 4;
    return this;
  }

  /** An unsigned integer up to 2^53 - 1, as 8 bytes. */
  u64(value: number): this {
    this.reserve(8);
    this.u32At(this.length, value % 0x100000000);
    this.u32At(this.length + 4, Math.floor(value / 0x100000000));
    this.length += 8;
    return this;
  }

  /** Length-prefixed (u32) bytes. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.raw(value);
    return this;
  }

  raw(value: Uint8Array): this {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  string(value: string): this {
    return value.length === 0 ? this.u32(0) : this.bytes(utf8(value));
  }

  /**
   * Length-prefixed (u32) latin1 bytes of `value` (a character above 255 keeps its low byte, as
   * Buffer.from(value, 'latin1')), written in place: no Buffer per key.
   */
  latin1(value: string): this {
    const n = value.length;
    this.u32(n);
    this.reserve(n);
    const b = this.buffer;
    const at = this.length;
    for (let i = 0; i < n; i++) b[at + i] = value.charCodeAt(i);
    this.length += n;
    return this;
  }

  /**
   * The bytes written; the writer is done with. When the buffer is (nearly) full, the result is
   * its view (or itself), not a copy: a writer sized for its contents (a command) pays no second copy.
   */
  finish(): Uint8Array {
    const slack = this.buffer.length - this.length;
    if (slack === 0) return this.buffer;
    if (slack <= finishSlackBytes || slack * 8 <= this.length) return this.buffer.subarray(0, this.length);
    const out = allocBytes(this.length);
    out.set(this.buffer.subarray(0, this.length));
    return out;
  }
}

/** Reads what ByteWriter wrote, checking every length against what remains before allocating. */
export class ByteReader {
  private offset = 0;

  // Integers are read from the bytes directly: no DataView per reader (one per command decoded).
  constructor(private readonly buffer: Uint8Array, private readonly what = 'record') {}

  /** The little-endian u32 at `at` (bounds already checked). */
  private u32At(at: number): number {
    const b = this.buffer;
    return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16)) + (b[at + 3] as number) * 0x1000000;
  }

  private need(bytes: number): void {
    if (bytes < 0 || this.offset + bytes > this.buffer.length) {
      throw new TandemError(ErrorCode.corrupt, `${this.what}: needs ${bytes} bytes at offset ${this.offset}, has ${this.buffer.length - this.offset}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.offset++] as number;
  }

  u32(): number {
    this.need(4);
    const value = this.u32At(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const low = this.u32At(this.offset);
    const high = this.u32At(this.offset + 4);
    this.offset += 8;
    const value = high * 0x100000000 + low;
    if (!Number.isSafeInteger(value)) throw new TandemError(ErrorCode.corrupt, `${this.what}: integer too large at offset ${this.offset - 8}`);
    return value;
  }

  bytes(maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
    return this.raw(this.fieldLength(maxBytes));
  }

  /** A length-prefixed field's length, checked against `maxBytes` before anything is read. */
  private fieldLength(maxBytes: number): number {
    const length = this.u32();
    if (length > maxBytes) throw new TandemError(ErrorCode.tooLarge, `${this.what}: field of ${length} bytes exceeds the limit of ${maxBytes}`);
    return length;
  }

  raw(length: number): Uint8Array {
    return this.shared(length).slice();
  }

  /**
   * Like raw, without the copy: a view that shares the reader's bytes. Only for bytes that never
   * change (a log entry's data, a received message): the view keeps all of them alive.
   */
  shared(length: number): Uint8Array {
    this.need(length);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** A length-prefixed field as a latin1 string (one char a byte), read without a view of it kept. */
  latin1(maxBytes = Number.MAX_SAFE_INTEGER): string {
    const length = this.fieldLength(maxBytes);
    this.need(length);
    const b = this.buffer;
    const text = Buffer.from(b.buffer, b.byteOffset + this.offset, length).toString('latin1');
    this.offset += length;
    return text;
  }

  /** Like bytes, as a view (see shared). */
  sharedBytes(maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
    return this.shared(this.fieldLength(maxBytes));
  }

  string(maxBytes = Number.MAX_SAFE_INTEGER): string {
    // Decoded from a view: the string is the copy (and an empty one, a client id left out, costs nothing).
    const length = this.fieldLength(maxBytes);
    return length === 0 ? '' : fromUtf8(this.shared(length));
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new TandemError(ErrorCode.corrupt, `${this.what}: ${this.remaining} trailing bytes`);
  }
}
