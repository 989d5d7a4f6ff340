import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeRespCommand, RespReplyParser, type RespValue } from '../codec/resp.js';
import { ErrorCode, TandemError } from '../shared/errors.js';

/** Commands sent on one connection and not yet answered, at most (then callers wait). */
export const respPipelineMax = 10_000;

interface Waiting {
  readonly resolve: (value: RespValue) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One pipelined RESP connection: commands go out in order, replies come back in order and are
 * matched to their callers by position. Used by a follower to forward writes to the leader and
 * by the TypeScript client. When the socket closes, every waiting caller gets UNAVAILABLE.
 */
export class RespConnection {
  private readonly waiting: Waiting[] = [];
  private readonly parser = new RespReplyParser();
  private closedError: TandemError | null = null;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(private readonly socket: Socket, readonly address: string) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.fail(new TandemError(ErrorCode.unavailable, `the connection to ${address} closed`, { address })));
  }

  /** Connects to "host:port" within `timeoutMs` (over TLS when given the CA to trust); rejects with UNAVAILABLE. */
  static open(host: string, port: number, timeoutMs: number, tls: { readonly ca: Buffer } | null = null): Promise<RespConnection> {
    const address = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const socket: Socket = tls === null ? connect({ host, port }) : tlsConnect({ host, port, ca: tls.ca, servername: isIP(host) === 0 ? host : undefined });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TandemError(ErrorCode.unavailable, `no connection to ${address} within ${timeoutMs} ms`, { address }));
      }, timeoutMs);
      socket.once(tls === null ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        resolve(new RespConnection(socket, address));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new TandemError(ErrorCode.unavailable, `cannot connect to ${address}: ${error.message}`, { address }, error));
      });
    });
  }

  /** Whether the connection still works. */
  get open(): boolean {
    return this.closedError === null;
  }

  /** How many commands await their reply. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Sends one command; resolves with its reply (error replies too, as RespErrorReply values). */
  call(args: readonly (string | Uint8Array)[]): Promise<RespValue> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(encodeRespCommand(args));
    });
  }

  /** Runs `listener` once when the connection closes. */
  onClose(listener: () => void): void {
    if (this.closedError !== null) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.parser.push(chunk);
    for (;;) {
      let value: RespValue | undefined;
      try {
        value = this.parser.next();
      } catch (error) {
        this.fail(new TandemError(ErrorCode.unavailable, `${this.address} sent bytes that are not RESP: ${(error as Error).message}`));
        this.socket.destroy();
        return;
      }
      if (value === undefined) return;
      const waiter = this.waiting.shift();
      if (waiter === undefined) {
        this.fail(new TandemError(ErrorCode.unavailable, `${this.address} sent a reply nobody asked for`));
        this.socket.destroy();
        return;
      }
      waiter.resolve(value);
    }
  }

  private fail(error: TandemError): void {
    if (this.closedError !== null) return;
    this.closedError = error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}
