import { createServer, connect, type Server, type Socket } from 'node:net';
import { decodeMessage, encodeMessage, peerFrameBytesMax } from '../codec/messages.js';
import type { Message, NodeId } from '../core/types.js';
import type { Transport } from '../engine/interfaces.js';
import { fromUtf8, utf8 } from '../shared/bytes.js';

/** Where a peer listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Settings of the peer transport. */
export interface TcpTransportOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** This node's HTTP address, told to peers in the handshake (for forwarding writes). */
  readonly httpAddress: string;
  readonly onMessage: (message: Message) => void;
  readonly log: (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void;
  readonly frameBytesMax?: number;
}

const frameKinds = { hello: 1, message: 2 } as const;
const reconnectMsMin = 50;
const reconnectMsMax = 1000;

interface Hello {
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly httpAddress: string;
}

/**
 * TCP between nodes: one connection per pair (the node with the smaller id dials, with backoff),
 * length-prefixed frames checked against a maximum before any buffer is allocated, and a
 * handshake that carries the cluster id and both node ids. A node of another cluster or an unknown
 * id is refused with a logged reason. Messages to a peer that is not connected are dropped: the
 * protocol resends.
 */
export class TcpTransport implements Transport {
  private readonly options: TcpTransportOptions;
  private readonly frameBytesMax: number;
  private readonly sockets = new Map<NodeId, Socket>();
  /** HTTP addresses peers told us in their handshake. */
  readonly httpAddresses = new Map<NodeId, string>();
  private server: Server | null = null;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly corked = new Set<Socket>();
  /** Bytes and frames sent, for metrics. */
  readonly stats = { bytesSent: 0, framesSent: 0, refused: 0 };

  constructor(options: TcpTransportOptions) {
    this.options = options;
    this.frameBytesMax = options.frameBytesMax ?? peerFrameBytesMax;
  }

  /** Listens on this node's own peer address and dials the peers it is responsible for. */
  async start(): Promise<void> {
    const self = this.options.peers.get(this.options.id);
    if (self === undefined) throw new Error(`--peers has no address for this node (${this.options.id})`);
    this.server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(self.port, self.host, () => resolve());
    });
    for (const id of this.options.peers.keys()) if (id !== this.options.id && this.options.id < id) this.dial(id, reconnectMsMin);
  }

  send(message: Message): void {
    const socket = this.sockets.get(message.to);
    if (socket === undefined || socket.destroyed) return;
    const payload = encodeMessage(message);
    this.writeFrame(socket, frameKinds.message, payload);
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets.values()) socket.destroy();
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())));
  }

  private writeFrame(socket: Socket, kind: number, payload: Uint8Array): void {
    const header = Buffer.allocUnsafe(5);
    header.writeUInt32LE(payload.length + 1, 0);
    header.writeUInt8(kind, 4);
    // Frames written in one turn of the event loop leave in one batch.
    if (!this.corked.has(socket)) {
      socket.cork();
      this.corked.add(socket);
      setImmediate(() => {
        this.corked.delete(socket);
        socket.uncork();
      });
    }
    socket.write(header);
    socket.write(payload);
    this.stats.bytesSent += payload.length + 5;
    this.stats.framesSent++;
  }

  private dial(id: NodeId, backoffMs: number): void {
    if (this.closed) return;
    const address = this.options.peers.get(id) as PeerAddress;
    const socket = connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    let established = false;
    socket.once('connect', () => {
      this.writeFrame(socket, frameKinds.hello, this.hello(id));
    });
    this.readFrames(socket, (kind, payload) => {
      if (kind === frameKinds.hello && !established) {
        const hello = this.checkHello(payload, id);
        if (hello === null) {
          socket.destroy();
          return;
        }
        established = true;
        this.register(id, socket);
        this.options.log('info', 'peer connected', { peer: id, direction: 'out' });
        return;
      }
      if (kind === frameKinds.message && established) this.deliver(payload, id, socket);
    });
    socket.once('close', () => {
      if (this.sockets.get(id) === socket) this.sockets.delete(id);
      if (this.closed) return;
      const next = established ? reconnectMsMin : Math.min(reconnectMsMax, backoffMs * 2);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.dial(id, next);
      }, next);
      this.timers.add(timer);
    });
    socket.on('error', () => {});
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    let peer: NodeId | null = null;
    this.readFrames(socket, (kind, payload) => {
      if (peer === null) {
        if (kind !== frameKinds.hello) {
          this.refuse(socket, 'the first frame was not a handshake', {});
          return;
        }
        const hello = this.checkHello(payload, null);
        if (hello === null) {
          socket.destroy();
          return;
        }
        peer = hello.from;
        this.writeFrame(socket, frameKinds.hello, this.hello(peer));
        this.register(peer, socket);
        this.options.log('info', 'peer connected', { peer, direction: 'in' });
        return;
      }
      if (kind === frameKinds.message) this.deliver(payload, peer, socket);
    });
    socket.once('close', () => {
      if (peer !== null && this.sockets.get(peer) === socket) this.sockets.delete(peer);
    });
    socket.on('error', () => {});
  }

  private register(peer: NodeId, socket: Socket): void {
    const old = this.sockets.get(peer);
    if (old !== undefined && old !== socket) old.destroy();
    this.sockets.set(peer, socket);
  }

  private hello(to: NodeId): Uint8Array {
    const hello: Hello = { clusterId: this.options.clusterId, from: this.options.id, to, httpAddress: this.options.httpAddress };
    return utf8(JSON.stringify(hello));
  }

  /** Validates a handshake; logs the reason and returns null when the peer must be refused. */
  private checkHello(payload: Uint8Array, expected: NodeId | null): Hello | null {
    let hello: Partial<Hello>;
    try {
      hello = JSON.parse(fromUtf8(payload)) as Partial<Hello>;
    } catch {
      this.refusedLog('the handshake is not valid JSON', {});
      return null;
    }
    if (hello.clusterId !== this.options.clusterId) {
      this.refusedLog('it belongs to another cluster', { theirCluster: hello.clusterId, ourCluster: this.options.clusterId, peer: hello.from });
      return null;
    }
    if (typeof hello.from !== 'string' || !this.options.peers.has(hello.from) || hello.from === this.options.id) {
      this.refusedLog('its node id is not one of our peers', { peer: hello.from });
      return null;
    }
    if (expected !== null && hello.from !== expected) {
      this.refusedLog('it answered with another node id than the one dialled', { expected, peer: hello.from });
      return null;
    }
    if (hello.to !== this.options.id) {
      this.refusedLog('it thinks it is talking to another node id', { peer: hello.from, to: hello.to });
      return null;
    }
    if (typeof hello.httpAddress === 'string') this.httpAddresses.set(hello.from, hello.httpAddress);
    return hello as Hello;
  }

  private refuse(socket: Socket, reason: string, fields: Record<string, unknown>): void {
    this.refusedLog(reason, fields);
    socket.destroy();
  }

  private refusedLog(reason: string, fields: Record<string, unknown>): void {
    this.stats.refused++;
    this.options.log('warn', 'peer connection refused', { reason, ...fields });
  }

  private deliver(payload: Uint8Array, peer: NodeId, socket: Socket): void {
    let message: Message;
    try {
      message = decodeMessage(payload);
    } catch (error) {
      this.refuse(socket, `malformed frame: ${(error as Error).message}`, { peer });
      return;
    }
    if (message.from !== peer || message.to !== this.options.id) {
      this.refuse(socket, 'a message names another sender or receiver than the connection', { peer, from: message.from, to: message.to });
      return;
    }
    this.options.onMessage(message);
  }

  /** Splits the byte stream into frames, refusing a length over the maximum before allocating. */
  private readFrames(socket: Socket, onFrame: (kind: number, payload: Uint8Array) => void): void {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    socket.on('data', (chunk: Buffer) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= 4 && !socket.destroyed) {
        if ((pending[0] as Buffer).length < 4) pending = [Buffer.concat(pending)];
        const frameBytes = (pending[0] as Buffer).readUInt32LE(0);
        if (frameBytes < 1 || frameBytes > this.frameBytesMax) {
          this.refuse(socket, `frame length ${frameBytes} is outside 1..${this.frameBytesMax}`, {});
          return;
        }
        // Wait for the whole frame before joining the chunks, so each byte is copied once.
        if (pendingBytes < 4 + frameBytes) return;
        const head = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
        const kind = head.readUInt8(4);
        const payload = head.subarray(5, 4 + frameBytes);
        const rest = head.subarray(4 + frameBytes);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
        onFrame(kind, payload);
      }
    });
  }
}
