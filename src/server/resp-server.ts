import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { resp, RespErrorReply, RespParser, type RespLimits, type RespValue } from '../codec/resp.js';
import type { Ack, Consistency, NodeId } from '../core/types.js';
import type { Engine } from '../engine/engine.js';
import { decodeCommand, decodeReply, encodeCommand, encodeReply, validateCommand, type Command, type Reply } from '../kv/commands.js';
import { RespConnection } from '../net/resp-connection.js';
import { timedOut, within } from '../shared/deadline.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { sameSecret, type Security } from '../shared/security.js';
import { globMatch } from './glob.js';
import { parseAck, parseConsistency, splitAddress } from './http.js';
import { proposeOnLeader, proposeThen } from './propose.js';
import type { Metrics } from './metrics.js';
import { commandDocs, commandInfo, configGetReply, helloReply, infoText, roleReply, sentinelReply, type Topology } from './resp-admin.js';
import { CommandNames, integerArgument, readCommands, RespCommandError, respErrors, ScanCursors, writeCommands, type ReadPlan, type WritePlan } from './resp-commands.js';

/** What the RESP front end needs from the node it serves. */
export interface RespContext {
  readonly engine: Engine;
  readonly nodeId: NodeId;
  readonly defaultAck: Ack;
  /** What a write sent to a follower does: forwarded to the leader, or refused with READONLY. */
  readonly followerWrites: 'forward' | 'reject';
  /** The password AUTH must give (Redis's requirepass), the cluster secret and TLS material. */
  readonly security: Security;
  readonly limits: RespLimits;
  readonly metrics: Metrics;
  /** How long a forwarded write or a connection to the leader may take. */
  readonly requestTimeoutMs: number;
  topology(): Omit<Topology, 'connectedClients' | 'commandsProcessed' | 'bulkBytesMax'>;
  /** The leader's RESP address, if a leader is known: asked once per forwarded write, so cheap. */
  leaderRespAddress(): string | null;
}

/** Commands waiting on one connection (queued and running) before it stops reading. */
const connectionCommandsMax = 10_000;
/** How much longer than the leader's own request timeout a follower waits for a forwarded answer. */
const forwardMarginMs = 1000;
/** How often WAIT looks at the followers' progress. */
const waitPollMs = 2;

type JobKind = 'read' | 'write' | 'admin' | 'free';

interface Job {
  readonly kind: JobKind;
  /**
   * Runs the command: its reply now, a promise of it, or undefined when the job hands its reply
   * to Client.complete itself (a write: no promise per write).
   */
  readonly run: (job: Job) => Buffer | Promise<Buffer> | undefined;
  /** Set once the job has finished; replies leave in the order their commands came. */
  reply: Buffer | null;
}

/** A connection's read consistency: `session` follows its own writes and reads. */
type ConsistencySetting = string;

/**
 * One client connection. Commands are answered in the order they arrived (each takes a reply
 * slot), but run concurrently where that cannot be observed: consecutive writes go into the log
 * together (they keep their order there), consecutive reads are served together, and a read waits
 * for the writes before it (so it sees them) as a write waits for the reads before it.
 */
class Client {
  readonly id: number;
  name = '';
  libName = '';
  libVersion = '';
  resp3 = false;
  authenticated: boolean;
  ack: Ack;
  consistency: ConsistencySetting = 'session';
  /** The highest index this connection wrote or read: session reads wait for it. */
  sessionIndex = 0;
  lastWriteIndex = 0;
  closing = false;
  private readonly parser: RespParser;
  /** Jobs waiting to start, in order. */
  private readonly queue: Job[] = [];
  /** Jobs started whose replies have not left, in order from `startedHead`. */
  private readonly started: Job[] = [];
  private startedHead = 0;
  private readonly running: Record<JobKind, number> = { read: 0, write: 0, admin: 0, free: 0 };
  private paused = false;
  private corked = false;
  private completing = false;

  constructor(
    readonly socket: Socket,
    private readonly server: RespServer,
    id: number,
  ) {
    this.id = id;
    this.parser = new RespParser(server.context.limits);
    this.authenticated = server.context.security.password === null;
    this.ack = server.context.defaultAck;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('drain', () => this.maybeResume());
  }

  get address(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.parser.push(chunk);
    for (;;) {
      const request = this.parser.next();
      if (request === null) break;
      if (request.kind === 'error') {
        // Redis answers a protocol error and closes this connection only.
        this.enqueue('free', () => resp.error(request.message));
        this.closing = true;
        break;
      }
      this.server.commandsProcessed++;
      this.server.dispatch(this, request.args);
    }
    this.pump();
    if (this.queue.length + this.inFlight() > connectionCommandsMax && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private inFlight(): number {
    return this.running.read + this.running.write + this.running.admin + this.running.free;
  }

  /** Queues a command to run when the ones it must follow have finished. */
  enqueue(kind: JobKind, run: (job: Job) => Buffer | Promise<Buffer> | undefined): void {
    this.queue.push({ kind, run, reply: null });
  }

  private canStart(kind: JobKind): boolean {
    const r = this.running;
    switch (kind) {
      case 'free':
        return true;
      case 'write':
        return r.read === 0 && r.admin === 0;
      case 'read':
        return r.write === 0 && r.admin === 0;
      case 'admin':
        return r.read === 0 && r.write === 0 && r.admin === 0;
    }
  }

  pump(): void {
    while (this.queue.length > 0) {
      const job = this.queue[0] as Job;
      if (!this.canStart(job.kind)) return;
      this.queue.shift();
      this.running[job.kind]++;
      this.started.push(job);
      let result: Buffer | Promise<Buffer> | undefined;
      try {
        result = job.run(job);
      } catch (error) {
        result = this.server.errorReply(error);
      }
      if (result === undefined) continue;
      if (Buffer.isBuffer(result)) this.complete(job, result);
      else result.then((reply) => this.complete(job, reply), (error: unknown) => this.complete(job, this.server.errorReply(error)));
    }
  }

  /**
   * A job's reply: sent once every reply before it has been. Replies finished together (a batch
   * of writes the engine answers in one callback) are sent, and the jobs after them started, after
   * the caller (the engine, mid-step) has returned: in one microtask for all connections (one
   * each cost an async resource and a bound function per write).
   */
  complete(job: Job, reply: Buffer): void {
    if (job.reply !== null) return;
    this.running[job.kind]--;
    job.reply = reply;
    if (this.completing) return;
    this.completing = true;
    this.server.afterComplete(this);
  }

  /** Sends the replies finished since the last call and starts the jobs behind them (see complete). */
  replyAndGoOn(): void {
    this.completing = false;
    this.flush();
    this.pump();
    this.maybeResume();
  }

  private flush(): void {
    const started = this.started;
    const out: Buffer[] = [];
    while (this.startedHead < started.length) {
      const reply = (started[this.startedHead] as Job).reply;
      if (reply === null) break;
      this.startedHead++;
      out.push(reply);
    }
    // Replies to come: commands started and not answered, or queued behind them.
    const more = this.startedHead < started.length || this.queue.length > 0;
    if (this.startedHead === started.length) {
      started.length = 0;
      this.startedHead = 0;
    } else if (this.startedHead >= 1024) {
      started.splice(0, this.startedHead);
      this.startedHead = 0;
    }
    if (out.length === 0 || this.socket.destroyed) return;
    // Replies finished in one callback (a batch of acks and the promise jobs it runs) leave in one
    // write, as soon as it returns (not a turn later: see the transport's writeFrame). While
    // more replies are to come, later ones of this turn join it (the socket is corked until the
    // turn's next tick); a connection with nothing else in flight — a client waiting for each
    // reply — writes at once: corking cost it a tick, a buffered write and their allocations.
    if (more && !this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    if (this.closing && this.queue.length === 0 && this.started.length === 0) this.socket.end();
  }

  private maybeResume(): void {
    if (!this.paused || this.socket.writableNeedDrain) return;
    if (this.queue.length + this.inFlight() > connectionCommandsMax / 2) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The consistency a read on this connection asks for now. */
  readConsistency(setting: ConsistencySetting = this.consistency): Consistency {
    return parseConsistency(setting, this.sessionIndex);
  }
}

/**
 * The Redis-protocol front end of one node: RESP2, RESP3 after HELLO 3, pipelining, Redis's reply
 * shapes and error texts. Writes on a follower are forwarded to the leader (or refused with
 * READONLY); reads are served locally at the connection's consistency (session by default, so
 * a client reads its own writes on any node). Every node answers Sentinel's discovery commands.
 */
export class RespServer {
  readonly context: RespContext;
  commandsProcessed = 0;
  private readonly server: Server;
  private readonly clients = new Set<Client>();
  private readonly scans = new ScanCursors();
  private readonly forwarder: Forwarder;
  private nextClientId = 1;
  private readonly startedAt = Date.now();
  /** Every command name this server knows (dispatch finds them without a string per command). */
  private readonly names: CommandNames;

  constructor(context: RespContext) {
    this.context = context;
    this.forwarder = new Forwarder(context);
    this.names = new CommandNames([...writeCommands.keys(), ...readCommands.keys(), ...this.adminCommands.keys(), 'AUTH', 'HELLO', 'QUIT', 'TANDEM.EXEC', 'TANDEM.READ']);
    const accept = (socket: Socket): void => {
      const client = new Client(socket, this, this.nextClientId++);
      this.clients.add(client);
      socket.on('close', () => this.clients.delete(client));
    };
    const tls = context.security.tls;
    this.server = tls === null ? createServer(accept) : createTlsServer({ key: tls.key, cert: tls.cert }, accept);
  }

  /** Listens on host:port. */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
  }

  /** Connections with replies finished, in the order they finished; their turn is one microtask. */
  private completing: Client[] = [];

  /** `client` has replies to send once the current caller returns (see Client.complete). */
  afterComplete(client: Client): void {
    this.completing.push(client);
    if (this.completing.length === 1) queueMicrotask(this.replyAll);
  }

  private readonly replyAll = (): void => {
    const clients = this.completing;
    // A reply finished meanwhile (a read answered at once) starts the next round.
    this.completing = [];
    for (const client of clients) client.replyAndGoOn();
  };

  /** Closes every client connection (after a leadership change, so Sentinel clients re-ask). */
  disconnectClients(): void {
    for (const client of this.clients) client.socket.destroy();
    this.forwarder.reset();
  }

  async close(): Promise<void> {
    this.disconnectClients();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  topology(): Topology {
    return { ...this.context.topology(), connectedClients: this.clients.size, commandsProcessed: this.commandsProcessed, bulkBytesMax: this.context.limits.bulkBytesMax };
  }

  /** Turns a thrown error into an error reply: Redis's text for bad commands, Tandem's codes otherwise. */
  errorReply(error: unknown): Buffer {
    if (error instanceof RespCommandError) return resp.error(error.message);
    if (error instanceof TandemError) {
      const prefix = error.code === ErrorCode.badRequest || error.code === ErrorCode.tooLarge ? 'ERR' : error.code;
      return resp.error(`${prefix} ${error.message}`);
    }
    return resp.error(`ERR internal error: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** Routes one command of `client` to its handler, in the connection's order. */
  dispatch(client: Client, args: Buffer[]): void {
    const name = this.names.find(args[0] as Buffer) ?? (args[0] as Buffer).toString('latin1').toUpperCase();
    if (!client.authenticated && name !== 'AUTH' && name !== 'HELLO' && name !== 'QUIT') {
      client.enqueue('free', () => resp.error('NOAUTH Authentication required.'));
      return;
    }
    if (name === 'TANDEM.EXEC' || name === 'TANDEM.READ') {
      try {
        if (name === 'TANDEM.EXEC') this.exec(client, args);
        else this.tandemRead(client, args);
      } catch (error) {
        client.enqueue('free', () => this.errorReply(error));
      }
      return;
    }
    const write = writeCommands.get(name);
    if (write !== undefined) {
      this.queueWrite(client, args, write, client.ack, null, (index, body) => body);
      return;
    }
    const read = readCommands.get(name);
    if (read !== undefined) {
      this.queueRead(client, args, read, client.consistency, (_, body) => body);
      return;
    }
    const admin = this.adminCommands.get(name);
    if (admin === undefined) {
      const shown = args
        .slice(1, 4)
        .map((a) => `'${a.toString('latin1').slice(0, 128)}' `)
        .join('');
      client.enqueue('free', () => resp.error(`ERR unknown command '${name.toLowerCase().slice(0, 128)}', with args beginning with: ${shown}`));
      return;
    }
    const [arity, kind, handler] = admin;
    if (!arityOk(arity, args.length)) {
      client.enqueue('free', () => resp.error(respErrors.arity(name).message));
      return;
    }
    client.enqueue(kind, () => handler(client, args));
  }

  /** Checks the arity and parses; a refusal takes the command's reply slot and yields null. */
  private planOrRefuse<P>(client: Client, args: Buffer[], arity: number, parse: (args: Buffer[]) => P): P | null {
    if (!arityOk(arity, args.length)) {
      const name = (args[0] as Buffer).toString('latin1');
      client.enqueue('free', () => resp.error(respErrors.arity(name).message));
      return null;
    }
    try {
      return parse(args);
    } catch (error) {
      client.enqueue('free', () => this.errorReply(error));
      return null;
    }
  }

  private queueWrite(
    client: Client,
    args: Buffer[],
    [arity, parse]: readonly [number, (args: Buffer[]) => WritePlan],
    ack: Ack,
    tag: { clientId: string; seq: number } | null,
    wrap: (index: number, body: Buffer) => Buffer,
  ): void {
    const plan = this.planOrRefuse(client, args, arity, parse);
    if (plan === null) return;
    const command: Command = { clientId: tag?.clientId ?? '', seq: tag?.seq ?? 0, operation: plan.operation };
    try {
      validateCommand(command);
    } catch (error) {
      client.enqueue('free', () => this.errorReply(error));
      return;
    }
    client.enqueue('write', (job) => {
      this.write(command, ack, plan.needsResult, (error, done) => {
        let reply: Buffer;
        try {
          if (done === null) throw error;
          client.sessionIndex = Math.max(client.sessionIndex, done.index);
          client.lastWriteIndex = done.index;
          reply = wrap(done.index, plan.render(done.reply, client.resp3));
        } catch (failure) {
          reply = this.errorReply(failure);
        }
        client.complete(job, reply);
      });
      return undefined;
    });
  }

  private queueRead(
    client: Client,
    args: Buffer[],
    [arity, parse]: readonly [number, (args: Buffer[]) => ReadPlan],
    consistency: ConsistencySetting,
    wrap: (appliedIndex: number, body: Buffer) => Buffer,
  ): void {
    const plan = this.planOrRefuse(client, args, arity, parse);
    if (plan === null) return;
    client.enqueue('read', () => {
      const wanted = client.readConsistency(consistency);
      return new Promise<Buffer>((resolve, reject) => {
        const engine = this.context.engine;
        engine.read(wanted, (result) => {
          this.context.metrics.read(wanted.kind, result.ok ? 'ok' : result.error.code);
          if (!result.ok) {
            reject(result.error);
            return;
          }
          const applied = engine.kv.appliedIndex;
          client.sessionIndex = Math.max(client.sessionIndex, applied);
          try {
            resolve(wrap(applied, plan(engine.kv, client.resp3, this.scans)));
          } catch (error) {
            reject(error);
          }
        });
      });
    });
  }

  /** Proposes on the leader, or forwards to it from a follower; `done` gets the error or the outcome. */
  private write(command: Command, ack: Ack, needsResult: boolean, done: (error: unknown, written: { readonly index: number; readonly reply: Reply | null } | null) => void): void {
    const { engine, metrics } = this.context;
    if (engine.raft.role === 'leader') {
      proposeThen(engine, metrics, encodeCommand(command), ack, needsResult, command, done);
      return;
    }
    if (this.context.followerWrites === 'reject') {
      done(new RespCommandError("READONLY You can't write against a read only replica."), null);
      return;
    }
    this.forwarder.forward(encodeCommand(command), ack, needsResult).then(
      (written) => done(null, written),
      (error: unknown) => done(error, null),
    );
  }

  /** How many followers hold `index`; waits until `wanted` do or `timeoutMs` passes (0: no limit). */
  private async waitForReplicas(index: number, wanted: number, timeoutMs: number, client: Client | null): Promise<number> {
    const { engine } = this.context;
    if (engine.raft.role !== 'leader') {
      if (client === null) throw new TandemError(ErrorCode.notLeader, `node ${this.context.nodeId} is not the leader`);
      return this.forwarder.waitFor(index, wanted, timeoutMs);
    }
    const started = performance.now();
    for (;;) {
      const count = engine.raft.followers().filter((f) => f.match >= index).length;
      if (count >= wanted || (timeoutMs > 0 && performance.now() - started >= timeoutMs)) return count;
      if (client !== null && client.socket.destroyed) return count;
      if (engine.raft.role !== 'leader') throw new TandemError(ErrorCode.leaderChanged, `node ${this.context.nodeId} lost leadership during WAIT`);
      await new Promise((resolve) => setTimeout(resolve, waitPollMs));
    }
  }

  /** Commands that are neither plain reads nor plain writes: name → [arity, ordering, handler]. */
  private readonly adminCommands = new Map<string, readonly [number, JobKind, (client: Client, args: Buffer[]) => Buffer | Promise<Buffer>]>([
    ['PING', [-1, 'free', (_, args) => (args.length > 2 ? resp.error(respErrors.arity('ping').message) : args.length === 2 ? resp.bulk(args[1] as Buffer) : resp.simple('PONG'))]],
    ['ECHO', [2, 'free', (_, args) => resp.bulk(args[1] as Buffer)]],
    ['QUIT', [-1, 'free', (client) => ((client.closing = true), resp.simple('OK'))]],
    ['SELECT', [2, 'free', (_, args) => (text(args[1]) === '0' ? resp.simple('OK') : resp.error('ERR DB index is out of range'))]],
    ['AUTH', [-2, 'free', (client, args) => this.auth(client, args.slice(1))]],
    ['HELLO', [-1, 'free', (client, args) => this.hello(client, args)]],
    ['CLIENT', [-2, 'free', (client, args) => this.clientCommand(client, args)]],
    ['COMMAND', [-1, 'free', (client, args) => this.commandCommand(client, args)]],
    ['INFO', [-1, 'free', (_, args) => resp.bulk(infoText(this.topology(), args.slice(1).map((a) => text(a).toLowerCase())))]],
    ['ROLE', [1, 'free', () => roleReply(this.topology())]],
    ['SENTINEL', [-2, 'free', (client, args) => sentinelReply(this.topology(), args.slice(1).map(text), client.resp3)]],
    ['CONFIG', [-2, 'free', (client, args) => this.configCommand(client, args)]],
    ['WAIT', [3, 'admin', (client, args) => this.wait(client, args)]],
    ['READONLY', [1, 'free', () => resp.simple('OK')]],
    ['READWRITE', [1, 'free', () => resp.simple('OK')]],
    ['TANDEM.OPTIONS', [-1, 'admin', (client, args) => this.options(client, args)]],
    ['TANDEM.FORWARD', [4, 'write', (_, args) => this.acceptForward(args)]],
    ['TANDEM.WAITFOR', [4, 'free', (_, args) => this.acceptWaitFor(args)]],
  ]);

  private auth(client: Client, args: Buffer[]): Buffer {
    const password = this.context.security.password;
    if (password === null) return resp.error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
    const [user, given] = args.length === 1 ? ['default', text(args[0])] : [text(args[0]), text(args[1])];
    if (args.length > 2) return resp.error(respErrors.syntax().message);
    if (user !== 'default' || !sameSecret(given, password)) return resp.error('WRONGPASS invalid username-password pair or user is disabled.');
    client.authenticated = true;
    return resp.simple('OK');
  }

  private hello(client: Client, args: Buffer[]): Buffer {
    let protocol: 2 | 3 = client.resp3 ? 3 : 2;
    if (args.length >= 2) {
      const asked = text(args[1]);
      if (asked !== '2' && asked !== '3') return resp.error('NOPROTO unsupported protocol version');
      protocol = asked === '3' ? 3 : 2;
    }
    for (let i = 2; i < args.length; i++) {
      const option = text(args[i]).toUpperCase();
      if (option === 'AUTH' && i + 2 < args.length) {
        const answer = this.auth(client, [args[i + 1] as Buffer, args[i + 2] as Buffer]);
        if (answer[0] === 0x2d /* '-' */) return answer;
        i += 2;
      } else if (option === 'SETNAME' && i + 1 < args.length) {
        client.name = text(args[++i]);
      } else return resp.error(`ERR Syntax error in HELLO option '${text(args[i])}'`);
    }
    if (!client.authenticated) {
      return resp.error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time');
    }
    client.resp3 = protocol === 3;
    return helloReply(this.topology(), client.id, protocol);
  }

  private clientLine(client: Client): string {
    return `id=${client.id} addr=${client.address} name=${client.name} db=0 resp=${client.resp3 ? 3 : 2} lib-name=${client.libName} lib-ver=${client.libVersion} tandem-ack=${String(client.ack)} tandem-consistency=${client.consistency}`;
  }

  private clientCommand(client: Client, args: Buffer[]): Buffer {
    const sub = text(args[1]).toUpperCase();
    switch (sub) {
      case 'SETNAME': {
        const name = text(args[2] ?? Buffer.alloc(0));
        if (args.length !== 3) return resp.error(respErrors.arity('client|setname').message);
        if (/[\s\x00-\x1f\x7f]/.test(name)) return resp.error('ERR Client names cannot contain spaces, newlines or special characters.');
        client.name = name;
        return resp.simple('OK');
      }
      case 'GETNAME':
        return client.name === '' ? resp.nil(client.resp3) : resp.bulk(client.name);
      case 'ID':
        return resp.integer(client.id);
      case 'SETINFO': {
        if (args.length !== 4) return resp.error(respErrors.arity('client|setinfo').message);
        const attribute = text(args[2]).toUpperCase();
        if (attribute === 'LIB-NAME') client.libName = text(args[3]);
        else if (attribute === 'LIB-VER') client.libVersion = text(args[3]);
        else return resp.error(`ERR Unrecognized option '${text(args[2])}'`);
        return resp.simple('OK');
      }
      case 'INFO':
        return resp.bulk(`${this.clientLine(client)}\n`);
      case 'LIST':
        return resp.bulk([...this.clients].map((c) => `${this.clientLine(c)}\n`).join(''));
      case 'NO-EVICT':
      case 'NO-TOUCH':
        return resp.simple('OK');
      default:
        return resp.error(`ERR unknown subcommand '${text(args[1])}'. Try CLIENT HELP.`);
    }
  }

  private commandNames(): string[] {
    return [...writeCommands.keys(), ...readCommands.keys(), ...this.adminCommands.keys()];
  }

  private commandInfoOf(name: string): Buffer | null {
    const write = writeCommands.get(name);
    if (write !== undefined) return commandInfo(name, write[0], ['write'], name.startsWith('FLUSH') ? 0 : 1, name === 'MSET' || name === 'DEL' || name === 'UNLINK' ? -1 : name.startsWith('FLUSH') ? 0 : 1);
    const read = readCommands.get(name);
    if (read !== undefined) return commandInfo(name, read[0], ['readonly'], ['DBSIZE', 'SCAN', 'KEYS'].includes(name) ? 0 : 1, name === 'MGET' || name === 'EXISTS' ? -1 : ['DBSIZE', 'SCAN', 'KEYS'].includes(name) ? 0 : 1);
    const admin = this.adminCommands.get(name);
    if (admin !== undefined) return commandInfo(name, admin[0], ['fast'], 0, 0);
    return null;
  }

  private commandCommand(client: Client, args: Buffer[]): Buffer {
    const sub = args.length < 2 ? '' : text(args[1]).toUpperCase();
    const asked = args.slice(2).map((a) => text(a).toUpperCase());
    switch (sub) {
      case '':
        return resp.array(this.commandNames().map((name) => this.commandInfoOf(name) as Buffer));
      case 'COUNT':
        return resp.integer(this.commandNames().length);
      case 'LIST':
        return resp.array(this.commandNames().map((name) => resp.bulk(name.toLowerCase())));
      case 'INFO':
        return resp.array((asked.length === 0 ? this.commandNames() : asked).map((name) => this.commandInfoOf(name) ?? resp.nil(client.resp3)));
      case 'DOCS':
        return commandDocs(asked.length === 0 ? this.commandNames() : asked.filter((name) => this.commandInfoOf(name) !== null), client.resp3);
      default:
        return resp.error(`ERR unknown subcommand '${text(args[1])}'. Try COMMAND HELP.`);
    }
  }

  private configCommand(client: Client, args: Buffer[]): Buffer {
    const sub = text(args[1]).toUpperCase();
    if (sub === 'GET' && args.length >= 3) {
      const replies = args.slice(2).map((pattern) => configGetReply(this.topology(), text(pattern), client.resp3, globMatch));
      return replies.length === 1 ? (replies[0] as Buffer) : resp.error('ERR CONFIG GET takes one pattern in Tandem');
    }
    if (sub === 'RESETSTAT') return resp.simple('OK');
    if (sub === 'SET') return resp.error('ERR CONFIG SET is not supported by Tandem; settings are flags of tandem start');
    return resp.error(`ERR unknown subcommand or wrong number of arguments for '${text(args[1])}'. Try CONFIG HELP.`);
  }

  /** WAIT numreplicas timeout: how many followers have durably stored this connection's last write. */
  private async wait(client: Client, args: Buffer[]): Promise<Buffer> {
    const wanted = integerArgument(args[1]);
    const timeoutMs = integerArgument(args[2]);
    if (wanted < 0n || timeoutMs < 0n) throw new RespCommandError('ERR timeout is negative');
    return resp.integer(await this.waitForReplicas(client.lastWriteIndex, Number(wanted), Number(timeoutMs), client));
  }

  /** TANDEM.OPTIONS [ACK level] [CONSISTENCY c]: this connection's defaults; answers the settings now in force. */
  private options(client: Client, args: Buffer[]): Buffer {
    let ack = client.ack;
    let consistency = client.consistency;
    for (let i = 1; i < args.length; i += 2) {
      const option = text(args[i]).toUpperCase();
      const value = args[i + 1];
      if (value === undefined) throw respErrors.syntax();
      if (option === 'ACK') ack = parseAck(text(value), client.ack);
      else if (option === 'CONSISTENCY') {
        consistency = text(value);
        client.readConsistency(consistency);
      } else throw new RespCommandError(`ERR unknown TANDEM.OPTIONS option '${text(args[i])}' (ACK, CONSISTENCY)`);
    }
    client.ack = ack;
    client.consistency = consistency;
    return resp.map(
      [
        [resp.bulk('ack'), resp.bulk(String(client.ack))],
        [resp.bulk('consistency'), resp.bulk(client.consistency)],
        [resp.bulk('session-index'), resp.integer(client.sessionIndex)],
        [resp.bulk('node'), resp.bulk(this.context.nodeId)],
      ],
      client.resp3,
    );
  }

  /**
   * TANDEM.EXEC clientId seq ack COMMAND …: a write tagged for exactly-once retries, answered as
   * [index, reply]. A retry with the same (clientId, seq) gets the first reply and is not applied twice.
   */
  private exec(client: Client, args: Buffer[]): void {
    if (args.length < 5) throw respErrors.arity('tandem.exec');
    const clientId = text(args[1]);
    const seq = integerArgument(args[2]);
    if (clientId.length > 128 || seq < 1n || seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new RespCommandError('ERR TANDEM.EXEC needs a client id of up to 128 bytes and a sequence number from 1');
    const ack = parseAck(text(args[3]), client.ack);
    const inner = args.slice(4);
    const write = writeCommands.get(text(inner[0]).toUpperCase());
    if (write === undefined) throw new RespCommandError(`ERR TANDEM.EXEC runs write commands only, not '${text(inner[0])}'`);
    this.queueWrite(client, inner, write, ack, { clientId, seq: Number(seq) }, (index, body) => Buffer.concat([Buffer.from(`*2\r\n:${index}\r\n`), body]));
  }

  /** TANDEM.READ consistency COMMAND …: a read at the given consistency, answered as [appliedIndex, reply]. */
  private tandemRead(client: Client, args: Buffer[]): void {
    if (args.length < 3) throw respErrors.arity('tandem.read');
    const consistency = text(args[1]);
    client.readConsistency(consistency);
    const inner = args.slice(2);
    const read = readCommands.get(text(inner[0]).toUpperCase());
    if (read === undefined) throw new RespCommandError(`ERR TANDEM.READ runs read commands only, not '${text(inner[0])}'`);
    this.queueRead(client, inner, read, consistency, (applied, body) => Buffer.concat([Buffer.from(`*2\r\n:${applied}\r\n`), body]));
  }

  /** TANDEM.FORWARD ack needsResult command-bytes: a follower's write, answered as [index, term, reply-bytes|nil]. */
  private async acceptForward(args: Buffer[]): Promise<Buffer> {
    const { engine } = this.context;
    if (engine.raft.role !== 'leader') throw new TandemError(ErrorCode.notLeader, `node ${this.context.nodeId} is not the leader (forwarded once already)`, { leader: engine.raft.leader });
    const ack = parseAck(text(args[1]), this.context.defaultAck);
    const needsResult = text(args[2]) === '1';
    // A copy: the entry's bytes stay in the log cache, and must not keep the whole read alive.
    const data = Buffer.from(args[3] as Buffer);
    decodeCommand(data);
    const result = await proposeOnLeader(engine, this.context.metrics, data, ack, needsResult);
    return resp.array([resp.integer(result.index), resp.integer(result.term), result.reply === null ? resp.nil(false) : resp.bulk(encodeReply(result.reply))]);
  }

  /** TANDEM.WAITFOR index numreplicas timeout: WAIT on the leader for a follower's client. */
  private async acceptWaitFor(args: Buffer[]): Promise<Buffer> {
    const [index, wanted, timeoutMs] = [integerArgument(args[1]), integerArgument(args[2]), integerArgument(args[3])].map(Number) as [number, number, number];
    return resp.integer(await this.waitForReplicas(index, wanted, timeoutMs, null));
  }
}

function text(arg: Buffer | undefined): string {
  return (arg ?? Buffer.alloc(0)).toString('latin1');
}

function arityOk(arity: number, count: number): boolean {
  return arity >= 0 ? count === arity : count >= -arity;
}

/**
 * Sends a follower's writes to the leader over one pipelined RESP connection (so they reach the
 * log in the order the follower received them) and relays the answers.
 */
class Forwarder {
  private connection: Promise<RespConnection> | null = null;
  private connectionAddress: string | null = null;

  constructor(private readonly context: RespContext) {}

  reset(): void {
    void this.connection?.then((c) => c.close(), () => undefined);
    this.connection = null;
    this.connectionAddress = null;
  }

  private async leader(): Promise<RespConnection> {
    const address = this.context.leaderRespAddress();
    if (address === null) throw new TandemError(ErrorCode.notLeader, `node ${this.context.nodeId} knows no leader right now; retry shortly`);
    if (this.connection !== null && this.connectionAddress === address) {
      const existing = await this.connection.catch(() => null);
      if (existing?.open === true) return existing;
    }
    this.reset();
    const [host, port] = splitAddress(address);
    this.connectionAddress = address;
    const { password, tls } = this.context.security;
    const opening = RespConnection.open(host, port, this.context.requestTimeoutMs, tls).then(async (connection) => {
      if (password !== null) {
        const answer = await connection.call(['AUTH', password]);
        if (answer instanceof RespErrorReply) throw new TandemError(ErrorCode.unauthorized, `the leader at ${address} refused this node's password: ${answer.message}`);
      }
      return connection;
    });
    this.connection = opening;
    opening.catch(() => {
      if (this.connection === opening) this.connection = null;
    });
    return opening;
  }

  /** Calls the leader; gives up after `timeoutMs` (null: no limit but the connection's life). */
  private async call(args: (string | Uint8Array)[], timeoutMs: number | null): Promise<RespValue> {
    const connection = await this.leader();
    const pending = connection.call(args);
    const answer = timeoutMs === null ? await pending : await within(pending, timeoutMs);
    if (answer === timedOut) throw new TandemError(ErrorCode.timeout, `the leader at ${connection.address} did not answer within ${timeoutMs} ms`);
    if (answer instanceof RespErrorReply) throw new RespCommandError(answer.message);
    return answer;
  }

  async forward(command: Uint8Array, ack: Ack, needsResult: boolean): Promise<{ index: number; reply: Reply | null }> {
    // The leader times the write out itself; this margin only covers a leader that went silent.
    const answer = await this.call(['TANDEM.FORWARD', String(ack), needsResult ? '1' : '0', command], this.context.requestTimeoutMs + forwardMarginMs);
    if (!Array.isArray(answer) || typeof answer[0] !== 'bigint') throw new TandemError(ErrorCode.unavailable, 'the leader answered a forwarded write with an unexpected reply');
    const replyBytes = answer[2];
    return { index: Number(answer[0]), reply: Buffer.isBuffer(replyBytes) ? decodeReply(replyBytes) : null };
  }

  async waitFor(index: number, wanted: number, timeoutMs: number): Promise<number> {
    const answer = await this.call(['TANDEM.WAITFOR', String(index), String(wanted), String(timeoutMs)], timeoutMs === 0 ? null : timeoutMs + forwardMarginMs);
    return Number(answer as bigint);
  }
}
