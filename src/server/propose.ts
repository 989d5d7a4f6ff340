import type { Ack } from '../core/types.js';
import type { Engine, WriteResult } from '../engine/engine.js';
import type { Reply } from '../kv/commands.js';
import type { Metrics } from './metrics.js';

/**
 * Proposes an encoded command on the leader and waits for its ack level (and its applied reply
 * when `needsResult`), counting the outcome and the latency. Throws the write's TandemError.
 * The HTTP and RESP front ends (and writes forwarded from followers) all write through here.
 */
export async function proposeOnLeader(engine: Engine, metrics: Metrics, data: Uint8Array, ack: Ack, needsResult: boolean): Promise<{ index: number; term: number; reply: Reply | null }> {
  const started = performance.now();
  const result = await new Promise<WriteResult>((resolve) => engine.write(data, ack, needsResult, resolve));
  metrics.wrote(String(ack), result.ok ? 'ok' : result.error.code, result.ok ? (performance.now() - started) / 1000 : null);
  if (!result.ok) throw result.error;
  return { index: result.index, term: result.term, reply: result.reply };
}
