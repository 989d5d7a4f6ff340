import type { Ack } from '../core/types.js';
import type { Engine, WriteResult } from '../engine/engine.js';
import type { Reply } from '../kv/commands.js';
import type { Metrics } from './metrics.js';

/**
 * Proposes an encoded command on the leader and waits for its ack level (and its applied reply
 * when `needsResult`), counting the outcome and the latency. Rejects with the write's TandemError.
 * The HTTP and RESP front ends (and writes forwarded from followers) all write through here.
 */
export function proposeOnLeader(engine: Engine, metrics: Metrics, data: Uint8Array, ack: Ack, needsResult: boolean): Promise<{ readonly index: number; readonly term: number; readonly reply: Reply | null }> {
  const started = performance.now();
  // One promise, settled from the engine's callback (no async layers: this runs once per write).
  return new Promise((resolve, reject) => {
    engine.write(data, ack, needsResult, (result: WriteResult) => {
      metrics.wrote(String(ack), result.ok ? 'ok' : result.error.code, result.ok ? (performance.now() - started) / 1000 : null);
      if (result.ok) resolve(result);
      else reject(result.error);
    });
  });
}
