import { readFileSync } from 'node:fs';
import { endOfData } from '../../src/codec/log-record.js';

/**
 * Where a segment file's records end: the storage keeps zeros written ahead of the active
 * segment's end, so the file's size is not where its records stop. (Right for the tests'
 * records, whose last bytes are never zero.)
 */
export function recordsEnd(path: string): number {
  return endOfData(readFileSync(path));
}
