import type { Space } from '../kv/store.js';

/**
 * A group of state-machine changes in the byte form the LMDB writer thread takes: for each change
 * in order, the space (one byte; its high bit set when a later change of the same key supersedes
 * it), the key's length (u32) and bytes (latin1, one byte a char), then the value's length (i32,
 * -1 for a delete) and bytes. Little-endian. The bytes are in a SharedArrayBuffer: the event loop
 * keeps reading a group's values while the writer thread commits it, and neither copies it.
 */
export const spaceCodes: readonly Space[] = ['data', 'session', 'meta'];

const spaceCode: Record<Space, number> = { data: 0, session: 1, meta: 2 };
const supersededBit = 0x80;
const deleted = -1;

/**
 * Builds a group one change at a time, and reads its values back. Once finished, it is only read
 * (by both threads): every change to the bytes (a record added, superseded or taken back) happens
 * before the group is handed over.
 */
export class ChangeGroupWriter {
  private buffer: Buffer;
  private length = 0;

  // Small to start: a group closes at every checkpoint, once a batch with `--digest-every 1`.
  constructor(initialBytes = 4 * 1024) {
    this.buffer = Buffer.from(new SharedArrayBuffer(initialBytes));
  }

  get bytes(): number {
    return this.length;
  }

  /** Appends a change; returns its record's offset. */
  add(space: Space, key: string, value: Uint8Array | null): number {
    const valueBytes = value === null ? 0 : value.length;
    this.reserve(9 + key.length + valueBytes);
    const buffer = this.buffer;
    const offset = this.length;
    let at = offset;
    buffer[at] = spaceCode[space];
    buffer.writeUInt32LE(key.length, at + 1);
    at += 5;
    at += buffer.write(key, at, 'latin1');
    buffer.writeInt32LE(value === null ? deleted : valueBytes, at);
    at += 4;
    if (value !== null) {
      buffer.set(value, at);
      at += valueBytes;
    }
    this.length = at;
    return offset;
  }

  /** Marks the record at `offset` superseded: the writer skips it (a later record has its key). */
  supersede(offset: number): void {
    this.buffer[offset] = (this.buffer[offset] as number) | supersededBit;
  }

  /** Takes back supersede(offset) (the change that superseded it was undone). */
  reinstate(offset: number): void {
    this.buffer[offset] = (this.buffer[offset] as number) & ~supersededBit;
  }

  /** Drops every record from `length` on (a failed batch's). */
  truncate(length: number): void {
    this.length = length;
  }

  /** The value of the record at `offset`: a view of the group (null: a delete). */
  valueAt(offset: number): Uint8Array | null {
    const buffer = this.buffer;
    const valueAt = offset + 5 + buffer.readUInt32LE(offset + 1);
    return valueView(buffer, valueAt + 4, buffer.readInt32LE(valueAt));
  }

  /** True when the record at `offset` is a change of (space, key). */
  keyIs(offset: number, space: Space, key: string): boolean {
    const buffer = this.buffer;
    if (((buffer[offset] as number) & ~supersededBit) !== spaceCode[space] || buffer.readUInt32LE(offset + 1) !== key.length) return false;
    const start = offset + 5;
    for (let i = 0; i < key.length; i++) if (buffer[start + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Each change of a space that no later change of its key supersedes, in order: its key and value (a view; null: a delete). */
  live(space: Space): [string, Uint8Array | null][] {
    const buffer = this.buffer;
    const out: [string, Uint8Array | null][] = [];
    forEachLiveRecord(buffer, this.length, (of, keyStart, valueStart, valueBytes) => {
      if (of === space) out.push([buffer.toString('latin1', keyStart, valueStart - 4), valueView(buffer, valueStart, valueBytes)]);
    });
    return out;
  }

  /** The group's bytes so far: its first `bytes` bytes of `changes`, shared, not copied. */
  finish(): { readonly changes: SharedArrayBuffer; readonly bytes: number } {
    return { changes: this.buffer.buffer as SharedArrayBuffer, bytes: this.length };
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    // Views of the old buffer that readers hold stay valid: its values never change.
    const next = Buffer.from(new SharedArrayBuffer(size));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
}

/** A record's value as a plain view of the group's bytes (null: a delete). */
function valueView(buffer: Buffer, valueStart: number, valueBytes: number): Uint8Array | null {
  return valueBytes === deleted ? null : new Uint8Array(buffer.buffer, buffer.byteOffset + valueStart, valueBytes);
}

/**
 * Calls `fn` for each record of `buffer`'s first `length` bytes that no later record supersedes,
 * in order, with where its key and value start and the value's length (-1: a delete); checks
 * every length against the bytes there are.
 */
function forEachLiveRecord(buffer: Buffer, length: number, fn: (space: Space, keyStart: number, valueStart: number, valueBytes: number) => void): void {
  for (let at = 0; at < length; ) {
    const code = buffer[at]!;
    const space = spaceCodes[code & ~supersededBit];
    const keyBytes = buffer.readUInt32LE(at + 1);
    if (space === undefined || at + 9 + keyBytes > length) throw new Error(`change group: bad change at byte ${at}`);
    const valueAt = at + 5 + keyBytes;
    const valueBytes = buffer.readInt32LE(valueAt);
    if (valueBytes !== deleted && (valueBytes < 0 || valueAt + 4 + valueBytes > length)) throw new Error(`change group: bad value length ${valueBytes} at byte ${valueAt}`);
    if ((code & supersededBit) === 0) fn(space, at + 5, valueAt + 4, valueBytes);
    at = valueAt + 4 + Math.max(valueBytes, 0);
  }
}

/**
 * Calls `fn` for each change of a group (its first `bytes` bytes) that no later change of its key
 * supersedes, in order; keys and values are views into a copy of it.
 */
export function forEachChange(group: SharedArrayBuffer, bytes: number, fn: (space: Space, key: Buffer, value: Buffer | null) => void): void {
  // A copy, in memory of this thread's own: lmdb-js stored zeros for keys and values that were views of a SharedArrayBuffer.
  const buffer = Buffer.from(new Uint8Array(group, 0, bytes));
  forEachLiveRecord(buffer, buffer.length, (space, keyStart, valueStart, valueBytes) => {
    fn(space, buffer.subarray(keyStart, valueStart - 4), valueBytes === deleted ? null : buffer.subarray(valueStart, valueStart + valueBytes));
  });
}
