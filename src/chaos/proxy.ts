import { connect, createServer, type Server, type Socket } from 'node:net';

/** What a link does to the bytes of one direction. */
export type LinkMode = { readonly kind: 'pass' } | { readonly kind: 'blackhole' } | { readonly kind: 'delay'; readonly ms: number };

interface Pipe {
  readonly dialer: Socket;
  readonly listener: Socket;
}

/**
 * A fault-injecting TCP proxy for one link between two nodes: the dialling node connects to
 * it, and it connects on to the other node. Each direction can pass, be delayed (order kept), or
 * be blackholed (bytes discarded, as a one-way partition does). Bytes lost mid-stream would
 * corrupt the frame stream, so healing a blackhole resets the link: the nodes reconnect.
 * `cut` refuses the link both ways: open connections are reset and new ones closed at once.
 */
export class FaultProxy {
  private server: Server | null = null;
  private readonly pipes = new Set<Pipe>();
  private cutValue = false;
  /** dialer → listener, and back. */
  private forward: LinkMode = { kind: 'pass' };
  private backward: LinkMode = { kind: 'pass' };
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(port = 0): Promise<number> {
    this.server = createServer((dialer) => this.accept(dialer));
    await new Promise<void>((resolve, reject) => {
      (this.server as Server).once('error', reject);
      (this.server as Server).listen(port, '127.0.0.1', () => resolve());
    });
    const address = this.server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : 0;
    return this.port;
  }

  get isCut(): boolean {
    return this.cutValue;
  }

  /** Refuses the link both ways until `heal`. */
  cut(): void {
    this.cutValue = true;
    this.reset();
  }

  /** Sets what happens to each direction; `forward` is from the dialling node. */
  shape(forward: LinkMode, backward: LinkMode): void {
    // Any change of an impaired direction resets the link: dropped bytes would corrupt the
    // stream, and a delay lifted early would let new bytes overtake old ones.
    const wasImpaired = this.forward.kind !== 'pass' || this.backward.kind !== 'pass';
    this.forward = forward;
    this.backward = backward;
    if (wasImpaired) this.reset();
  }

  /** Back to a clean link. */
  heal(): void {
    const wasLossy = this.cutValue || this.forward.kind !== 'pass' || this.backward.kind !== 'pass';
    this.cutValue = false;
    this.forward = { kind: 'pass' };
    this.backward = { kind: 'pass' };
    if (wasLossy) this.reset();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())));
  }

  private reset(): void {
    for (const pipe of this.pipes) {
      pipe.dialer.destroy();
      pipe.listener.destroy();
    }
    this.pipes.clear();
  }

  private accept(dialer: Socket): void {
    if (this.cutValue) {
      dialer.destroy();
      return;
    }
    const listener = connect({ host: '127.0.0.1', port: this.targetPort });
    const pipe: Pipe = { dialer, listener };
    this.pipes.add(pipe);
    const close = (): void => {
      dialer.destroy();
      listener.destroy();
      this.pipes.delete(pipe);
    };
    for (const socket of [dialer, listener]) {
      socket.setNoDelay(true);
      socket.on('error', close);
      socket.on('close', close);
    }
    dialer.on('data', (chunk: Buffer) => this.relay(chunk, listener, this.forward));
    listener.on('data', (chunk: Buffer) => this.relay(chunk, dialer, this.backward));
  }

  private relay(chunk: Buffer, to: Socket, mode: LinkMode): void {
    if (mode.kind === 'blackhole') return;
    if (mode.kind === 'pass') {
      to.write(chunk);
      return;
    }
    // Equal delays keep the order of chunks, since timers of equal length fire in order.
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, mode.ms);
  }
}
