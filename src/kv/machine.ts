import type { Entry } from '../core/types.js';
import { ByteReader, ByteWriter } from '../shared/bytes.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { commandsOfEntry, decodeCommand, decodeReply, encodeReply, int64Max, int64Min, type Command, type Reply } from './commands.js';
import { checkSnapshotDigest, encodeStateRecord, readStateRecord, StateDigest } from './digest.js';
import { readSnapshotState, snapshotVersion } from './snapshot-format.js';
import type { KvStore, SnapshotFile, Space, StoreBacklog, StoreDigests, StoreReader } from './store.js';

/**
 * The result of applying one command (or an entry that holds none: a config or no-op entry, with
 * a null reply): its place, the reply, and whether it was a retry answered from the session table.
 * An entry that holds several commands yields one result per command, at positions 0, 1, ….
 */
export interface Applied {
  readonly index: number;
  readonly position: number;
  readonly reply: Reply | null;
  readonly command: Command | null;
  readonly deduplicated: boolean;
}

/** The replies most writes get, made once (replies are read, never changed: frozen to keep it so). */
const okReply: Reply = Object.freeze({ kind: 'ok' });
const setWritten: Reply = Object.freeze({ kind: 'set', written: true, previous: null });
const setRefused: Reply = Object.freeze({ kind: 'set', written: false, previous: null });

/** How Redis writes an integer: no leading zeros, no plus sign, no "-0". */
const canonicalInteger = /^(0|-?[1-9]\d{0,19})$/;

/**
 * The deterministic state machine: applies committed entries in order, keeps the client-session
 * table for exactly-once writes, and a running digest of its whole state (data and sessions)
 * that two replicas at the same applied index can compare.
 *
 * The digest is kept here, item by item as writes happen, unless the store keeps it itself (see
 * KvStore.digests: LMDB does, in its writer thread, so that a write reads no old value on the
 * event loop). Either way `digest()` is the digest at the applied index.
 */
export class KvStateMachine {
  private readonly store: KvStore;
  /** The store's own digest keeper, or null when the digest is kept here. */
  private readonly kept: StoreDigests | null;
  private appliedValue: number;
  /** The digest at the applied index, when kept here (see StateDigest). */
  private readonly running = new StateDigest();
  /** How many keys the data space holds, when the digest is kept here (writes read old values then anyway). */
  private dataKeys: number;

  /** Entries proposed here, by their data, with the commands they hold (see proposedHere). */
  private readonly proposed = new WeakMap<Uint8Array, readonly Command[]>();

  /** Test-only: drop every Nth SET on this replica, so its state silently diverges (0: never). */
  private readonly plantedDropSetEvery: number;
  private setsSeen = 0;

  constructor(store: KvStore, plantedDropSetEvery = 0) {
    this.store = store;
    this.kept = store.digests ?? null;
    this.plantedDropSetEvery = plantedDropSetEvery;
    this.appliedValue = 0;
    this.dataKeys = 0;
    this.loadStateRecord();
  }

  /** Takes the applied index, digest and key count from what the store holds. */
  private loadStateRecord(): void {
    const meta = this.store.get('meta', 'state');
    const record = meta === undefined ? null : readStateRecord(meta);
    this.appliedValue = record?.index ?? 0;
    this.running.a = record?.digest?.a ?? 0;
    this.running.b = record?.digest?.b ?? 0;
    this.dataKeys = this.kept === null ? this.store.count('data') : 0;
  }

  /** The index of the last entry applied. */
  get appliedIndex(): number {
    return this.appliedValue;
  }

  /**
   * The state digest at the applied index, as 16 hex digits. When the store keeps the digest, this
   * reads every key written since its last commit (at most a second's writes).
   */
  digest(): string {
    return this.kept === null ? this.running.hex() : this.kept.now().hex();
  }

  /**
   * The digest of the state on disk and its applied index: the digest at the applied index when
   * the digest is kept here; else the committed one (which trails it by at most a group of
   * batches), read at once.
   */
  committedDigest(): { readonly index: number; readonly digest: string } {
    if (this.kept === null) return { index: this.appliedValue, digest: this.running.hex() };
    const { index, digest } = this.kept.committed();
    return { index, digest: digest.hex() };
  }

  /**
   * Calls `fn` with the digest at the applied index: at once, or, when the store keeps the digest,
   * once it has committed the last batch (later, on a later turn of the event loop).
   */
  digestAtApplied(fn: (digest: string) => void): void {
    if (this.kept === null) fn(this.running.hex());
    else this.kept.at(this.appliedValue, fn);
  }

  /** The value of `key`, or undefined. */
  get(key: string): Uint8Array | undefined {
    return this.store.get('data', key);
  }

  /** Up to `limit` keys after `after` in byte order (for SCAN and KEYS). */
  keysAfter(after: string | null, limit: number): string[] {
    return this.store.keysAfter('data', after, limit);
  }

  /** The store's bound on writes it has not committed yet, or null when it commits as it goes (see StoreBacklog). */
  get storeBacklog(): StoreBacklog | null {
    return this.store.backlog ?? null;
  }

  /** How many keys are stored (when the store keeps the digest, a read per key written since its last commit). */
  get size(): number {
    return this.kept === null ? this.dataKeys : this.store.count('data');
  }

  /**
   * Runs `fn` as one store transaction; when it throws, the store drops its writes and the
   * applied index, digest and key count here go back to what they were, so the two agree.
   */
  private transaction(fn: () => void): void {
    const before = { applied: this.appliedValue, a: this.running.a, b: this.running.b, keys: this.dataKeys };
    try {
      this.store.batch(fn);
    } catch (error) {
      this.appliedValue = before.applied;
      this.running.a = before.a;
      this.running.b = before.b;
      this.dataKeys = before.keys;
      throw error;
    }
  }

  /** Applies consecutive committed entries in one store transaction: one result per command, in order. */
  applyBatch(entries: readonly Entry[]): Applied[] {
    const results: Applied[] = [];
    if (entries.length === 0) return results;
    this.transaction(() => {
      for (const entry of entries) {
        if (entry.index !== this.appliedValue + 1) {
          throw new TandemError(ErrorCode.corrupt, `state machine: entry ${entry.index} follows applied index ${this.appliedValue}`);
        }
        this.applyEntry(entry, results);
        this.appliedValue = entry.index;
      }
      this.saveMeta();
    });
    return results;
  }

  /**
   * Notes that `data`, an entry's data proposed on this node, holds `commands` (what its bytes
   * decode to): if this node applies that very entry (the same bytes, not a copy read back from
   * disk or received from a leader), it applies them without decoding the bytes again.
   */
  proposedHere(data: Uint8Array, commands: readonly Command[]): void {
    this.proposed.set(data, commands);
  }

  private applyEntry(entry: Entry, results: Applied[]): void {
    if (entry.kind !== 'command') {
      results.push({ index: entry.index, position: 0, reply: null, command: null, deduplicated: false });
      return;
    }
    const known = this.proposed.get(entry.data);
    if (known !== undefined) {
      this.proposed.delete(entry.data);
      for (let position = 0; position < known.length; position++) results.push(this.applyDecoded(entry.index, position, known[position] as Command));
      return;
    }
    let parts: Uint8Array[];
    try {
      parts = commandsOfEntry(entry.data);
    } catch (error) {
      results.push({ index: entry.index, position: 0, reply: badRequest(error), command: null, deduplicated: false });
      return;
    }
    for (let position = 0; position < parts.length; position++) results.push(this.applyCommand(entry.index, position, parts[position] as Uint8Array));
  }

  private applyCommand(index: number, position: number, data: Uint8Array): Applied {
    let command: Command;
    try {
      command = decodeCommand(data);
    } catch (error) {
      return { index, position, reply: badRequest(error), command: null, deduplicated: false };
    }
    return this.applyDecoded(index, position, command);
  }

  private applyDecoded(index: number, position: number, command: Command): Applied {
    if (command.clientId !== '') {
      const previous = this.store.get('session', command.clientId);
      if (previous !== undefined) {
        const r = new ByteReader(previous, 'session');
        const seq = r.u64();
        if (command.seq === seq) return { index, position, reply: decodeReply(r.raw(r.remaining)), command, deduplicated: true };
        if (command.seq < seq) {
          const reply: Reply = { kind: 'error', code: ErrorCode.staleRequest, message: `request ${command.seq} of client ${command.clientId} is older than its latest (${seq})` };
          return { index, position, reply, command, deduplicated: true };
        }
      }
    }
    const reply = this.execute(command);
    if (command.clientId !== '') {
      this.set('session', command.clientId, new ByteWriter(24).u64(command.seq).raw(encodeReply(reply)).finish());
    }
    return { index, position, reply, command, deduplicated: false };
  }

  private execute(command: Command): Reply {
    const operation = command.operation;
    switch (operation.op) {
      case 'put':
        this.set('data', operation.key, operation.value);
        return okReply;
      case 'del':
        return { kind: 'deleted', count: this.remove('data', operation.key) ? 1 : 0 };
      case 'cas': {
        const current = this.store.get('data', operation.key) ?? null;
        if (!sameValue(current, operation.expected)) return { kind: 'cas', swapped: false };
        if (operation.value === null) this.remove('data', operation.key);
        else this.set('data', operation.key, operation.value);
        return { kind: 'cas', swapped: true };
      }
      case 'set': {
        // The previous value is read (copied) only when the reply carries it, the key's presence
        // only when NX or XX asks: a plain SET reads nothing here (set() may, for the digest).
        const previous = operation.returnPrevious ? (this.store.get('data', operation.key) ?? null) : null;
        const exists = operation.returnPrevious ? previous !== null : operation.when !== 'always' && this.store.peek('data', operation.key) !== undefined;
        const allowed = operation.when === 'always' || (operation.when === 'nx') === !exists;
        const dropped = this.plantedDropSetEvery > 0 && ++this.setsSeen % this.plantedDropSetEvery === 0;
        if (allowed && !dropped) this.set('data', operation.key, operation.value);
        if (previous === null) return allowed ? setWritten : setRefused;
        return { kind: 'set', written: allowed, previous };
      }
      case 'mset':
        for (const [key, value] of operation.pairs) this.set('data', key, value);
        return okReply;
      case 'delKeys': {
        let count = 0;
        for (const key of operation.keys) if (this.remove('data', key)) count++;
        return { kind: 'deleted', count };
      }
      case 'incrBy':
        return this.incrBy(operation.key, operation.delta);
      case 'append': {
        const previous = this.store.get('data', operation.key);
        const value = previous === undefined ? operation.value : Buffer.concat([previous, operation.value]);
        if (value.length > limits.valueBytesMax) {
          return { kind: 'error', code: ErrorCode.tooLarge, message: `string exceeds maximum allowed size (${limits.valueBytesMax} bytes)` };
        }
        this.set('data', operation.key, value);
        return { kind: 'integer', value: BigInt(value.length) };
      }
      case 'getdel': {
        const previous = this.store.get('data', operation.key) ?? null;
        if (previous !== null) this.remove('data', operation.key);
        return { kind: 'value', value: previous };
      }
      case 'flushall': {
        const keys = [...this.store.entries('data')].map(([key]) => key);
        for (const key of keys) this.remove('data', key);
        return { kind: 'ok' };
      }
    }
  }

  /** Redis INCRBY: the value must be a canonical signed 64-bit decimal; overflow is refused. */
  private incrBy(key: string, delta: bigint): Reply {
    const previous = this.store.get('data', key);
    let current = 0n;
    if (previous !== undefined) {
      const text = Buffer.from(previous).toString('latin1');
      if (!canonicalInteger.test(text)) return { kind: 'error', code: ErrorCode.badRequest, message: 'value is not an integer or out of range' };
      current = BigInt(text);
      if (current > int64Max || current < int64Min) return { kind: 'error', code: ErrorCode.badRequest, message: 'value is not an integer or out of range' };
    }
    const next = current + delta;
    if (next > int64Max || next < int64Min) return { kind: 'error', code: ErrorCode.badRequest, message: 'increment or decrement would overflow' };
    this.set('data', key, Buffer.from(next.toString(), 'latin1'));
    return { kind: 'integer', value: next };
  }

  /** Writes one item, keeping the digest and the key count in step when they are kept here. */
  private set(space: Space, key: string, value: Uint8Array): void {
    if (this.kept === null) {
      // The old value is only hashed, at once, so the store need not copy it.
      const old = this.store.peek(space, key);
      if (old !== undefined) this.running.mix(space, key, old, -1);
      else if (space === 'data') this.dataKeys++;
      this.running.mix(space, key, value, 1);
    }
    this.store.put(space, key, value);
  }

  /** Deletes one item (as set() keeps things in step); returns whether it existed. */
  private remove(space: Space, key: string): boolean {
    if (this.kept !== null) return this.store.delete(space, key);
    const old = this.store.peek(space, key);
    if (old === undefined) return false;
    this.running.mix(space, key, old, -1);
    this.store.delete(space, key);
    if (space === 'data') this.dataKeys--;
    return true;
  }

  /**
   * Writes the applied index and the digest (`known`, or the one kept here). A store that keeps the
   * digest is given the index alone and adds its digest, unless the digest is `known`.
   */
  private saveMeta(known: StateDigest | null = null): void {
    this.store.put('meta', 'state', encodeStateRecord(this.appliedValue, known ?? (this.kept === null ? this.running : null)));
  }

  /** Serializes the whole state at the applied index. */
  snapshot(): Uint8Array {
    const w = new ByteWriter(1024 * 1024);
    const digest = this.kept === null ? this.running : this.kept.now();
    w.u8(snapshotVersion).u64(this.appliedValue).u32(digest.a).u32(digest.b);
    for (const space of ['data', 'session'] as const) {
      w.u32(this.store.count(space));
      // Order does not matter to restore or to the digest (a sum), so the store's fastest walk is used.
      this.store.forEachRaw(space, (key, value) => w.bytes(key).bytes(value));
    }
    return w.finish();
  }

  /** Whether `snapshotInPieces` is available (the store can be read in pieces). */
  get canSnapshotInPieces(): boolean {
    return this.store.openReader !== undefined;
  }

  /** Opens a reader over the store's committed state (only when canSnapshotInPieces). */
  openReader(): Promise<StoreReader> {
    const open = this.store.openReader;
    if (open === undefined) throw new TandemError(ErrorCode.badRequest, 'this store cannot be read in pieces');
    return open.call(this.store);
  }

  /**
   * The snapshot of the committed state `reader` sees: the applied index and digest that state
   * records, and its bytes as a generator of chunks of about `pieceBytes` of pairs each (their
   * concatenation is what `snapshot()` gives at that index). Each `next()` reads one chunk's
   * pairs: the caller does what it will with a chunk (writes it) before it asks for the next, and
   * closes the reader once done.
   */
  snapshotChunks(reader: StoreReader, pieceBytes = 1024 * 1024): { index: number; digest: string; chunks: Generator<Uint8Array, void> } {
    const meta = reader.get('meta', 'state');
    if (meta === undefined) throw new TandemError(ErrorCode.corrupt, 'snapshot: the store has no state record');
    const { index, digest } = readStateRecord(meta);
    if (digest === null) throw new TandemError(ErrorCode.corrupt, 'snapshot: the committed state record has no digest');
    const head = new ByteWriter(32).u8(snapshotVersion).u64(index).u32(digest.a).u32(digest.b).finish();
    return { index, digest: digest.hex(), chunks: pairChunks(reader, head, pieceBytes) };
  }

  /** Forgets everything: the empty state at index 0 (before a replay of the whole log). */
  reset(): void {
    this.transaction(() => {
      this.store.clear();
      this.dataKeys = 0;
      this.running.a = 0;
      this.running.b = 0;
      this.appliedValue = 0;
      this.saveMeta(new StateDigest());
    });
  }

  /** Whether `restoreFromFile` is available (the store restores from a file itself, off the event loop). */
  get canRestoreFromFile(): boolean {
    return this.store.restoreFromFile !== undefined;
  }

  /**
   * Replaces the whole state with the snapshot whose state bytes are in `file`, as `restore` does,
   * but the store reads and commits them itself, off the event loop, without holding them; `done`
   * once the restored state is committed. On a failure (CORRUPT when the digest does not match)
   * the state is gone: what the store committed part way has no applied index (0), and the node,
   * which stops, restores again from its snapshot file at start. Only when canRestoreFromFile; no
   * batch may be applied until `done`.
   */
  restoreFromFile(file: SnapshotFile, done: (error: Error | null) => void): void {
    const restore = this.store.restoreFromFile;
    if (restore === undefined) throw new TandemError(ErrorCode.badRequest, 'this store cannot restore from a file');
    restore.call(this.store, file, (error, state) => {
      if (error !== null || state === null) {
        // What the store holds now: the state before (the restore never began) or none.
        this.loadStateRecord();
        done(error ?? new Error('the store restored nothing'));
        return;
      }
      this.appliedValue = state.index;
      this.running.a = state.a;
      this.running.b = state.b;
      this.dataKeys = this.kept === null ? this.store.count('data') : 0;
      done(null);
    });
  }

  /** Replaces the whole state with a snapshot's, checking its digest; throws CORRUPT on a mismatch. */
  restore(data: Uint8Array): void {
    this.transaction(() => {
      this.store.clear();
      // The digest of what the snapshot holds, computed here whoever keeps it: a key the snapshot
      // holds twice is counted twice and fails the check, as it should.
      const digest = new StateDigest();
      let keys = 0;
      const { applied, a, b } = readSnapshotState(new ByteReader(data, 'snapshot'), (space, keyBytes, value) => {
        const key = Buffer.from(keyBytes).toString('latin1');
        this.store.put(space, key, value);
        digest.mix(space, key, value, 1);
        if (space === 'data') keys++;
      });
      checkSnapshotDigest(applied, digest, a, b);
      this.running.a = digest.a;
      this.running.b = digest.b;
      this.dataKeys = keys;
      this.appliedValue = applied;
      this.saveMeta(digest);
    });
  }
}

function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(a, b) === 0;
}

/** The reply to bytes that are not a command. */
function badRequest(error: unknown): Reply {
  return { kind: 'error', code: ErrorCode.badRequest, message: error instanceof Error ? error.message : String(error) };
}

/**
 * The snapshot's bytes: `head`, then for each space its pair count and its pairs in chunks of
 * about `pieceBytes`, each its own buffer (no buffer that doubles, copying and zeroing hundreds of
 * megabytes at once). The count of pairs a chunk reads adapts to the pairs seen so far.
 */
function* pairChunks(reader: StoreReader, head: Uint8Array, pieceBytes: number): Generator<Uint8Array, void> {
  yield head;
  let pairs = 0;
  let pairBytes = 0;
  for (const space of ['data', 'session'] as const) {
    yield new ByteWriter(4).u32(reader.count(space)).finish();
    let after: Uint8Array | null = null;
    do {
      const batch = pairs === 0 ? 64 : Math.max(16, Math.min(5000, Math.floor(pieceBytes / (pairBytes / pairs))));
      const w = new ByteWriter(pieceBytes);
      after = reader.forEachRawFrom(space, after, batch, (key, value) => {
        w.bytes(key).bytes(value);
        pairs++;
        pairBytes += key.length + value.length + 8;
      });
      yield w.finish();
    } while (after !== null);
  }
}
