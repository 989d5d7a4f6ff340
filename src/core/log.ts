import { assert } from '../shared/assert.js';
import { limits } from '../shared/limits.js';
import type { Entry, SnapshotMeta } from './types.js';

/**
 * The in-memory view of one node's log: the entries after its latest snapshot, plus the
 * snapshot's (index, term) so the consistency check works at the boundary. The oldest entries
 * after the snapshot may be cold: on disk only, their terms known from the term history, their
 * payloads read back by the engine when a follower needs them.
 * Invariants: snapshotIndex <= coldThrough; entries[head + k].index === coldThrough + 1 + k; the
 * term history covers every index from snapshotIndex on.
 */
export class RaftLog {
  /** The entries in memory from `head` on (slots before it are emptied, and reclaimed in bulk). */
  private entries: (Entry | undefined)[] = [];
  private head = 0;
  private snapshotIndexValue = 0;
  private snapshotTermValue = 0;
  /** Entries up to here (after the snapshot) are on disk only. */
  private coldThroughValue = 0;
  /** [term, firstIndex] for each term present in the log's history, oldest first. */
  private termStartsValue: [number, number][] = [];
  /** The payload bytes of the entries held in memory. */
  private payloadBytesValue = 0;

  /**
   * Rebuilds the log from what recovery found on disk: entries through `cold.through` (after the
   * snapshot) were verified on disk but not kept in memory; `cold.termStarts` gives their terms.
   */
  static restore(snapshot: SnapshotMeta | null, entries: readonly Entry[], cold: ColdLog | null = null): RaftLog {
    const log = new RaftLog();
    if (snapshot !== null) log.resetTo(snapshot);
    if (cold !== null && cold.through > log.snapshotIndexValue) {
      for (const [term, start] of cold.termStarts) {
        const last = log.termStartsValue[log.termStartsValue.length - 1];
        if (start > log.snapshotIndexValue && start <= cold.through && (last === undefined || term > last[0])) log.termStartsValue.push([term, start]);
      }
      const last = log.termStartsValue[log.termStartsValue.length - 1];
      assert(last !== undefined && last[1] <= cold.through, `log restore: no term for the cold entries through ${cold.through}`);
      log.coldThroughValue = cold.through;
    }
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

  /** Entries after the snapshot up to here are on disk only (equal to snapshotIndex when none is). */
  get coldThrough(): number {
    return this.coldThroughValue;
  }

  lastIndex(): number {
    return this.coldThroughValue + this.entries.length - this.head;
  }

  /** The payload bytes of the entries held in memory. */
  get payloadBytes(): number {
    return this.payloadBytesValue;
  }

  /**
   * How many entries up to `index` (counting back from it) fit in `bytes` of payload, at most
   * `max`: how much of the log a compaction to `index` may keep for slightly slow followers.
   * Only entries in memory count (their sizes are known): a cold entry ends the count.
   */
  entriesWithin(index: number, bytes: number, max: number): number {
    let count = 0;
    let total = 0;
    for (let i = index; i > this.coldThroughValue && count < max; i--) {
      total += this.entryAt(i).data.length;
      if (total > bytes) break;
      count++;
    }
    return count;
  }

  lastTerm(): number {
    const last = this.entries.length > this.head ? this.entries[this.entries.length - 1] : undefined;
    if (last !== undefined) return last.term;
    return this.coldThroughValue > this.snapshotIndexValue ? this.historyTermAt(this.coldThroughValue) : this.snapshotTermValue;
  }

  /** The term of the entry at `index`, or null when it is compacted away or not yet written. */
  termAt(index: number): number | null {
    if (index === this.snapshotIndexValue) return this.snapshotTermValue;
    if (index < this.snapshotIndexValue || index > this.lastIndex()) return null;
    if (index <= this.coldThroughValue) return this.historyTermAt(index);
    return (this.entries[this.slot(index)] as Entry).term;
  }

  /** The term of an index at or after the snapshot, from the term history (a binary search). */
  private historyTermAt(index: number): number {
    const starts = this.termStartsValue;
    let lo = 0;
    let hi = starts.length - 1;
    assert(hi >= 0 && (starts[0] as [number, number])[1] <= index, `log: no term history for index ${index}`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as [number, number])[1] <= index) lo = mid;
      else hi = mid - 1;
    }
    return (starts[lo] as [number, number])[0];
  }

  /** The entry at `index`; it must be in memory. */
  entryAt(index: number): Entry {
    const entry = this.entries[this.slot(index)];
    assert(entry !== undefined && entry.index === index, `log: no entry ${index}`);
    return entry;
  }

  /**
   * Entries lo..hi inclusive, at most `max` of them and, past the first, no more than `bytesMax`
   * payload bytes in all; lo must be in memory (after the cold entries).
   */
  slice(lo: number, hi: number, max = Number.MAX_SAFE_INTEGER, bytesMax = Number.MAX_SAFE_INTEGER): Entry[] {
    assert(lo > this.coldThroughValue, `log: slice from index ${lo}, not in memory (cold through ${this.coldThroughValue})`);
    let end = Math.min(hi, lo + max - 1);
    if (end < lo) return [];
    const from = this.slot(lo);
    if (bytesMax < Number.MAX_SAFE_INTEGER) {
      let bytes = (this.entries[from] as Entry).data.length;
      for (let index = lo + 1; index <= end; index++) {
        bytes += (this.entries[this.slot(index)] as Entry).data.length;
        if (bytes > bytesMax) {
          end = index - 1;
          break;
        }
      }
    }
    return this.entries.slice(from, this.slot(end) + 1) as Entry[];
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
    const i = Math.min(index, this.lastIndex());
    if (i <= this.snapshotIndexValue || (this.termAt(i) as number) <= term) return i;
    // Terms only grow along the log: the answer is just before the first start of a later term.
    for (const [t, start] of this.termStartsValue) {
      if (t > term) return Math.max(this.snapshotIndexValue, Math.min(i, start - 1));
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

  /** Removes every entry from `index` on and returns them (they must be in memory). */
  truncateFrom(index: number): Entry[] {
    assert(index > this.coldThroughValue, `log: truncate at ${index}, into the snapshot or the cold entries (through ${this.coldThroughValue})`);
    const removed = this.entries.splice(this.slot(index)) as Entry[];
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
    this.dropWarm(index);
    this.snapshotIndexValue = index;
    this.snapshotTermValue = term;
    this.trimTermHistory();
  }

  /**
   * Drops the payloads of the entries up to `index` from memory: they stay on disk, and their
   * terms in the history. The caller makes sure they are durable and will not be cut.
   */
  evictThrough(index: number): void {
    assert(index <= this.lastIndex(), `log: evict through ${index} past the end ${this.lastIndex()}`);
    this.dropWarm(index);
  }

  /**
   * How far `evictThrough` may go so that at most `bytes` of payload stay in memory, not past
   * `limit`: the index of the last entry to drop (coldThrough when none need go).
   */
  evictionPoint(bytes: number, limit: number): number {
    let excess = this.payloadBytesValue - bytes;
    let index = this.coldThroughValue;
    while (excess > 0 && index < limit) {
      index++;
      excess -= this.entryAt(index).data.length;
    }
    return index;
  }

  /** Drops entries up to `index` from memory: their slots are emptied, and the array shrinks once half of it is empty. */
  private dropWarm(index: number): void {
    if (index <= this.coldThroughValue) return;
    const end = this.slot(index) + 1;
    for (let k = this.head; k < end; k++) {
      this.payloadBytesValue -= (this.entries[k] as Entry).data.length;
      this.entries[k] = undefined;
    }
    this.head = end;
    this.coldThroughValue = index;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Where the entry at `index` (in memory) sits in `entries`. */
  private slot(index: number): number {
    return this.head + index - this.coldThroughValue - 1;
  }

  /** Forgets every entry and starts again right after `meta` (snapshot install). */
  resetTo(meta: SnapshotMeta): void {
    this.entries = [];
    this.head = 0;
    this.payloadBytesValue = 0;
    this.snapshotIndexValue = meta.index;
    this.coldThroughValue = meta.index;
    this.snapshotTermValue = meta.term;
    this.termStartsValue = meta.termStarts.map(([t, i]) => [t, i]);
    const last = this.termStartsValue[this.termStartsValue.length - 1];
    if (meta.index > 0 && (last === undefined || last[0] !== meta.term)) this.termStartsValue.push([meta.term, meta.index]);
  }

  /** The term history up to `index` (inclusive), the latest termHistoryMax of it, for a snapshot taken there. */
  termStartsUpTo(index: number): [number, number][] {
    const upTo = this.termStartsValue.filter(([, start]) => start <= index);
    return upTo.slice(Math.max(0, upTo.length - limits.termHistoryMax)).map(([t, i]) => [t, i]);
  }

  /** The term history with every term of the entries after the snapshot (cold ones included). */
  get termStarts(): readonly (readonly [number, number])[] {
    return this.termStartsValue;
  }

  /**
   * Keeps at most termHistoryMax term starts, but never one the entries after the snapshot need
   * (the term of a cold entry is known only from here).
   */
  private trimTermHistory(): void {
    const starts = this.termStartsValue;
    let needed = starts.length - 1;
    while (needed > 0 && (starts[needed] as [number, number])[1] > this.snapshotIndexValue) needed--;
    const excess = Math.min(needed, starts.length - limits.termHistoryMax);
    if (excess > 0) starts.splice(0, excess);
  }
}

/** Entries recovery verified on disk but did not keep in memory: those after the snapshot up to `through`. */
export interface ColdLog {
  readonly through: number;
  /** [term, firstIndex] of every term among them (earlier starts are ignored). */
  readonly termStarts: readonly (readonly [number, number])[];
  /** The configuration entries among them, whole (membership is rebuilt from them). */
  readonly configEntries: readonly Entry[];
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
