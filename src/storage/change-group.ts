import type { Space } from '../kv/store.js';

/**
 * A group of state-machine changes in the byte form the LMDB writer thread takes: for each change
 * in order, the space (one byte), the key's length (u32) and bytes (latin1, one byte a char), then
 * the value's length (i32, -1 for a delete) and bytes. Little-endian. The buffer is its own
 * ArrayBuffer, so it can be handed to the thread without a copy.
 */
export const spaceCodes: readonly Space[] = ['data', 'session', 'meta'];

const spaceCode: Record<Space, number> = { data: 0, session: 1, meta: 2 };
const deleted = -1;

/** Builds a group one change at a time. */
export class ChangeGroupWriter {
  private buffer: Buffer;
  private length = 0;
  /** How many changes the group holds. */
  changes = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafeSlow(initialBytes);
  }

  get bytes(): number {
    return this.length;
  }

  add(space: Space, key: string, value: Uint8Array | null): void {
    const valueBytes = value === null ? 0 : value.length;
    this.reserve(9 + key.length + valueBytes);
    const buffer = this.buffer;
    let at = this.length;
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
    this.changes++;
  }

  /**
   * The group: its first `bytes` bytes of `changes`, an ArrayBuffer of its own, handed over without
   * a copy (a snapshot restore's group can be hundreds of MB). The writer is not used afterwards.
   */
  finish(): { readonly changes: ArrayBuffer; readonly bytes: number } {
    return { changes: this.buffer.buffer as ArrayBuffer, bytes: this.length };
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
}

/** Calls `fn` for each change of a group (its first `bytes` bytes), in order; keys and values are views into it. */
export function forEachChange(group: ArrayBuffer, bytes: number, fn: (space: Space, key: Buffer, value: Buffer | null) => void): void {
  const buffer = Buffer.from(group, 0, bytes);
  let at = 0;
  while (at < buffer.length) {
    const space = spaceCodes[buffer[at]!];
    const keyBytes = buffer.readUInt32LE(at + 1);
    if (space === undefined || at + 9 + keyBytes > buffer.length) throw new Error(`change group: bad change at byte ${at}`);
    const key = buffer.subarray(at + 5, at + 5 + keyBytes);
    at += 5 + keyBytes;
    const valueBytes = buffer.readInt32LE(at);
    at += 4;
    if (valueBytes === deleted) {
      fn(space, key, null);
      continue;
    }
    if (valueBytes < 0 || at + valueBytes > buffer.length) throw new Error(`change group: bad value length ${valueBytes} at byte ${at - 4}`);
    fn(space, key, buffer.subarray(at, at + valueBytes));
    at += valueBytes;
  }
}
