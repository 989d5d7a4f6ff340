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
  return new Promise((resolve, reject) => proposeThen(engine, metrics, data, ack, needsResult, decoded, (error, done) => (done === null ? reject(error) : resolve(done))));
}

/** proposeOnLeader with a callback instead of a promise (the RESP front end's writes: one fewer per write). */
export function proposeThen(engine: Engine, metrics: Metrics, data: Uint8Array, ack: Ack, needsResult: boolean, decoded: Command | null, then: WriteCallback): void {
  const started = performance.now();
  const backlog = engine.kv.storeBacklog;
  if (backlog === null || !backlog.holding()) {
    propose(engine, metrics, data, decoded, ack, needsResult, started, then);
    return;
  }
  // While the state store is too far behind, writes wait for it, in the order they came.
  backlog.admit((error) => {
    if (error === null) {
      propose(engine, metrics, data, decoded, ack, needsResult, started, then);
      return;
    }
    metrics.wrote(String(ack), ErrorCode.timeout, null);
    then(new TandemError(ErrorCode.timeout, `node stopped: ${error.message}`, {}, error), null);
  });
}

type WriteDone = { readonly index: number; readonly term: number; readonly reply: Reply | null };
/** Called once: with the write's TandemError and null, or with null and its outcome. */
type WriteCallback = (error: unknown, done: WriteDone | null) => void;

function propose(engine: Engine, metrics: Metrics, data: Uint8Array, decoded: Command | null, ack: Ack, needsResult: boolean, started: number, then: WriteCallback): void {
  engine.write(
    data,
    ack,
    needsResult,
    (result: WriteResult) => {
      metrics.wrote(String(ack), result.ok ? 'ok' : result.error.code, result.ok ? (performance.now() - started) / 1000 : null);
      if (result.ok) then(null, result);
      else then(result.error, null);
    },
    decoded,
  );
}
