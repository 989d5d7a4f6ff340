/**
 * The LMDB writer thread: commits the groups of changes it is sent, in order, as one LMDB
 * transaction, synced to disk, and answers with the last group's number (or the error). It runs
 * on a worker thread so that neither the B-tree updates nor the queueing of thousands of writes
 * hold the node's event loop.
 *
 * It also keeps the state digest (see StateDigest), so the event loop never reads a value only to
 * take its hash out: each change's old value is read inside the write transaction (which sees the
 * group's earlier changes), its hash taken out and the new one's added. The state machine writes
 * its state record as the applied index alone (8 bytes); the digest so far is appended to it here.
 * A record that carries a digest (16 bytes: a snapshot installed, a reset) sets the digest.
 *
 * A commit nothing waits for is paced (see Pacer): the thread rests between chunks of its work,
 * inside the transaction, so that it does not take a core from the event loops all at once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, openSync } from 'node:fs';
import { checkSnapshotDigest, committedState, encodeStateRecord, readStateRecord, StateDigest } from '../kv/digest.js';
import { readSnapshotState } from '../kv/snapshot-format.js';
import type { SnapshotFile, Space } from '../kv/store.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { forEachChange, spaceCodes } from './change-group.js';
import { openLmdb, type GroupChanges, type GroupState, type WriterData, type WriterReply, type WriterRequest } from './lmdb-protocol.js';
import { hurryFlagClock, Pacer } from './pacer.js';
import { FileSnapshotSource } from './snapshot-file.js';

const port = parentPort;
if (port === null) throw new Error('lmdb-writer runs only as a worker thread');
const { path, hurry } = workerData as WriterData;
const { root, dbs } = openLmdb(path);
const stateKey = Buffer.from('state', 'latin1');
/** Raised by the store while something waits for the commit in progress (see Pacer). */
const hurryFlag = new Int32Array(hurry);
const pacer = new Pacer(hurryFlagClock(hurryFlag));

port.on('message', (request: WriterRequest) => {
  if (request.kind === 'close') {
    void root.close().then(() => port.postMessage({ kind: 'closed' } satisfies WriterReply));
    return;
  }
  if (request.kind === 'restore') {
    try {
      port.postMessage({ kind: 'restored', ...restore(request, request.transactionBytes) } satisfies WriterReply);
    } catch (error) {
      const corrupt = error instanceof TandemError && error.code === ErrorCode.corrupt;
      port.postMessage({ kind: 'restoreFailed', message: error instanceof Error ? error.message : String(error), corrupt } satisfies WriterReply);
    }
    return;
  }
  const last = request.groups[request.groups.length - 1]?.group ?? 0;
  try {
    const states: GroupState[] = [];
    pacer.begin(request.restMs);
    root.transactionSync(() => {
      const { digest } = committedState(dbs.meta.getBinaryFast(stateKey));
      for (const group of request.groups) states.push(writeGroup(group, digest));
    });
    port.postMessage({ kind: 'committed', group: last, states, restedMs: pacer.rested } satisfies WriterReply);
  } catch (error) {
    port.postMessage({ kind: 'failed', group: last, message: error instanceof Error ? error.message : String(error) } satisfies WriterReply);
  }
});

/**
 * Replaces the whole state with the snapshot's in `file`: one transaction clears the databases
 * (the state record with them), then the pairs go in, put and hashed as they are read (8 MiB of
 * the file at a time), a transaction per `transactionBytes` of them (64 MiB in a node); the last one, once the
 * digest matched the snapshot's, also writes the state record. Until then the store holds no
 * state record — applied index 0 — so a node that stops part way (a crash, or a snapshot that
 * fails the check: CORRUPT) is behind its snapshot and restores it again at start. In one
 * transaction, a 650 MB snapshot's restore held about 1 GB of LMDB's dirty pages.
 */
function restore(file: SnapshotFile, transactionBytes: number): { readonly index: number; readonly a: number; readonly b: number } {
  const fd = openSync(file.path, 'r');
  try {
    root.transactionSync(() => {
      for (const space of spaceCodes) dbs[space].clearSync();
    });
    const digest = new StateDigest();
    let batch: [Space, Uint8Array, Uint8Array][] = [];
    let batchBytes = 0;
    const put = (pairs: readonly [Space, Uint8Array, Uint8Array][]): void => {
      for (const [space, key, value] of pairs) dbs[space].putSync(key as Buffer, value as Buffer);
    };
    // The source reads each 8 MiB piece into a buffer of its own: the pairs of a batch stay valid.
    const { applied, a, b } = readSnapshotState(new FileSnapshotSource(fd, file), (space, key, value) => {
      batch.push([space, key, value]);
      batchBytes += key.length + value.length;
      digest.mix(space, key, value, 1);
      if (batchBytes < transactionBytes) return;
      const full = batch;
      batch = [];
      batchBytes = 0;
      root.transactionSync(() => put(full));
    });
    checkSnapshotDigest(applied, digest, a, b);
    root.transactionSync(() => {
      put(batch);
      dbs.meta.putSync(stateKey, Buffer.from(encodeStateRecord(applied, digest)));
    });
    return { index: applied, a: digest.a, b: digest.b };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes one group's changes inside the running transaction, keeping `digest` in step; returns the
 * state record it stored last, with the digest there.
 */
function writeGroup(group: GroupChanges, digest: StateDigest): GroupState {
  let state: GroupState = null;
  forEachChange(group.changes, group.bytes, (space, key, value) => {
    pacer.step();
    let stored = value;
    if (space !== 'meta') {
      const old = dbs[space].getBinaryFast(key);
      if (old !== undefined) digest.mix(space, key, old, -1);
      if (value !== null) digest.mix(space, key, value, 1);
    } else if (value !== null && key.equals(stateKey)) {
      const { record, index } = stateRecord(value, digest);
      stored = record;
      state = { index, a: digest.a, b: digest.b };
    }
    if (stored === null) dbs[space].removeSync(key);
    else dbs[space].putSync(key, stored);
  });
  return state;
}

/**
 * The state record to store for `value`: the applied index with the digest so far appended, or, when
 * `value` carries a digest, itself (and the digest becomes that).
 */
function stateRecord(value: Buffer, digest: StateDigest): { readonly record: Buffer; readonly index: number } {
  const { index, digest: known } = readStateRecord(value);
  if (known === null) return { record: Buffer.from(encodeStateRecord(index, digest)), index };
  digest.a = known.a;
  digest.b = known.b;
  return { record: value, index };
}
