import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { crc32c } from '../codec/crc32c.js';
import { decodeMessage, encodeMessageParts, peerFrameBytesMax } from '../codec/messages.js';
import { chunkHeaderBytes, SnapshotAssembler, snapshotStagedBytesMax } from './snapshot-assembler.js';
import type { Message, NodeId, SnapshotMessage } from '../core/types.js';
import type { SnapshotReader, Transport } from '../engine/interfaces.js';
import { memorySnapshotReader, readWhole } from '../engine/snapshot-reader.js';
import { fromUtf8, utf8 } from '../shared/bytes.js';
import { newNonce, peerProof, ProofChecker, type Security, type TlsMaterial } from '../shared/security.js';

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
  /** This node's RESP address ("host:port"), or '' without one; told to peers for Sentinel answers and forwarding. */
  readonly respAddress?: string;
  readonly onMessage: (message: Message) => void;
  readonly log: (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;
  /** Called as snapshot chunks arrive (bytes so far, total), for progress in logs and status. */
  readonly onSnapshotProgress?: (from: NodeId, received: number, total: number) => void;
  /** Called as the chunks of a snapshot being sent leave for the network (bytes so far, total). */
  readonly onSnapshotSendProgress?: (to: NodeId, sent: number, total: number) => void;
  readonly frameBytesMax?: number;
  /**
   * Where a snapshot received in chunks is written as it arrives (the node's snapshots directory),
   * so that no receiver holds one in memory; without it, in memory, at most 1 GiB.
   */
  readonly snapshotStageDir?: string;
  /** Cluster secret (handshake proof) and TLS for the peer links. */
  readonly security?: Security;
}

const frameKinds = { hello: 1, message: 2, snapshotChunk: 3 } as const;
/** Snapshots larger than this travel as a stream of chunks, each with its own CRC32C. */
export const snapshotChunkBytes = 1024 * 1024;
/** A frame smaller than this is copied into one buffer before it is written; a larger one goes out in its parts. */
const framePartsMinBytes = 16 * 1024;
const reconnectMsMin = 50;
const reconnectMsMax = 1000;

interface Hello {
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly httpAddress: string;
  readonly respAddress?: string;
  /** With a cluster secret: when the hello was made, a nonce, and the HMAC over both and the ids. */
  readonly atMs?: number;
  readonly nonce?: string;
  readonly proof?: string;
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
  /** The peers: those of the options, plus members added at run time (a join). */
  private readonly peers: Map<NodeId, PeerAddress>;
  private readonly frameBytesMax: number;
  private readonly sockets = new Map<NodeId, Socket>();
  /** HTTP addresses peers told us in their handshake. */
  readonly httpAddresses = new Map<NodeId, string>();
  /** RESP addresses peers told us in their handshake. */
  readonly respAddresses = new Map<NodeId, string>();
  private server: Server | null = null;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly corked = new Set<Socket>();
  /** Per connection: the snapshots being streamed, the first one in progress (one at a time). */
  private readonly snapshotStreams = new Map<Socket, { message: SnapshotMessage; reader: SnapshotReader }[]>();
  /** Bytes and frames sent, for metrics. */
  readonly stats = { bytesSent: 0, framesSent: 0, refused: 0 };

  private readonly proofs: ProofChecker | null;

  constructor(options: TcpTransportOptions) {
    this.options = options;
    this.peers = new Map(options.peers);
    this.frameBytesMax = options.frameBytesMax ?? peerFrameBytesMax;
    const secret = options.security?.clusterSecret ?? null;
    this.proofs = secret === null ? null : new ProofChecker(secret);
  }

  private get tls(): TlsMaterial | null {
    return this.options.security?.tls ?? null;
  }

  /** Listens on this node's own peer address and dials the peers it is responsible for. */
  async start(): Promise<void> {
    const self = this.peers.get(this.options.id);
    if (self === undefined) throw new Error(`--peers has no address for this node (${this.options.id})`);
    const tls = this.tls;
    // With TLS both sides show a certificate signed by the cluster's CA (mutual TLS).
    this.server =
      tls === null
        ? createServer((socket) => this.accept(socket))
        : createTlsServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true }, (socket) => this.accept(socket));
    this.server.on('tlsClientError', (error: Error) => this.refusedLog('its TLS handshake failed', { error: error.message }));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(self.port, self.host, () => resolve());
    });
    for (const id of this.peers.keys()) if (id !== this.options.id && this.options.id < id) this.dial(id, reconnectMsMin);
  }

  /** A member added at run time: from now on its handshake is accepted, and dialled when it is ours to dial. */
  addPeer(id: NodeId, address: PeerAddress): void {
    const known = this.peers.get(id);
    if (id === this.options.id || (known !== undefined && known.host === address.host && known.port === address.port)) return;
    this.peers.set(id, address);
    if (this.server !== null && this.options.id < id) this.dial(id, reconnectMsMin);
  }

  /** A member removed: its link is closed and not dialled again. */
  removePeer(id: NodeId): void {
    if (id === this.options.id || !this.peers.delete(id)) return;
    this.sockets.get(id)?.destroy();
    this.sockets.delete(id);
  }

  send(message: Message): void {
    if (message.type === 'snapshot' && message.data instanceof Uint8Array) {
      this.sendSnapshot({ ...message, data: null }, memorySnapshotReader(message.meta, message.data));
      return;
    }
    const socket = this.sockets.get(message.to);
    if (socket === undefined || socket.destroyed) return;
    this.writeFrame(socket, frameKinds.message, encodeMessageParts(message));
  }

  /**
   * Sends a snapshot: one that fits a chunk in one message; a larger one streamed in chunks
   * (streamSnapshot), read from `reader` as they go, one snapshot at a time per connection.
   */
  sendSnapshot(message: SnapshotMessage, reader: SnapshotReader): void {
    const socket = this.sockets.get(message.to);
    if (socket === undefined || socket.destroyed) {
      reader.close();
      return;
    }
    if (reader.bytes > snapshotStagedBytesMax) {
      // A receiver refuses it at the first chunk; said here, where the operator looks for it.
      reader.close();
      this.options.log('error', 'snapshot not sent: larger than a peer accepts', { to: message.to, index: message.meta.index, bytes: reader.bytes, bytesMax: snapshotStagedBytesMax });
      return;
    }
    if (reader.bytes <= snapshotChunkBytes) {
      readWhole(reader, (error, data) => {
        if (error !== null || data === null) this.snapshotReadFailed(message, error);
        else if (!socket.destroyed) this.writeFrame(socket, frameKinds.message, encodeMessageParts({ ...message, data }));
      });
      return;
    }
    const streams = this.snapshotStreams.get(socket);
    if (streams === undefined) {
      this.snapshotStreams.set(socket, [{ message, reader }]);
      this.streamSnapshot(socket);
    } else if (streams.some((queued) => queued.message.meta.index === message.meta.index && queued.message.meta.term === message.meta.term)) {
      // The same snapshot again (the leader re-sends after a while) is already on its way.
      reader.close();
    } else {
      streams.push({ message, reader });
    }
  }

  /**
   * Streams the first queued snapshot of a connection: its bytes in checksummed chunks, read one
   * at a time, one per turn of the event loop and no faster than the socket drains, then the
   * message without them. Checksumming and copying a few hundred megabytes at once held a
   * leader's event loop past the election timeout; other messages (heartbeats) now go out
   * between the chunks. A snapshot that cannot be read is dropped (and logged): the follower
   * installs nothing without the final message.
   */
  private streamSnapshot(socket: Socket): void {
    const stream = this.snapshotStreams.get(socket)?.[0];
    if (stream === undefined) return;
    const { message, reader } = stream;
    const total = reader.bytes;
    const next = (): void => {
      const streams = this.snapshotStreams.get(socket) ?? [];
      streams.shift();
      if (streams.length === 0) this.snapshotStreams.delete(socket);
      else setImmediate(() => this.streamSnapshot(socket));
    };
    const step = (offset: number): void => {
      if (socket.destroyed || this.closed) {
        for (const queued of this.snapshotStreams.get(socket) ?? []) queued.reader.close();
        this.snapshotStreams.delete(socket);
        return;
      }
      if (offset === total) {
        reader.close();
        this.writeFrame(socket, frameKinds.message, encodeMessageParts(message));
        next();
        return;
      }
      const end = Math.min(total, offset + snapshotChunkBytes);
      reader.read(offset, end - offset, (error, chunk) => {
        if (error !== null || chunk === null) {
          reader.close();
          this.snapshotReadFailed(message, error);
          next();
          return;
        }
        if (socket.destroyed || this.closed) {
          step(offset);
          return;
        }
        const frame = Buffer.allocUnsafe(chunkHeaderBytes + chunk.length);
        frame.writeUInt32LE(crc32c(chunk), 0);
        frame.writeDoubleLE(total, 4);
        frame.writeDoubleLE(offset, 12);
        frame.set(chunk, chunkHeaderBytes);
        this.writeFrame(socket, frameKinds.snapshotChunk, frame, () => this.options.onSnapshotSendProgress?.(message.to, end, total));
        if (socket.writableNeedDrain) {
          const resume = (): void => {
            socket.off('drain', resume);
            socket.off('close', resume);
            step(end);
          };
          socket.on('drain', resume);
          socket.on('close', resume);
        } else {
          setImmediate(() => step(end));
        }
      });
    };
    step(0);
  }

  private snapshotReadFailed(message: SnapshotMessage, error: Error | null): void {
    this.options.log('error', 'snapshot not sent: reading it failed', { to: message.to, index: message.meta.index, error: error?.message ?? 'no data' });
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets.values()) socket.destroy();
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())));
  }

  /** Writes one frame: its header, then the payload (given whole or in parts, written as they are). */
  private writeFrame(socket: Socket, kind: number, payload: Uint8Array | readonly Uint8Array[], written?: () => void): void {
    let parts = payload instanceof Uint8Array ? [payload] : payload;
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    // Each write has its own cost in the stream; below this size one copy costs less.
    if (parts.length > 1 && bytes < framePartsMinBytes) parts = [Buffer.concat(parts, bytes)];
    const header = Buffer.allocUnsafe(5);
    header.writeUInt32LE(bytes + 1, 0);
    header.writeUInt8(kind, 4);
    // Frames written in one callback (and the promise jobs it runs) leave in one batch, as soon
    // as it returns: uncorked on setImmediate, they waited for the next turn's poll of every socket.
    if (!this.corked.has(socket)) {
      socket.cork();
      this.corked.add(socket);
      process.nextTick(() => {
        this.corked.delete(socket);
        socket.uncork();
      });
    }
    socket.write(header);
    const last = parts.length - 1;
    for (let k = 0; k < last; k++) socket.write(parts[k] as Uint8Array);
    if (written === undefined) socket.write(parts[last] as Uint8Array);
    else socket.write(parts[last] as Uint8Array, (error) => (error === null || error === undefined ? written() : undefined));
    this.stats.bytesSent += bytes + 5;
    this.stats.framesSent++;
  }

  private dial(id: NodeId, backoffMs: number): void {
    const address = this.peers.get(id);
    if (this.closed || address === undefined) return;
    const tls = this.tls;
    const socket: Socket =
      tls === null ? connect({ host: address.host, port: address.port }) : tlsConnect({ host: address.host, port: address.port, key: tls.key, cert: tls.cert, ca: tls.ca, servername: isIP(address.host) === 0 ? address.host : undefined });
    socket.setNoDelay(true);
    let established = false;
    const assembler = new SnapshotAssembler(this.options.snapshotStageDir ?? null, id);
    socket.once(tls === null ? 'connect' : 'secureConnect', () => {
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
      if (established) this.onPeerFrame(kind, payload, id, socket, assembler);
    });
    socket.once('close', () => {
      assembler.abandon();
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
    let assembler: SnapshotAssembler | null = null;
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
        assembler = new SnapshotAssembler(this.options.snapshotStageDir ?? null, peer);
        this.writeFrame(socket, frameKinds.hello, this.hello(peer));
        this.register(peer, socket);
        this.options.log('info', 'peer connected', { peer, direction: 'in' });
        return;
      }
      if (assembler !== null) this.onPeerFrame(kind, payload, peer, socket, assembler);
    });
    socket.once('close', () => {
      assembler?.abandon();
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
    let hello: Hello = { clusterId: this.options.clusterId, from: this.options.id, to, httpAddress: this.options.httpAddress, respAddress: this.options.respAddress ?? '' };
    const secret = this.options.security?.clusterSecret ?? null;
    if (secret !== null) {
      const atMs = Date.now();
      const nonce = newNonce();
      hello = { ...hello, atMs, nonce, proof: peerProof(secret, this.options.clusterId, this.options.id, to, atMs, nonce) };
    }
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
    if (typeof hello.from !== 'string' || typeof hello.to !== 'string' || !this.peers.has(hello.from) || hello.from === this.options.id) {
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
    if (this.proofs !== null) {
      const problem = this.proofs.check(this.options.clusterId, hello.from, hello.to, hello.atMs, hello.nonce, hello.proof, Date.now());
      if (problem !== null) {
        this.refusedLog(problem, { peer: hello.from });
        return null;
      }
    }
    if (typeof hello.httpAddress === 'string') this.httpAddresses.set(hello.from, hello.httpAddress);
    if (typeof hello.respAddress === 'string' && hello.respAddress !== '') this.respAddresses.set(hello.from, hello.respAddress);
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

  private onPeerFrame(kind: number, payload: Uint8Array, peer: NodeId, socket: Socket, assembler: SnapshotAssembler): void {
    if (kind === frameKinds.message) {
      this.deliver(payload, peer, socket, assembler);
      return;
    }
    if (kind !== frameKinds.snapshotChunk) {
      this.refuse(socket, `unknown frame kind ${kind}`, { peer });
      return;
    }
    const problem = assembler.add(payload);
    if (problem !== null) {
      this.refuse(socket, `bad snapshot chunk: ${problem}`, { peer });
      return;
    }
    this.options.onSnapshotProgress?.(peer, assembler.received, assembler.total);
  }

  private deliver(payload: Uint8Array, peer: NodeId, socket: Socket, assembler: SnapshotAssembler): void {
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
    if (message.type === 'snapshot' && message.data === null) {
      const data = assembler.take();
      // Without complete chunks the message is dropped: the leader sends the snapshot again.
      if (data === null) return;
      message = { ...message, data };
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
