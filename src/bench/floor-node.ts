/**
 * One process of the floor that `npm run bench:cpu -- --floor` and `npm run bench:redis -- --floor`
 * measure Tandem against: the least a majority write costs in Node.js on this machine, with the
 * log written off the event loop as Tandem writes it (a variant writing it on the event loop did
 * worse: README, performance item 33). It has the shape of Tandem's write path and nothing else. The leader takes RESP SETs, makes the commands that arrive in one turn of the
 * event loop one entry, sends it to two followers and appends it to its log (a positioned write
 * on a file opened O_DSYNC, on libuv's threadpool); a follower appends each entry the same way
 * and acknowledges it; a command is answered +OK once the leader's append and one follower's have
 * finished. The state is a Map of key to value.
 *
 * Left out, so that what remains is the system calls, wake-ups and buffers any design pays: terms,
 * elections, checksums, a state machine on disk, the state digest, sessions, reads, recovery. Not
 * a store: anything but a well-formed SET closes the connection.
 *
 * The leader also takes writes over HTTP, as Tandem's API does (`PUT /v1/kv/<key>` with the value
 * as the body, answered 200 on the same condition; anything else is answered 400), for the
 * comparison with etcd (`npm run bench:etcd -- --floor`). They become SETs of the same entries.
 *
 *   node floor-node.js leader <resp port> <http port> <dir> <follower port> <follower port>
 *   node floor-node.js follower <port> <dir>
 *
 * The leader answers each line on its stdin with the number of SETs it has answered.
 */
import { closeSync, constants, openSync, write } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

/** A client's unparsed bytes may not grow past this (a SET of the benchmark's is 144 bytes). */
const pendingBytesMax = 1024 * 1024;
/** An entry's frame between leader and follower: u32 length, u32 entry id, then the commands. */
const frameHeaderBytes = 8;
const frameBytesMax = 64 * 1024 * 1024;
/** An HTTP write's value may not be larger than this. */
const valueBytesMax = 1024 * 1024;
const ok = Buffer.from('+OK\r\n');

/** An append-only log: one file opened O_DSYNC, each append one positioned write on the threadpool. */
class Log {
  private readonly fd: number;
  private end = 0;

  constructor(path: string) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
  }

  append(bytes: Buffer, done: () => void): void {
    const at = this.end;
    this.end += bytes.length;
    write(this.fd, bytes, 0, bytes.length, at, (error) => {
      if (error !== null) throw error;
      done();
    });
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Where the RESP command that starts at `at` ends, or -1 when it is not complete yet. Throws on
 * anything but an array of bulk strings.
 */
function commandEnd(bytes: Buffer, at: number): number {
  if (at >= bytes.length) return -1;
  if (bytes[at] !== 0x2a) throw new Error(`expected '*' at byte ${at}`);
  let line = bytes.indexOf(13, at);
  if (line < 0) return -1;
  const count = Number(bytes.toString('latin1', at + 1, line));
  let next = line + 2;
  for (let k = 0; k < count; k++) {
    if (next >= bytes.length) return -1;
    if (bytes[next] !== 0x24) throw new Error(`expected '$' at byte ${next}`);
    line = bytes.indexOf(13, next);
    if (line < 0) return -1;
    next = line + 2 + Number(bytes.toString('latin1', next + 1, line)) + 2;
  }
  return next > bytes.length ? -1 : next;
}

/** Whether the complete command at `at` is a SET of a key and a value (the only command the floor takes). */
function isSet(bytes: Buffer, at: number): boolean {
  return bytes.toString('latin1', at, at + 11).toUpperCase() === '*3\r\n$3\r\nSET';
}

/** Applies an entry's SETs to the state (each command's key and value are views into the entry). */
function applyEntry(entry: Buffer, state: Map<string, Buffer>): void {
  let at = 0;
  while (at < entry.length) {
    const end = commandEnd(entry, at);
    const args: Buffer[] = [];
    let next = entry.indexOf(13, at) + 2;
    while (next < end) {
      const line = entry.indexOf(13, next);
      const length = Number(entry.toString('latin1', next + 1, line));
      args.push(entry.subarray(line + 2, line + 2 + length));
      next = line + 2 + length + 2;
    }
    state.set((args[1] as Buffer).toString('latin1'), args[2] as Buffer);
    at = end;
  }
}

/** Who waits for an entry: RESP connections with how many of their SETs it holds, and HTTP writes. */
interface Waiting {
  readonly sockets: Map<net.Socket, number>;
  readonly responses: ServerResponse[];
}

/** An entry between its proposal and its answer: whether the leader's append is done, followers' acks, and who waits. */
interface Entry {
  appended: boolean;
  acks: number;
  readonly waiting: Waiting;
}

/** A SET of `key` to `value` as the RESP command the entries hold. */
function encodeSet(key: string, value: Buffer): Buffer {
  const keyBytes = Buffer.from(key, 'latin1');
  return Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$${keyBytes.length}\r\n`, 'latin1'), keyBytes, Buffer.from(`\r\n$${value.length}\r\n`, 'latin1'), value, Buffer.from('\r\n', 'latin1')]);
}

/** Reads an HTTP write's body, at most valueBytesMax bytes (null beyond that). */
function readBody(request: IncomingMessage, done: (body: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  request.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= valueBytesMax) chunks.push(chunk);
  });
  request.on('end', () => done(bytes > valueBytesMax ? null : Buffer.concat(chunks)));
}

/**
 * Listens on the loopback port. Each connection's bytes, after what the last call left of the ones
 * before them, go to `consume`, which returns what it left (null: nothing).
 */
function serve(port: number, consume: (socket: net.Socket, bytes: Buffer) => Buffer | null): void {
  net
    .createServer((socket) => {
      socket.setNoDelay(true);
      let pending: Buffer | null = null;
      socket.on('data', (chunk: Buffer) => {
        pending = consume(socket, pending === null ? chunk : Buffer.concat([pending, chunk]));
      });
      socket.on('error', () => socket.destroy());
    })
    .listen(port, '127.0.0.1');
}

function follower(port: number, dir: string): void {
  const log = new Log(join(dir, `floor-follower-${port}.log`));
  const state = new Map<string, Buffer>();
  serve(port, (socket, received) => {
    let bytes = received;
    while (bytes.length >= frameHeaderBytes) {
      const length = bytes.readUInt32LE(0);
      if (length > frameBytesMax) throw new Error(`frame of ${length} bytes is over ${frameBytesMax}`);
      if (bytes.length < frameHeaderBytes + length) break;
      const id = bytes.readUInt32LE(4);
      const entry = bytes.subarray(frameHeaderBytes, frameHeaderBytes + length);
      bytes = bytes.subarray(frameHeaderBytes + length);
      applyEntry(entry, state);
      log.append(entry, () => {
        const ack = Buffer.allocUnsafe(4);
        ack.writeUInt32LE(id);
        socket.write(ack);
      });
    }
    return bytes.length === 0 ? null : bytes;
  });
  process.on('SIGTERM', () => {
    log.close();
    process.exit(0);
  });
}

/** Takes RESP SETs on `port` into this turn's entry (`gather`); a connection sending anything else is closed. */
function respFront(port: number, gather: (command: Buffer) => Waiting): void {
  serve(port, (socket, bytes) => {
    let at = 0;
    try {
      for (let end = commandEnd(bytes, at); end >= 0; end = commandEnd(bytes, at)) {
        if (!isSet(bytes, at)) throw new Error('the floor takes SET key value only');
        const { sockets } = gather(bytes.subarray(at, end));
        sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
        at = end;
      }
    } catch {
      socket.destroy();
      return null;
    }
    const left = at === bytes.length ? null : bytes.subarray(at);
    if (left !== null && left.length > pendingBytesMax) socket.destroy();
    return left;
  });
}

/** Takes `PUT /v1/kv/<key>` on `port` into this turn's entry as a SET; anything else is answered 400, a value too large 413. */
function httpFront(port: number, gather: (command: Buffer) => Waiting): void {
  createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0] as string;
    if (request.method !== 'PUT' || !path.startsWith('/v1/kv/') || path.length === '/v1/kv/'.length) {
      request.resume();
      response.writeHead(400).end('the floor takes PUT /v1/kv/<key> only\n');
      return;
    }
    readBody(request, (body) => {
      if (body === null) {
        response.writeHead(413).end(`values are at most ${valueBytesMax} bytes\n`);
        return;
      }
      gather(encodeSet(decodeURIComponent(path.slice('/v1/kv/'.length)), body)).responses.push(response);
    });
  }).listen(port, '127.0.0.1');
}

/** Connects to each follower; `acked` hears each entry id a follower acknowledges. */
function followerLinks(ports: readonly number[], acked: (id: number) => void): net.Socket[] {
  return ports.map((port) => {
    const link = net.connect(port, '127.0.0.1');
    link.setNoDelay(true);
    let pending: Buffer | null = null;
    link.on('data', (chunk: Buffer) => {
      let bytes = pending === null ? chunk : Buffer.concat([pending, chunk]);
      for (; bytes.length >= 4; bytes = bytes.subarray(4)) acked(bytes.readUInt32LE(0));
      pending = bytes.length === 0 ? null : bytes;
    });
    return link;
  });
}

function leader(port: number, httpPort: number, dir: string, followerPorts: readonly number[]): void {
  const log = new Log(join(dir, `floor-leader-${port}.log`));
  const state = new Map<string, Buffer>();
  const entries = new Map<number, Entry>();
  let nextId = 1;
  let answered = 0;
  let forming: { readonly commands: Buffer[]; readonly waiting: Waiting } | null = null;

  const finish = (id: number, entry: Entry): void => {
    if (!entry.appended || entry.acks < 1) return;
    entries.delete(id);
    for (const [socket, count] of entry.waiting.sockets) {
      socket.write(count === 1 ? ok : Buffer.concat(Array.from({ length: count }, () => ok)));
      answered += count;
    }
    for (const response of entry.waiting.responses) response.writeHead(200).end();
    answered += entry.waiting.responses.length;
  };
  const links = followerLinks(followerPorts, (id) => {
    const entry = entries.get(id);
    if (entry === undefined) return;
    entry.acks++;
    finish(id, entry);
  });
  const propose = (): void => {
    if (forming === null) return;
    const { commands, waiting } = forming;
    forming = null;
    const id = nextId++;
    const bytes = Buffer.concat(commands);
    const entry: Entry = { appended: false, acks: 0, waiting };
    entries.set(id, entry);
    applyEntry(bytes, state);
    const header = Buffer.allocUnsafe(frameHeaderBytes);
    header.writeUInt32LE(bytes.length, 0);
    header.writeUInt32LE(id, 4);
    for (const link of links) {
      link.cork();
      link.write(header);
      link.write(bytes);
      link.uncork();
    }
    log.append(bytes, () => {
      entry.appended = true;
      finish(id, entry);
    });
  };
  /** Adds a command to this turn's entry (started, and proposed at the end of the turn, by the first). */
  const gather = (command: Buffer): Waiting => {
    if (forming === null) {
      forming = { commands: [], waiting: { sockets: new Map(), responses: [] } };
      setImmediate(propose);
    }
    forming.commands.push(command);
    return forming.waiting;
  };
  respFront(port, gather);
  httpFront(httpPort, gather);
  process.stdin.on('data', () => process.stdout.write(`${answered}\n`));
  process.on('SIGTERM', () => {
    log.close();
    process.exit(0);
  });
}

function main(argv: readonly string[]): void {
  const [role, port, ...rest] = argv;
  if (role === 'follower' && port !== undefined && rest[0] !== undefined) follower(Number(port), rest[0]);
  else if (role === 'leader' && port !== undefined && rest.length >= 3) leader(Number(port), Number(rest[0]), rest[1] as string, rest.slice(2).map(Number));
  else {
    process.stderr.write('usage: floor-node.js leader <resp port> <http port> <dir> <follower port>... | follower <port> <dir>\n');
    process.exit(2);
  }
}

main(process.argv.slice(2));
