/**
 * CRC-32C (Castagnoli): the checksum on every log record, peer frame, snapshot chunk and metadata
 * file. Computed by `@node-rs/crc32` (the processor's CRC32 instruction, through N-API) where it
 * loads: 9x faster than the portable code below on a 4 KiB record, 15x on a 1 MiB snapshot chunk,
 * the same on 100 bytes (the call costs what the arithmetic saves). Elsewhere (a platform without
 * its prebuilt binary), the portable code, which the tests hold the native one to.
 */
import { createRequire } from 'node:module';

type Crc32c = (bytes: Uint8Array, crc?: number) => number;

/** The native implementation, or null where it does not load. */
function loadNative(): Crc32c | null {
  try {
    const native = (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: Crc32c }).crc32c;
    return native(new TextEncoder().encode('123456789')) === 0xe3069283 ? native : null;
  } catch {
    return null;
  }
}

/*
 * The portable implementation. Slicing-by-8: eight 256-entry tables, table k giving the CRC of a
 * byte followed by k zero bytes, so that eight bytes are folded in per step instead of one.
 */

const tables = new Uint32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  tables[n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  for (let k = 1; k < 8; k++) {
    const previous = tables[(k - 1) * 256 + n] as number;
    tables[k * 256 + n] = (previous >>> 8) ^ (tables[previous & 0xff] as number);
  }
}

/** The CRC-32C of `bytes` (continuing from `crc` when given), in portable JavaScript. */
export function crc32cPortable(bytes: Uint8Array, crc = 0): number {
  const t = tables;
  let c = (crc ^ 0xffffffff) >>> 0;
  let i = 0;
  const whole = bytes.length - (bytes.length & 7);
  for (; i < whole; i += 8) {
    const low = c ^ ((bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24));
    c =
      (t[1792 + (low & 0xff)] as number) ^
      (t[1536 + ((low >>> 8) & 0xff)] as number) ^
      (t[1280 + ((low >>> 16) & 0xff)] as number) ^
      (t[1024 + (low >>> 24)] as number) ^
      (t[768 + (bytes[i + 4] as number)] as number) ^
      (t[512 + (bytes[i + 5] as number)] as number) ^
      (t[256 + (bytes[i + 6] as number)] as number) ^
      (t[bytes[i + 7] as number] as number);
  }
  for (; i < bytes.length; i++) c = (t[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = loadNative();

/** Which implementation `crc32c` is (reported in the node's start-up log). */
export const crc32cImplementation: 'native' | 'portable' = native === null ? 'portable' : 'native';

/** The CRC-32C of `bytes` (continuing from `crc` when given). */
export const crc32c: Crc32c = native ?? crc32cPortable;
