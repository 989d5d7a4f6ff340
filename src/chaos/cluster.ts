import { freePort, LocalCluster } from '../bench/cluster.js';
import { FaultProxy, type LinkMode } from './proxy.js';

/**
 * A local cluster whose every peer link runs through a FaultProxy the harness controls. The
 * node with the smaller id dials (see TcpTransport), so each node is started with --peers that
 * point its outgoing links at the proxies; the proxies forward to the real peer ports.
 */
export class ChaosCluster extends LocalCluster {
  /** The proxy of the link between a and b, keyed "a|b" with a < b (a dials). */
  private readonly proxies = new Map<string, FaultProxy>();

  override async init(): Promise<void> {
    await super.init();
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a >= b) continue;
        const proxy = new FaultProxy(this.peerPorts.get(b) as number);
        await proxy.start(await freePort());
        this.proxies.set(`${a}|${b}`, proxy);
      }
    }
  }

  protected override peersFor(id: string): string {
    return this.ids.map((other) => `${other}=127.0.0.1:${other === id || other < id ? this.peerPorts.get(other) : this.link(id, other).port}`).join(',');
  }

  private link(a: string, b: string): FaultProxy {
    return this.proxies.get(a < b ? `${a}|${b}` : `${b}|${a}`) as FaultProxy;
  }

  /** Cuts every link between a node of `left` and a node of `right`. */
  cutBetween(left: readonly string[], right: readonly string[]): void {
    for (const a of left) for (const b of right) if (a !== b) this.link(a, b).cut();
  }

  /** Drops everything `from` sends to `to` (a one-way partition); `to` → `from` still flows. */
  blackholeFrom(from: string, to: string): void {
    const drop: LinkMode = { kind: 'blackhole' };
    const pass: LinkMode = { kind: 'pass' };
    // A proxy's forward direction is from the dialler, the smaller id.
    if (from < to) this.link(from, to).shape(drop, pass);
    else this.link(from, to).shape(pass, drop);
  }

  /** Delays every byte on every link by `ms`, both ways. */
  delayAll(ms: number): void {
    for (const proxy of this.proxies.values()) proxy.shape({ kind: 'delay', ms }, { kind: 'delay', ms });
  }

  /** Heals every link. */
  healAll(): void {
    for (const proxy of this.proxies.values()) proxy.heal();
  }

  override async stopAll(): Promise<void> {
    for (const proxy of this.proxies.values()) await proxy.close();
    await super.stopAll();
  }
}
