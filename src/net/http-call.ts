import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode, TandemError } from '../shared/errors.js';

/** How to reach a node's HTTP API: TLS (with the CA to trust) and the bearer token, when set. */
export interface HttpCallOptions {
  readonly ca?: Buffer | null;
  readonly token?: string | null;
  readonly timeoutMs: number;
  readonly body?: Uint8Array | string;
}

/** One HTTP(S) request to "host:port"; resolves with the status and body, rejects with UNAVAILABLE. */
export function httpCall(address: string, method: string, path: string, options: HttpCallOptions): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  const headers: Record<string, string> = {};
  if (options.token !== undefined && options.token !== null) headers['authorization'] = `Bearer ${options.token}`;
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  if (body !== undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const done = (error: Error): void => reject(new TandemError(ErrorCode.unavailable, `cannot reach ${address}: ${error.message}`, { address }, error));
    const onAnswer = (answer: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body: Buffer.concat(chunks) }));
      answer.on('error', done);
    };
    // A new connection per call (no keep-alive agent): these calls are rare, and a reused idle
    // connection that the server closes at its keep-alive timeout just as a request goes out
    // fails with "socket hang up" (seen once in a benchmark's status probe).
    const settings = { host, port, method, path, headers, timeout: options.timeoutMs, agent: false };
    const req = options.ca === undefined || options.ca === null ? httpRequest(settings, onAnswer) : httpsRequest({ ...settings, ca: options.ca }, onAnswer);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', done);
    req.end(body);
  });
}

/** Like httpCall, answered as a fetch Response (for callers written against fetch). */
export async function httpFetch(address: string, method: string, path: string, options: HttpCallOptions): Promise<Response> {
  const answer = await httpCall(address, method, path, options);
  const headers = Object.entries(answer.headers).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v] as [string, string]] : []));
  return new Response(new Uint8Array(answer.body), { status: answer.status, headers });
}
