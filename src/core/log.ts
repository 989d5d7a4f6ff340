import { assert } from '../shared/assert.js';
import { limits } from '../shared/limits.js';
import type { Entry, SnapshotMeta } from './types.js';

/**
 * The in-memory view of one node's log: the entries after its latest snapshot, plus the
 * snapshot's (index, term) so the consistency check works at the boundary.
 * Invariant: entries[k].index === snapshotIndex + 1 + k.
 */
export class RaftLog {
  private entries: Entry[] = [];
  private snapshotIndexValue = 0;
  private snapshotTermValue = 0;
  /** [term, firstIndex] for each term present in the log's history, oldest first. */
  private termStartsValue: [number, number][] = [];
  /** The payload bytes of the entries held in memory. */
  private payloadBytesValue = 0;

  /** Rebuilds the log from what recovery found on disk. */
  static restore(snapshot: SnapshotMeta | null, entries: readonly Entry[]): RaftLog {
    const log = new RaftLog();
    if (snapshot !== null) log.resetTo(snapshot);
    for (const entry of entries) {
      if (entry.index <= log.snapshotIndexValue) continue;
      assert(entry.index === log.lastIndex() + 1, `log restore: gap before index ${entry.index}`);
      log.push(entry);
    }
    return log;
  }

  get snapshotIndex(): number {
    return this.snapshotIndexValue;
  }

  get snapshotTerm(): number {
    return this.snapshotTermValue;
  }

  lastIndex(): number {
    return this.snapshotIndexValue + this.entries.length;
  }

  /** The payload bytes of the entries held in memory (what snapshots must keep bounded). */
  get payloadBytes(): number {
    return this.payloadBytesValue;
  }

  /**
   * How many entries up to `index` (counting back from it) fit in `bytes` of payload, at most
   * `max`: how much of the log a compaction to `index` may keep for slightly slow followers.
   */
  entriesWithin(index: number, bytes: number, max: number): number {
    let count = 0;
    let total = 0;
    for (let i = index; i > this.snapshotIndexValue && count < max; i--) {
      total += this.entryAt(i).data.length;
      if (total > bytes) break;
      count++;
    }
    return count;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.snapshotTermValue : last.term;
  }

  /** The term of the entry at `index`, or null when it is compacted away or not yet written. */
  termAt(index: number): number | null {
    if (index === this.snapshotIndexValue) return this.snapshotTermValue;
    if (index < this.snapshotIndexValue || index > this.lastIndex()) return null;
    return (this.entries[index - this.snapshotIndexValue - 1] as Entry).term;
  }

  /** The entry at `index`; it must be in memory. */
  entryAt(index: number): Entry {
    const entry = this.entries[index - this.snapshotIndexValue - 1];
    assert(entry !== undefined && entry.index === index, `log: no entry ${index}`);
    return entry;
  }

  /**
   * Entries lo..hi inclusive, at most `max` of them and, past the first, no more than `bytesMax`
   * payload bytes in all; lo must be after the snapshot.
   */
  slice(lo: number, hi: number, max = Number.MAX_SAFE_INTEGER, bytesMax = Number.MAX_SAFE_INTEGER): Entry[] {
    assert(lo > this.snapshotIndexValue, `log: slice from compacted index ${lo}`);
    let end = Math.min(hi, lo + max - 1);
    if (end < lo) return [];
    const from = lo - this.snapshotIndexValue - 1;
    if (bytesMax < Number.MAX_SAFE_INTEGER) {
      let bytes = (this.entries[from] as Entry).data.length;
      for (let index = lo + 1; index <= end; index++) {
        bytes += (this.entries[index - this.snapshotIndexValue - 1] as Entry).data.length;
        if (bytes > bytesMax) {
          end = index - 1;
          break;
        }
      }
    }
    return this.entries.slice(from, end - this.snapshotIndexValue);
  }

  /** True when a candidate whose log ends at (lastIndex, lastTerm) is at least as up to date. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index at or below `index` whose term is at most `term`: where two logs that
   * disagree at `index` may still agree. Used to skip back a whole term at a time.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapshotIndexValue) {
      const t = this.termAt(i) as number;
      if (t <= term) break;
      i--;
    }
    return i;
  }

  /**
   * Appends `entries` (which follow a matched prevIndex), cutting any suffix they conflict
   * with. Returns the index the log was cut from (or null) and the entries removed.
   */
  appendMatching(entries: readonly Entry[]): { truncateFrom: number | null; removed: Entry[]; appended: Entry[] } {
    let k = 0;
    while (k < entries.length) {
      const entry = entries[k] as Entry;
      if (entry.index > this.lastIndex()) break;
      if (entry.index > this.snapshotIndexValue && this.termAt(entry.index) !== entry.term) break;
      k++;
    }
    if (k === entries.length) return { truncateFrom: null, removed: [], appended: [] };
    const first = entries[k] as Entry;
    let truncateFrom: number | null = null;
    let removed: Entry[] = [];
    if (first.index <= this.lastIndex()) {
      truncateFrom = first.index;
      removed = this.truncateFrom(first.index);
    }
    const appended = entries.slice(k);
    for (const entry of appended) this.push(entry);
    return { truncateFrom, removed, appended };
  }

  /** Appends one entry at the end (the leader's own proposals). */
  push(entry: Entry): void {
    assert(entry.index === this.lastIndex() + 1, `log: append ${entry.index} after ${this.lastIndex()}`);
    assert(entry.term >= this.lastTerm(), `log: term ${entry.term} after ${this.lastTerm()}`);
    this.entries.push(entry);
    this.payloadBytesValue += entry.data.length;
    const lastStart = this.termStartsValue[this.termStartsValue.length - 1];
    if (lastStart === undefined || lastStart[0] !== entry.term) this.termStartsValue.push([entry.term, entry.index]);
  }

  /** Removes every entry from `index` on and returns them. */
  truncateFrom(index: number): Entry[] {
    assert(index > this.snapshotIndexValue, `log: truncate into the snapshot at ${index}`);
    const removed = this.entries.splice(index - this.snapshotIndexValue - 1);
    for (const entry of removed) this.payloadBytesValue -= entry.data.length;
    while (this.termStartsValue.length > 0) {
      const last = this.termStartsValue[this.termStartsValue.length - 1] as [number, number];
      if (last[1] < index) break;
      this.termStartsValue.pop();
    }
    return removed;
  }

  /** Drops entries up to and including `index`, which a snapshot now covers. */
  compact(index: number): void {
    assert(index >= this.snapshotIndexValue && index <= this.lastIndex(), `log: compact to ${index}`);
    const term = this.termAt(index) as number;
    for (const entry of this.entries.splice(0, index - this.snapshotIndexValue)) this.payloadBytesValue -= entry.data.length;
    this.snapshotIndexValue = index;
    this.snapshotTermValue = term;
    this.trimTermHistory();
  }

  /** Forgets every entry and starts again right after `meta` (snapshot install). */
  resetTo(meta: SnapshotMeta): void {
    this.entries = [];
    this.payloadBytesValue = 0;
    this.snapshotIndexValue = meta.index;
    this.snapshotTermValue = meta.term;
    this.termStartsValue = meta.termStarts.map(([t, i]) => [t, i]);
    const last = this.termStartsValue[this.termStartsValue.length - 1];
    if (meta.index > 0 && (last === undefined || last[0] !== meta.term)) this.termStartsValue.push([meta.term, meta.index]);
  }

  /** The term history up to `index` (inclusive), for a snapshot taken there. */
  termStartsUpTo(index: number): [number, number][] {
    return this.termStartsValue.filter(([, start]) => start <= index).map(([t, i]) => [t, i]);
  }

  private trimTermHistory(): void {
    const excess = this.termStartsValue.length - limits.termHistoryMax;
    if (excess > 0) this.termStartsValue.splice(0, excess);
  }
}

/**
 * The term of `index` according to a snapshot's term history, or null when the history no
 * longer reaches back that far.
 */
export function termFromHistory(termStarts: readonly (readonly [number, number])[], index: number): number | null {
  let term: number | null = null;
  for (const [t, start] of termStarts) {
    if (start > index) break;
    term = t;
  }
  const first = termStarts[0];
  if (first === undefined || index < first[1]) return null;
  return term;
}
