import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { Ack, Consistency, NodeId, SnapshotMeta } from '../core/types.js';
import type { Engine } from '../engine/engine.js';
import { encodeCommand, validateCommand, type Command, type Operation } from '../kv/commands.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { sameSecret, type Security } from '../shared/security.js';
import { encodeSnapshotInPieces, snapshotLead, snapshotSeal } from '../storage/meta-files.js';
import { crc32c } from '../codec/crc32c.js';
import { httpCall } from '../net/http-call.js';
import { dashboardHtml } from './dashboard.js';
import { proposeOnLeader } from './propose.js';
import type { Member, Membership } from './membership.js';
import type { Metrics } from './metrics.js';
import type { Checkpoint, NodeStatus } from './status.js';

/** What the HTTP front end needs from the node it serves. */
export interface HttpContext {
  readonly engine: Engine;
  readonly nodeId: NodeId;
  readonly defaultAck: Ack;
  readonly metrics: Metrics;
  /** Adds, promotes and removes members; lists them. */
  readonly membership: Membership;
  /** The bearer token (the client password) every request must carry, and TLS. */
  readonly security: Security;
  /** The leader's HTTP address ("host:port"), or null when no leader is known. */
  leaderHttpAddress(): string | null;
  /** This node's status; its digest reads every key written since the last state commit. */
  status(): NodeStatus;
  /** The state digests at this node's latest checkpoints (cheap: what a leader polls every second). */
  checkpoints(): readonly Checkpoint[];
}

/** Parses an `ack` parameter; throws BAD_REQUEST naming the value. */
export function parseAck(text: string | null, fallback: Ack): Ack {
  if (text === null || text === '') return fallback;
  if (text === 'leader' || text === 'majority' || text === 'all') return text;
  const n = Number(text);
  if (Number.isInteger(n) && n >= 1 && n <= limits.membersMax) return n;
  throw new TandemError(ErrorCode.badRequest, `ack must be leader, majority, all or a number of voters from 1 to ${limits.membersMax}, not '${text}'`);
}

/** Parses a `consistency` parameter; throws BAD_REQUEST naming the value. */
export function parseConsistency(text: string | null, sessionIndex: number): Consistency {
  if (text === null || text === '' || text === 'linearizable') return { kind: 'linearizable' };
  if (text === 'session') return { kind: 'session', index: sessionIndex };
  if (text === 'stale') return { kind: 'stale' };
  const [kind, value] = text.split(':', 2);
  const n = Number(value);
  if (kind === 'after' && Number.isSafeInteger(n) && n >= 0) return { kind: 'after', index: n };
  if (kind === 'bounded' && Number.isSafeInteger(n) && n >= 0) return { kind: 'bounded', ms: n };
  throw new TandemError(ErrorCode.badRequest, `consistency must be linearizable, session, after:<index>, bounded:<ms> or stale, not '${text}'`);
}

const statusByCode: Record<string, number> = {
  [ErrorCode.badRequest]: 400,
  [ErrorCode.tooLarge]: 413,
  [ErrorCode.ackUnsatisfiable]: 400,
  [ErrorCode.notLeader]: 503,
  [ErrorCode.leaderChanged]: 503,
  [ErrorCode.transferInProgress]: 503,
  [ErrorCode.overloaded]: 503,
  [ErrorCode.staleRead]: 503,
  [ErrorCode.timeout]: 504,
  [ErrorCode.unauthorized]: 401,
};

/**
 * The JSON/raw-bytes HTTP API: PUT/GET/DELETE /v1/kv/{key}, GET /v1/status, GET /metrics.
 * Writes that reach a follower are forwarded to the leader. Every reply carries the node's
 * applied index (x-tandem-applied-index), so a client can read its writes anywhere with
 * consistency=after:<index>.
 */
export function createHttpServer(ctx: HttpContext): Server {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-tandem-node', ctx.nodeId);
    if (!authorized(ctx, req)) {
      res.setHeader('www-authenticate', 'Bearer realm="tandem"');
      sendError(ctx, res, new TandemError(ErrorCode.unauthorized, 'this node needs Authorization: Bearer <password>', { status: 401 }));
      return;
    }
    handle(ctx, req, res).catch((error: unknown) => sendError(ctx, res, error));
  };
  const tls = ctx.security.tls;
  return tls === null ? createServer(handler) : createHttpsServer({ key: tls.key, cert: tls.cert }, handler);
}

function authorized(ctx: HttpContext, req: IncomingMessage): boolean {
  const password = ctx.security.password;
  if (password === null) return true;
  const header = req.headers['authorization'];
  return typeof header === 'string' && header.startsWith('Bearer ') && sameSecret(header.slice('Bearer '.length), password);
}

async function handle(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://tandem');
  if (url.pathname === '/v1/status' && req.method === 'GET') return sendJson(ctx, res, 200, ctx.status());
  if (url.pathname === '/v1/checkpoints' && req.method === 'GET') return sendJson(ctx, res, 200, { id: ctx.nodeId, checkpoints: ctx.checkpoints() });
  if (url.pathname === '/metrics' && req.method === 'GET') {
    res.setHeader('content-type', ctx.metrics.registry.contentType);
    res.end(await ctx.metrics.registry.metrics());
    return;
  }
  if (url.pathname === '/' && req.method === 'GET') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(dashboardHtml(ctx.nodeId));
    return;
  }
  if (url.pathname === '/v1/cluster' && req.method === 'GET') return sendJson(ctx, res, 200, await clusterView(ctx));
  if (url.pathname === '/v1/stepdown' && req.method === 'POST') {
    await readBody(req);
    if (ctx.engine.raft.role !== 'leader') return forward(ctx, req, res, null);
    return sendJson(ctx, res, 200, await switchover(ctx, null));
  }
  if (url.pathname === '/v1/backup' && req.method === 'GET') return backup(ctx, res);
  if (url.pathname === '/v1/members' && req.method === 'GET') return sendJson(ctx, res, 200, ctx.membership.list());
  if (url.pathname.startsWith('/v1/members/') && req.method === 'POST') return members(ctx, req, res, url);
  if (url.pathname === '/v1/switchover' && req.method === 'POST') {
    await readBody(req);
    if (ctx.engine.raft.role !== 'leader') return forward(ctx, req, res, null);
    return sendJson(ctx, res, 200, await switchover(ctx, url.searchParams.get('to')));
  }
  if (!url.pathname.startsWith('/v1/kv/')) throw new TandemError(ErrorCode.badRequest, `no such endpoint: ${req.method} ${url.pathname} (try /, /v1/kv/{key}, /v1/status, /v1/checkpoints, /v1/cluster, /metrics, /v1/backup, POST /v1/switchover, POST /v1/stepdown)`, { status: 404 });
  const key = keyFromPath(url.pathname.slice('/v1/kv/'.length));
  switch (req.method) {
    case 'GET':
      return read(ctx, key, url, req, res);
    case 'PUT': {
      const body = await readBody(req);
      return write(ctx, req, res, url, { op: 'put', key, value: body }, false);
    }
    case 'DELETE':
      await readBody(req);
      return write(ctx, req, res, url, { op: 'del', key }, true);
    default:
      throw new TandemError(ErrorCode.badRequest, `method ${req.method} is not allowed on /v1/kv/{key} (GET, PUT, DELETE)`, { status: 405 });
  }
}

/** Keys arrive percent-encoded UTF-8; inside, a key is its bytes as a latin1 string. */
function keyFromPath(encoded: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    throw new TandemError(ErrorCode.badRequest, 'the key is not valid percent-encoding');
  }
  return Buffer.from(decoded, 'utf8').toString('latin1');
}

/**
 * The request's body, copied into a buffer of its own (a value may be held until LMDB commits it:
 * it must not keep the socket's read buffer alive). Read through the stream's events, not its
 * async iterator: a promise per request instead of several per chunk.
 */
function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limits.valueBytesMax) return Promise.reject(new TandemError(ErrorCode.tooLarge, `the value is ${declared} bytes; the limit is ${limits.valueBytesMax}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limits.valueBytesMax) {
        ended = true;
        req.destroy();
        reject(new TandemError(ErrorCode.tooLarge, `the value exceeds the limit of ${limits.valueBytesMax} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      ended = true;
      reject(error);
    });
    req.on('close', () => {
      if (!ended) reject(new TandemError(ErrorCode.badRequest, 'the request was closed before its body ended'));
    });
  });
}

async function write(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, url: URL, operation: Operation, needsResult: boolean): Promise<void> {
  const ack = parseAck(url.searchParams.get('ack'), ctx.defaultAck);
  const command: Command = { clientId: headerText(req, 'x-tandem-client-id') ?? '', seq: headerNumber(req, 'x-tandem-seq') ?? 0, operation };
  validateCommand(command);
  if (ctx.engine.raft.role !== 'leader') return forward(ctx, req, res, operation);
  const result = await proposeOnLeader(ctx.engine, ctx.metrics, encodeCommand(command), ack, needsResult, command);
  const body: Record<string, unknown> = { index: result.index, term: result.term, ack: String(ack) };
  if (result.reply?.kind === 'deleted') body['deleted'] = result.reply.count;
  if (result.reply?.kind === 'error') throw new TandemError(result.reply.code, result.reply.message);
  sendJson(ctx, res, 200, body);
}

/** Sends a write to the leader's HTTP API and relays its answer. */
async function forward(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, operation: Operation | Uint8Array | null): Promise<void> {
  const leader = ctx.leaderHttpAddress();
  if (leader === null) throw new TandemError(ErrorCode.notLeader, `node ${ctx.nodeId} knows no leader right now; retry shortly`, { leader: null });
  const [host, port] = splitAddress(leader);
  const body = operation instanceof Uint8Array ? operation : operation?.op === 'put' ? operation.value : new Uint8Array(0);
  await new Promise<void>((resolve, reject) => {
    const headers: Record<string, string> = { 'content-length': String(body.length), 'x-tandem-forwarded-by': ctx.nodeId };
    for (const name of ['x-tandem-client-id', 'x-tandem-seq', 'content-type', 'authorization']) {
      const value = headerText(req, name);
      if (value !== null) headers[name] = value;
    }
    if (req.headers['x-tandem-forwarded-by'] !== undefined) {
      reject(new TandemError(ErrorCode.notLeader, `node ${ctx.nodeId} is not the leader either (forwarded once already)`, { leader: null }));
      return;
    }
    const tls = ctx.security.tls;
    const settings = { host, port, method: req.method, path: req.url, headers };
    const relay = (answer: IncomingMessage): void => {
      res.statusCode = answer.statusCode ?? 502;
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && name !== 'x-tandem-node') res.setHeader(name, value);
      res.setHeader('x-tandem-leader', answer.headers['x-tandem-node'] ?? '');
      answer.pipe(res);
      answer.on('end', resolve);
      answer.on('error', reject);
    };
    const upstream = tls === null ? httpRequest(settings, relay) : httpsRequest({ ...settings, ca: tls.ca }, relay);
    upstream.on('error', (error) => reject(new TandemError(ErrorCode.notLeader, `could not reach the leader at ${leader}: ${error.message}`, { leader: null }, error)));
    upstream.end(body);
  });
}

async function read(ctx: HttpContext, key: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const consistency = parseConsistency(url.searchParams.get('consistency'), headerNumber(req, 'x-tandem-session-index') ?? 0);
  const value = await new Promise<Uint8Array | undefined>((resolve, reject) =>
    ctx.engine.read(consistency, (result) => {
      ctx.metrics.read(consistency.kind, result.ok ? 'ok' : result.error.code);
      if (result.ok) resolve(ctx.engine.kv.get(key));
      else reject(result.error);
    }),
  );
  res.setHeader('x-tandem-applied-index', String(ctx.engine.kv.appliedIndex));
  if (value === undefined) {
    sendJson(ctx, res, 404, { error: { code: 'NOT_FOUND', message: 'no such key' } });
    return;
  }
  res.statusCode = 200;
  res.setHeader('content-type', 'application/octet-stream');
  res.end(value);
}

function headerText(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}

function headerNumber(req: IncomingMessage, name: string): number | null {
  const text = headerText(req, name);
  if (text === null) return null;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new TandemError(ErrorCode.badRequest, `header ${name} must be a whole number, not '${text}'`);
  return n;
}

/** Splits "host:port". */
export function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new TandemError(ErrorCode.badRequest, `'${address}' is not HOST:PORT`);
  return [address.slice(0, colon), port];
}

function sendJson(ctx: HttpContext, res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-tandem-applied-index', String(ctx.engine.kv.appliedIndex));
  res.end(`${JSON.stringify(body)}\n`);
}

function sendError(ctx: HttpContext, res: ServerResponse, error: unknown): void {
  if (error instanceof TandemError) {
    const status = typeof error.details['status'] === 'number' ? error.details['status'] : (statusByCode[error.code] ?? 500);
    const details = Object.fromEntries(Object.entries(error.details).filter(([k]) => k !== 'status'));
    sendJson(ctx, res, status, { error: { code: error.code, message: error.message, ...details } });
    return;
  }
  sendJson(ctx, res, 500, { error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) } });
}

/** POST /v1/members/join (JSON member), /v1/members/promote?id=, /v1/members/remove?id=: on the leader. */
async function members(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const body = await readBody(req);
  if (ctx.engine.raft.role !== 'leader') return forward(ctx, req, res, body);
  const action = url.pathname.slice('/v1/members/'.length);
  const id = url.searchParams.get('id') ?? '';
  switch (action) {
    case 'join': {
      let member: Member;
      try {
        member = JSON.parse(Buffer.from(body).toString()) as Member;
      } catch {
        throw new TandemError(ErrorCode.badRequest, 'the join request must be JSON {"id","peer","http","resp"}');
      }
      if (typeof member.id !== 'string' || typeof member.peer !== 'string') throw new TandemError(ErrorCode.badRequest, 'the join request needs "id" and "peer"');
      return sendJson(ctx, res, 200, { clusterId: ctx.status().clusterId, ...(await ctx.membership.join({ id: member.id, peer: member.peer, http: member.http ?? null, resp: member.resp ?? null })) });
    }
    case 'promote':
      await ctx.membership.promote(id);
      return sendJson(ctx, res, 200, ctx.membership.list());
    case 'remove':
      await ctx.membership.remove(id);
      return sendJson(ctx, res, 200, ctx.membership.list());
    default:
      throw new TandemError(ErrorCode.badRequest, `no such membership action '${action}' (join, promote, remove)`, { status: 404 });
  }
}

/**
 * Every member's status as this node can fetch it now (each node asked directly, so the view
 * works from any node and shows a dead leader as unreachable), for the dashboard.
 */
async function clusterView(ctx: HttpContext): Promise<Record<string, unknown>> {
  const self = ctx.status();
  const nodes = await Promise.all(
    self.members.map(async (member) => {
      if (member.id === ctx.nodeId) return { id: member.id, reachable: true, status: self };
      if (member.httpAddress === null) return { id: member.id, reachable: false, error: 'address not known yet' };
      try {
        const answer = await httpCall(member.httpAddress, 'GET', '/v1/status', { timeoutMs: 800, token: ctx.security.password, ca: ctx.security.tls?.ca ?? null });
        return { id: member.id, reachable: true, status: JSON.parse(answer.body.toString()) as NodeStatus };
      } catch (error) {
        return { id: member.id, reachable: false, error: (error as Error).message };
      }
    }),
  );
  return { servedBy: ctx.nodeId, clusterId: self.clusterId, at: new Date().toISOString(), nodes };
}

/**
 * A consistent backup: after a linearizable read (so it holds every write acknowledged before
 * the request), the whole state, in the snapshot-file format (CRC32C-sealed). Over LMDB it is the
 * committed state one read transaction sees, read twice, a chunk per turn of the event loop as the
 * node's own snapshots are built: once for the checksum and length the file starts with, then
 * again as the response drains — so no more than a chunk of it is in memory (until the twelfth
 * session the whole copy was; before the eleventh it was also built at once, and a leader
 * serializing a few hundred megabytes held its loop for 1.4 s and lost its role).
 */
async function backup(ctx: HttpContext, res: ServerResponse): Promise<void> {
  const engine = ctx.engine;
  await new Promise<void>((resolve, reject) => engine.read({ kind: 'linearizable' }, (result) => (result.ok ? resolve() : reject(result.error))));
  const metaAt = (index: number): SnapshotMeta => ({ index, term: engine.raft.log.termAt(index) ?? engine.raft.term, config: engine.raft.config, termStarts: [] });
  if (!engine.kv.canSnapshotInPieces) {
    const index = engine.kv.appliedIndex;
    await sendBackup(res, index, engine.kv.digest(), await encodeSnapshotInPieces(metaAt(index), [engine.kv.snapshot()]));
    return;
  }
  const reader = await engine.kv.openReader();
  try {
    const { index, digest, chunks } = engine.kv.snapshotChunks(reader);
    const lead = snapshotLead(metaAt(index));
    const first = paced(chunks, crc32c(lead));
    let done = await first.next();
    while (done.done !== true) done = await first.next();
    const sum = done.value;
    const tail = (async function* (): AsyncGenerator<Uint8Array> {
      const again = paced(engine.kv.snapshotChunks(reader).chunks, crc32c(lead));
      let next = await again.next();
      for (; next.done !== true; next = await again.next()) yield next.value;
      // One read transaction gives the same bytes twice; if not, the copy must not pass as whole.
      if (next.value.crc !== sum.crc) throw new Error(`backup: the state read a second time differs (checksum ${next.value.crc.toString(16)}, first ${sum.crc.toString(16)})`);
    })();
    await sendBackup(res, index, digest, [snapshotSeal(sum.crc), lead], tail, sum.bytes);
  } finally {
    reader.close();
  }
}

/**
 * Yields the chunks a turn of the event loop apart, and returns the checksum of `seed` followed
 * by them, and their length.
 */
async function* paced(chunks: Iterable<Uint8Array>, seed: number): AsyncGenerator<Uint8Array, { crc: number; bytes: number }> {
  let crc = seed;
  let bytes = 0;
  for (const chunk of chunks) {
    crc = crc32c(chunk, crc);
    bytes += chunk.length;
    yield chunk;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { crc, bytes };
}

/**
 * Writes a backup as the response drains: `head`, then `tail`'s chunks (`tailBytes` of them in
 * all). A failure part way destroys the response, so the client sees a body cut short, never a
 * file that looks whole.
 */
async function sendBackup(res: ServerResponse, index: number, digest: string, head: readonly Uint8Array[], tail: AsyncIterable<Uint8Array> = (async function* () {})(), tailBytes = 0): Promise<void> {
  res.statusCode = 200;
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('x-tandem-backup-index', String(index));
  res.setHeader('x-tandem-backup-digest', digest);
  res.setHeader('content-length', String(head.reduce((sum, part) => sum + part.length, 0) + tailBytes));
  const write = async (part: Uint8Array): Promise<void> => {
    if (!res.write(part)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
  };
  try {
    for (const part of head) await write(part);
    for await (const part of tail) {
      if (res.destroyed) return;
      await write(part);
    }
  } catch (error) {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  res.end();
}

/**
 * Hands leadership to `to` (or the most up-to-date voter): the core pauses writes, brings the
 * target up to date and tells it to campaign. Answers once the target leads, with the pause.
 */
async function switchover(ctx: HttpContext, to: string | null): Promise<Record<string, unknown>> {
  const raft = ctx.engine.raft;
  const candidates = raft.followers().filter((f) => raft.config.voters.includes(f.id));
  const target = to ?? candidates.sort((a, b) => b.match - a.match)[0]?.id;
  if (target === undefined) throw new TandemError(ErrorCode.badRequest, 'there is no other voter to hand leadership to');
  if (target === ctx.nodeId) return { from: ctx.nodeId, to: target, pauseMs: 0, note: 'already the leader' };
  const started = performance.now();
  ctx.engine.transferLeadership(target);
  const term = raft.term;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (raft.leader === target && raft.term > term) return { from: ctx.nodeId, to: target, term: raft.term, pauseMs: Math.round(performance.now() - started) };
    if (raft.role === 'leader' && raft.transferring === null) {
      throw new TandemError(ErrorCode.timeout, `leadership did not move to ${target} within an election timeout; ${ctx.nodeId} still leads and takes writes again`);
    }
    if (raft.role !== 'leader' && raft.leader !== null && raft.leader !== target) {
      throw new TandemError(ErrorCode.leaderChanged, `leadership went to ${raft.leader} instead of ${target}`, { leader: raft.leader });
    }
    if (performance.now() - started > 10_000) throw new TandemError(ErrorCode.timeout, `no leader after 10 s of switching over to ${target}`);
  }
}
