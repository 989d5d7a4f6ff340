import type { Ack } from '../core/types.js';
import type { Engine, WriteResult } from '../engine/engine.js';
import type { Command, Reply } from '../kv/commands.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import type { Metrics } from './metrics.js';

/**
 * Proposes an encoded command on the leader and waits for its ack level (and its applied reply
 * when `needsResult`), counting the outcome and the latency. Rejects with the write's TandemError.
 * The HTTP and RESP front ends (and writes forwarded from followers) all write through here, so
 * this is where writes wait while the state store's uncommitted bytes are over its bound.
 * `decoded` is the command `data` encodes, when the caller has it (see Engine.write).
 */
export function proposeOnLeader(engine: Engine, metrics: Metrics, data: Uint8Array, ack: Ack, needsResult: boolean, decoded: Command | null = null): Promise<WriteDone> {
  const started = performance.now();
  // One promise, settled from the engine's callback (no async layers: this runs once per write).
  return new Promise((resolve, reject) => {
    const backlog = engine.kv.storeBacklog;
    if (backlog === null || !backlog.holding()) {
      propose(engine, metrics, data, decoded, ack, needsResult, started, resolve, reject);
      return;
    }
    // While the state store is too far behind, writes wait for it, in the order they came.
    backlog.admit((error) => {
      if (error === null) {
        propose(engine, metrics, data, decoded, ack, needsResult, started, resolve, reject);
        return;
      }
      metrics.wrote(String(ack), ErrorCode.timeout, null);
      reject(new TandemError(ErrorCode.timeout, `node stopped: ${error.message}`, {}, error));
    });
  });
}

type WriteDone = { readonly index: number; readonly term: number; readonly reply: Reply | null };

function propose(engine: Engine, metrics: Metrics, data: Uint8Array, decoded: Command | null, ack: Ack, needsResult: boolean, started: number, resolve: (done: WriteDone) => void, reject: (error: unknown) => void): void {
  engine.write(data, ack, needsResult, (result: WriteResult) => {
    metrics.wrote(String(ack), result.ok ? 'ok' : result.error.code, result.ok ? (performance.now() - started) / 1000 : null);
    if (result.ok) resolve(result);
    else reject(result.error);
  }, decoded);
}
