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

  constructor(initialBytes = 64 * 1024) {
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
    const valueBytes = buffer.readInt32LE(valueAt);
    return valueBytes === deleted ? null : new Uint8Array(buffer.buffer, buffer.byteOffset + valueAt + 4, valueBytes);
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
  *live(space: Space): IterableIterator<[string, Uint8Array | null]> {
    const buffer = this.buffer;
    const code = spaceCode[space];
    for (let at = 0; at < this.length; ) {
      const keyBytes = buffer.readUInt32LE(at + 1);
      const valueAt = at + 5 + keyBytes;
      const valueBytes = buffer.readInt32LE(valueAt);
      if (buffer[at] === code) yield [buffer.toString('latin1', at + 5, valueAt), this.valueAt(at)];
      at = valueAt + 4 + Math.max(valueBytes, 0);
    }
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

/**
 * Calls `fn` for each change of a group (its first `bytes` bytes) that no later change of its key
 * supersedes, in order; keys and values are views into it.
 */
export function forEachChange(group: SharedArrayBuffer, bytes: number, fn: (space: Space, key: Buffer, value: Buffer | null) => void): void {
  // A copy, in memory of this thread's own: lmdb-js stored zeros for keys and values that were views of a SharedArrayBuffer.
  const buffer = Buffer.from(new Uint8Array(group, 0, bytes));
  let at = 0;
  while (at < buffer.length) {
    const code = buffer[at]!;
    const space = spaceCodes[code & ~supersededBit];
    const keyBytes = buffer.readUInt32LE(at + 1);
    if (space === undefined || at + 9 + keyBytes > buffer.length) throw new Error(`change group: bad change at byte ${at}`);
    const live = (code & supersededBit) === 0;
    const key = live ? buffer.subarray(at + 5, at + 5 + keyBytes) : null;
    at += 5 + keyBytes;
    const valueBytes = buffer.readInt32LE(at);
    at += 4;
    if (valueBytes === deleted) {
      if (key !== null) fn(space, key, null);
      continue;
    }
    if (valueBytes < 0 || at + valueBytes > buffer.length) throw new Error(`change group: bad value length ${valueBytes} at byte ${at - 4}`);
    if (key !== null) fn(space, key, buffer.subarray(at, at + valueBytes));
    at += valueBytes;
  }
}
