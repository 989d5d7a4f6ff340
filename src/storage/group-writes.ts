import type { Space } from '../kv/store.js';
import { ChangeGroupWriter } from './change-group.js';
import { RecordIndex } from './record-index.js';

/** What a change replaced, for undoing it: a data or session record's offset, a meta value, or undefined (nothing). */
export type Replaced = number | Uint8Array | null | undefined;

/** A group's counts at a point, to roll a failed batch back to (see GroupWrites.mark). */
export interface GroupMark {
  readonly recordBytes: number;
  readonly metaBytes: number;
  readonly keys: number;
}

/**
 * One uncommitted group's writes. Data and session changes are encoded as they are applied, in
 * order, in the bytes the writer thread takes (change-group.ts); a table of offsets (RecordIndex)
 * finds each key's newest record, and a key written again marks its older record superseded, so the writer still
 * reads, hashes and puts each key once. Meta changes (the state record) are kept by value and
 * appended when the group closes, so the state record is the group's last and its digest covers
 * the rest.
 *
 * Why not a map of values: a group waits about a second. Its values as objects (a view or a copy
 * per write) survived two young collections each and were promoted, and encoding tens of thousands
 * of them at hand-over held the event loop 3-15 ms once a second. Here the table holds offsets, the
 * values are bytes the collector does not trace, and handing over copies nothing.
 */
export class GroupWrites {
  private readonly records = new ChangeGroupWriter();
  /** Where each data and session key's newest record is, and how many keys of each space. */
  private readonly newest = new RecordIndex(this.records);
  private readonly counts = { data: 0, session: 0 };
  private readonly meta = new Map<string, Uint8Array | null>();
  private metaBytes = 0;
  private closed = false;
  /** How many keys the group holds (each once). */
  keys = 0;

  /** The bytes the group holds: its records (superseded ones too) and its meta keys and values (records too, once closed). */
  get bytes(): number {
    return this.closed ? this.records.bytes : this.records.bytes + this.metaBytes;
  }

  /** The newest value the group wrote to a key: a value (a view of the group), null (deleted), or undefined (not written). */
  get(space: Space, key: string): Uint8Array | null | undefined {
    if (space === 'meta') return this.meta.get(key);
    const at = this.newest.get(space, key);
    return at === undefined ? undefined : this.records.valueAt(at);
  }

  has(space: Space, key: string): boolean {
    return space === 'meta' ? this.meta.has(key) : this.newest.get(space, key) !== undefined;
  }

  /** How many keys of a space the group wrote. */
  size(space: Space): number {
    return space === 'meta' ? this.meta.size : this.counts[space];
  }

  /** Each key of a space the group wrote, with its newest value (data and session: in the order of their newest changes). */
  entries(space: Space): Iterable<[string, Uint8Array | null]> {
    return space === 'meta' ? this.meta.entries() : this.records.live(space);
  }

  /** Writes `value` (null: a delete) to a key; returns what it replaced in the group, for undo. The value is copied. */
  set(space: Space, key: string, value: Uint8Array | null): Replaced {
    if (this.closed) throw new Error('GroupWrites: a write to a closed group');
    if (space === 'meta') {
      const previous = this.meta.get(key);
      this.meta.set(key, value);
      this.metaBytes += (value?.length ?? 0) - (previous?.length ?? 0) + (previous === undefined ? key.length : 0);
      if (previous === undefined) this.keys++;
      return previous;
    }
    // Added first, then indexed: the index compares keys against the records.
    const previous = this.newest.set(space, key, this.records.add(space, key, value));
    if (previous === undefined) {
      this.keys++;
      this.counts[space]++;
    } else this.records.supersede(previous);
    return previous;
  }

  /** The counts to roll back to if the batch about to run fails. */
  mark(): GroupMark {
    return { recordBytes: this.records.bytes, metaBytes: this.metaBytes, keys: this.keys };
  }

  /**
   * Takes back the changes made since `mark`: `undo` holds, for each, its space, key and what it
   * replaced (set's answer), three slots a change, in the order made.
   */
  rollBack(mark: GroupMark, undo: readonly (Space | string | Replaced)[]): void {
    for (let i = undo.length - 3; i >= 0; i -= 3) {
      const space = undo[i] as Space;
      const key = undo[i + 1] as string;
      const previous = undo[i + 2] as Replaced;
      if (space === 'meta') {
        if (previous === undefined) this.meta.delete(key);
        else this.meta.set(key, previous as Uint8Array | null);
      } else if (previous === undefined) {
        this.newest.delete(space, key);
        this.counts[space]--;
      } else {
        this.newest.set(space, key, previous as number);
        this.records.reinstate(previous as number);
      }
    }
    this.records.truncate(mark.recordBytes);
    this.metaBytes = mark.metaBytes;
    this.keys = mark.keys;
  }

  /**
   * Closes the group for the writer thread: appends the meta changes, the state record last, and
   * gives the bytes (shared, not copied). The group is still read until it is committed.
   */
  close(): { readonly changes: SharedArrayBuffer; readonly bytes: number } {
    if (!this.closed) {
      this.closed = true;
      for (const [key, value] of this.meta) this.records.add('meta', key, value);
    }
    return this.records.finish();
  }
}
