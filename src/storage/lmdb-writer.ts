/**
 * The LMDB writer thread: commits each group of changes it is sent as one LMDB transaction, synced
 * to disk, and answers with the group's number (or the error). It runs on a worker thread so that
 * neither the B-tree updates nor the queueing of thousands of writes hold the node's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { forEachChange } from './change-group.js';
import { openLmdb, type WriterReply, type WriterRequest } from './lmdb-protocol.js';

const port = parentPort;
if (port === null) throw new Error('lmdb-writer runs only as a worker thread');
const { root, dbs } = openLmdb(workerData as string);

port.on('message', (request: WriterRequest) => {
  if (request.kind === 'close') {
    void root.close().then(() => port.postMessage({ kind: 'closed' } satisfies WriterReply));
    return;
  }
  try {
    root.transactionSync(() => {
      forEachChange(request.changes, request.bytes, (space, key, value) => {
        if (value === null) dbs[space].removeSync(key);
        else dbs[space].putSync(key, value);
      });
    });
    port.postMessage({ kind: 'committed', group: request.group } satisfies WriterReply);
  } catch (error) {
    port.postMessage({ kind: 'failed', group: request.group, message: error instanceof Error ? error.message : String(error) } satisfies WriterReply);
  }
});
