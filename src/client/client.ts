import { randomBytes } from 'node:crypto';
import { RespErrorReply, type RespValue } from '../codec/resp.js';
import { RespConnection } from '../net/resp-connection.js';
import { timedOut, within } from '../shared/deadline.js';

/**
 * Tandem's TypeScript client. It speaks RESP to any node, finds the leader (ROLE), sends writes
 * there tagged with (clientId, seq) so a retry after a timeout or a failover is applied once,
 * routes reads by the consistency asked for, and reads its own writes on any node. Every call
 * has a deadline; every failure is a TandemClientError with a stable code.
 */

/** Stable error codes a caller can switch on. */
export const ClientErrorCode = {
  /** No answer within the call's deadline (a write may still have been applied once). */
  timeout: 'TIMEOUT',
  /** No node could be reached, or none knows a leader, before the deadline. */
  unavailable: 'UNAVAILABLE',
  /** The server refused the request as malformed or too large; retrying will not help. */
  badRequest: 'BAD_REQUEST',
  /** The password was refused or is missing. */
  unauthorized: 'UNAUTHORIZED',
  /** The command ran and failed (for example INCR of a value that is not an integer). */
  commandFailed: 'COMMAND_FAILED',
  /** The client was closed. */
  closed: 'CLOSED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every error the client throws. `serverCode` is the server's error prefix, when there was one. */
export class TandemClientError extends Error {
  override name = 'TandemClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly serverCode: string | null = null,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** Durability for a write: `leader`, `majority` (default of the node), `all`, or a number of voters. */
export type WriteAck = 'leader' | 'majority' | 'all' | number;

/** Consistency for a read. `session` (the default) sees this client's own writes on any node. */
export type ReadConsistency = 'linearizable' | 'session' | 'stale' | `bounded:${number}` | `after:${number}`;

export interface TandemClientOptions {
  /** RESP addresses ("host:port") of any nodes; the rest are learned from them. */
  readonly seeds: readonly string[];
  readonly password?: string;
  /** The deadline of one call, retries included (default 10 s). */
  readonly timeoutMs?: number;
  /** The deadline of one connection attempt (default 1 s). */
  readonly connectTimeoutMs?: number;
  /** Durability when a write does not say (default: the node's default). */
  readonly ack?: WriteAck;
  /** Consistency when a read does not say (default session). */
  readonly consistency?: ReadConsistency;
  /** This client's id for exactly-once writes (default: random). */
  readonly clientId?: string;
  /** TLS: the CA that signs the nodes' certificates. */
  readonly tls?: { readonly ca: Buffer };
}

/** What a write answered: its log index and the command's reply. */
export interface WriteOutcome<T> {
  readonly index: number;
  readonly value: T;
}

/** Server errors after which the same request may be sent again (to the leader, with the same tag). */
const retryableServerCodes = new Set(['NOT_LEADER', 'LEADER_CHANGED', 'TRANSFER_IN_PROGRESS', 'UNAVAILABLE', 'TIMEOUT', 'READONLY', 'OVERLOADED', 'TRYAGAIN', 'STALE_READ', 'MEMBERSHIP_CHANGE_IN_PROGRESS']);
const retryPauseMs = 50;
/** Writes in flight at once; each holds one exactly-once session (clientId/slot) while it runs. */
const writeSlotsMax = 64;

export class TandemClient {
  private readonly options: Required<Omit<TandemClientOptions, 'password' | 'ack' | 'tls'>> & Pick<TandemClientOptions, 'password' | 'ack' | 'tls'>;
  private readonly known: string[];
  private readonly connections = new Map<string, Promise<RespConnection>>();
  private leaderAddress: string | null = null;
  /** The highest index this client wrote or read: session reads wait for it on any node. */
  private sessionIndex = 0;
  /** Free exactly-once sessions, each with the next sequence number it will use. */
  private readonly freeSlots: { id: string; nextSeq: number }[] = [];
  private slotsCreated = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private closed = false;

  constructor(options: TandemClientOptions) {
    if (options.seeds.length === 0) throw new TandemClientError(ClientErrorCode.badRequest, 'TandemClient needs at least one seed address');
    this.options = {
      timeoutMs: 10_000,
      connectTimeoutMs: 1000,
      consistency: 'session',
      clientId: randomBytes(8).toString('hex'),
      ...options,
    };
    this.known = [...new Set(options.seeds)];
  }

  /** The index of the latest write or read this client saw. */
  get lastIndex(): number {
    return this.sessionIndex;
  }

  /** Sets `key` to `value`. */
  async set(key: string | Uint8Array, value: string | Uint8Array, options: { ack?: WriteAck } = {}): Promise<WriteOutcome<'OK'>> {
    const outcome = await this.write(['SET', key, value], options.ack);
    return { index: outcome.index, value: 'OK' };
  }

  /** Deletes keys; the value is how many existed. */
  async del(keys: string | Uint8Array | readonly (string | Uint8Array)[], options: { ack?: WriteAck } = {}): Promise<WriteOutcome<number>> {
    const list = Array.isArray(keys) ? keys : [keys as string | Uint8Array];
    const outcome = await this.write(['DEL', ...list], options.ack);
    return { index: outcome.index, value: Number(outcome.value as bigint) };
  }

  /** Adds `by` to the integer at `key`; the value is the result. */
  async incrBy(key: string | Uint8Array, by: number | bigint = 1, options: { ack?: WriteAck } = {}): Promise<WriteOutcome<bigint>> {
    const outcome = await this.write(['INCRBY', key, String(by)], options.ack);
    return { index: outcome.index, value: outcome.value as bigint };
  }

  /** The value of `key` (null when absent). */
  async get(key: string | Uint8Array, options: { consistency?: ReadConsistency } = {}): Promise<Buffer | null> {
    const value = await this.read(['GET', key], options.consistency);
    return value === null ? null : (value as Buffer);
  }

  /** Runs any write command (SET, MSET, DEL, INCR, APPEND, GETDEL, …), exactly once. */
  async write(args: readonly (string | Uint8Array)[], ack: WriteAck | undefined = this.options.ack): Promise<WriteOutcome<RespValue>> {
    const slot = await this.takeSlot();
    const seq = slot.nextSeq++;
    try {
      const request = ['TANDEM.EXEC', slot.id, String(seq), ack === undefined ? '' : String(ack), ...args];
      const answer = await this.withRetries(request, () => this.leader());
      const [index, value] = answer as [bigint, RespValue];
      if (value instanceof RespErrorReply) throw this.commandError(value);
      this.sessionIndex = Math.max(this.sessionIndex, Number(index));
      return { index: Number(index), value };
    } finally {
      this.freeSlots.push(slot);
      this.slotWaiters.shift()?.();
    }
  }

  /** Runs any read command (GET, MGET, EXISTS, SCAN, …) at `consistency`. */
  async read(args: readonly (string | Uint8Array)[], consistency: ReadConsistency = this.options.consistency): Promise<RespValue> {
    const linearizable = consistency === 'linearizable';
    const answer = await this.withRetries(null, async () => {
      const wanted = consistency === 'session' ? `after:${this.sessionIndex}` : consistency;
      return { connection: linearizable ? await this.leader() : await this.anyNode(), request: ['TANDEM.READ', wanted, ...args] };
    });
    const [applied, value] = answer as [bigint, RespValue];
    if (value instanceof RespErrorReply) throw this.commandError(value);
    this.sessionIndex = Math.max(this.sessionIndex, Number(applied));
    return value;
  }

  /** Closes every connection; later calls fail with CLOSED. */
  close(): void {
    this.closed = true;
    for (const pending of this.connections.values()) void pending.then((c) => c.close(), () => undefined);
    this.connections.clear();
  }

  private async takeSlot(): Promise<{ id: string; nextSeq: number }> {
    for (;;) {
      const free = this.freeSlots.pop();
      if (free !== undefined) return free;
      if (this.slotsCreated < writeSlotsMax) return { id: `${this.options.clientId}/${this.slotsCreated++}`, nextSeq: 1 };
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  private commandError(reply: RespErrorReply): TandemClientError {
    const code = reply.code === 'ERR' || reply.code === 'WRONGTYPE' ? ClientErrorCode.commandFailed : reply.code === 'NOAUTH' || reply.code === 'WRONGPASS' ? ClientErrorCode.unauthorized : ClientErrorCode.commandFailed;
    return new TandemClientError(code, reply.message, reply.code);
  }

  /**
   * Sends a request until it gets an answer that is not a retryable error, or the deadline
   * passes. `target` picks the connection (and, for reads, the request) afresh on each attempt.
   */
  private async withRetries(
    request: readonly (string | Uint8Array)[] | null,
    target: () => Promise<RespConnection | { connection: RespConnection; request: readonly (string | Uint8Array)[] }>,
  ): Promise<RespValue> {
    const deadline = performance.now() + this.options.timeoutMs;
    let last: Error | null = null;
    while (performance.now() < deadline) {
      if (this.closed) throw new TandemClientError(ClientErrorCode.closed, 'the client is closed');
      try {
        const picked = await target();
        const connection = picked instanceof RespConnection ? picked : picked.connection;
        const args = picked instanceof RespConnection ? (request as readonly (string | Uint8Array)[]) : picked.request;
        const answer = await within(connection.call(args), deadline - performance.now());
        if (answer === timedOut) break;
        if (!(answer instanceof RespErrorReply)) return answer;
        if (answer.code === 'NOAUTH' || answer.code === 'WRONGPASS') throw new TandemClientError(ClientErrorCode.unauthorized, answer.message, answer.code);
        if (!retryableServerCodes.has(answer.code)) {
          const code = answer.code === 'ERR' ? ClientErrorCode.badRequest : ClientErrorCode.commandFailed;
          throw new TandemClientError(code, answer.message, answer.code);
        }
        last = new TandemClientError(ClientErrorCode.unavailable, answer.message, answer.code);
        this.leaderAddress = null;
      } catch (error) {
        if (error instanceof TandemClientError && error.code !== ClientErrorCode.unavailable) throw error;
        last = error as Error;
        this.leaderAddress = null;
      }
      await new Promise((resolve) => setTimeout(resolve, retryPauseMs));
    }
    const what = last === null ? '' : `; last error: ${last.message}`;
    // Nothing answered at all (no connection, no leader): UNAVAILABLE; an answer that never came: TIMEOUT.
    const unreachable = last !== null && ((last instanceof TandemClientError && last.code === ClientErrorCode.unavailable) || (last as { code?: string }).code === 'UNAVAILABLE');
    throw new TandemClientError(unreachable ? ClientErrorCode.unavailable : ClientErrorCode.timeout, `no answer within ${this.options.timeoutMs} ms${what}`, null, last ?? undefined);
  }

  private async connection(address: string): Promise<RespConnection> {
    const existing = this.connections.get(address);
    if (existing !== undefined) {
      const connection = await existing.catch(() => null);
      if (connection?.open === true) return connection;
      this.connections.delete(address);
    }
    const colon = address.lastIndexOf(':');
    const opening = RespConnection.open(address.slice(0, colon), Number(address.slice(colon + 1)), this.options.connectTimeoutMs, this.options.tls ?? null).then(async (connection) => {
      if (this.options.password !== undefined) {
        const answer = await connection.call(['AUTH', this.options.password]);
        if (answer instanceof RespErrorReply) {
          connection.close();
          throw new TandemClientError(ClientErrorCode.unauthorized, `${address}: ${answer.message}`, answer.code);
        }
      }
      return connection;
    });
    this.connections.set(address, opening);
    opening.catch(() => this.connections.delete(address));
    return opening;
  }

  /** Any node that answers (for reads that need not go to the leader). */
  private async anyNode(): Promise<RespConnection> {
    let last: unknown = null;
    for (const address of this.known) {
      try {
        return await this.connection(address);
      } catch (error) {
        if (error instanceof TandemClientError && error.code === ClientErrorCode.unauthorized) throw error;
        last = error;
      }
    }
    throw new TandemClientError(ClientErrorCode.unavailable, `no node of ${this.known.join(', ')} could be reached`, null, last);
  }

  /** The leader's connection: asks ROLE of the known nodes until one is or names the leader. */
  private async leader(): Promise<RespConnection> {
    if (this.leaderAddress !== null) return this.connection(this.leaderAddress);
    for (const address of [...this.known]) {
      let role: RespValue;
      try {
        role = await (await this.connection(address)).call(['ROLE']);
      } catch (error) {
        if (error instanceof TandemClientError && error.code === ClientErrorCode.unauthorized) throw error;
        continue;
      }
      if (!Array.isArray(role)) continue;
      const kind = role[0]?.toString();
      if (kind === 'master') {
        for (const replica of (role[2] ?? []) as RespValue[]) {
          if (Array.isArray(replica)) this.learn(`${String(replica[0])}:${String(replica[1])}`);
        }
        this.leaderAddress = address;
        return this.connection(address);
      }
      if (kind === 'slave' && String(role[1]) !== '') {
        const leader = `${String(role[1])}:${String(role[2])}`;
        this.learn(leader);
        this.leaderAddress = leader;
        return this.connection(leader);
      }
    }
    throw new TandemClientError(ClientErrorCode.unavailable, `no node of ${this.known.join(', ')} knows a leader right now`);
  }

  private learn(address: string): void {
    if (!this.known.includes(address)) this.known.push(address);
  }
}
