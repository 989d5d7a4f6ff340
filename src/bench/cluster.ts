/** Local clusters of real processes, and the small helpers that drive them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpCall, httpFetch } from '../net/http-call.js';
import type { NodeStatus } from '../server/status.js';
import { removeOnSignal, stopOnSignal } from './children.js';

export type { NodeStatus } from '../server/status.js';

const mainScript = join(import.meta.dirname, '..', 'cli', 'main.js');

/** Ports this process has handed out: never twice, or two servers of one test could collide. */
const portsHandedOut = new Set<number>();

/** A free TCP port on loopback (bound, then released), not one handed out before by this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await anyFreePort();
    if (portsHandedOut.has(port)) continue;
    portsHandedOut.add(port);
    return port;
  }
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until `check` returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown = null;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === null ? '' : ` (last error: ${String(lastError)})`}`);
}


/**
 * The event-loop stalls in nodes' JSON log output (`"event loop stalled"`, with the GC share), as
 * "n3 412 ms (GC 380 ms, follower)": what to look at when a leader changed under load.
 */
export function stallsLogged(output: ReadonlyMap<string, string>): string[] {
  const stalls: string[] = [];
  for (const [id, text] of output) {
    for (const line of text.split('\n')) {
      if (!line.includes('"event loop stalled"')) continue;
      try {
        const fields = JSON.parse(line) as { ms?: number; gcMs?: number; role?: string };
        stalls.push(`${id} ${fields.ms} ms (GC ${fields.gcMs} ms, ${fields.role})`);
      } catch {
        stalls.push(`${id} ${line.slice(0, 120)}`);
      }
    }
  }
  return stalls;
}

/**
 * A cluster of real `tandem start` processes on loopback, each with its own data directory
 * under one temporary root: for the benchmark scripts and the real-process tests.
 */
export class LocalCluster {
  readonly root = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-cluster-')));
  readonly processes = new Map<string, ChildProcess>();
  readonly output = new Map<string, string>();
  private peers = '';
  /** Each node's own peer port. */
  readonly peerPorts = new Map<string, number>();
  private httpPorts = new Map<string, number>();
  private respPorts = new Map<string, number>();

  constructor(
    readonly ids: readonly string[],
    private readonly extraFlags: readonly string[] = [],
    private readonly env: NodeJS.ProcessEnv = process.env,
    /** The bearer token and the CA to trust, when the nodes require them. */
    readonly access: { readonly token: string | null; readonly ca: Buffer | null } = { token: null, ca: null },
  ) {}

  /** A request to a node's HTTP API. */
  request(id: string, method: string, path: string, body?: string): Promise<Response> {
    return httpFetch(`127.0.0.1:${this.httpPorts.get(id)}`, method, path, { ...this.access, timeoutMs: 10_000, body });
  }

  async init(): Promise<void> {
    const parts: string[] = [];
    for (const id of this.ids) {
      this.peerPorts.set(id, await freePort());
      parts.push(`${id}=127.0.0.1:${this.peerPorts.get(id)}`);
      this.httpPorts.set(id, await freePort());
      this.respPorts.set(id, await freePort());
    }
    this.peers = parts.join(',');
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  http(id: string): string {
    return `http://127.0.0.1:${this.httpPorts.get(id)}`;
  }

  /** The --peers a node is started with (the same for all here; the chaos harness routes links through proxies). */
  protected peersFor(_id: string): string {
    return this.peers;
  }

  /** The --peers flag node `id` is started with. */
  peersOf(id: string): string {
    return this.peersFor(id);
  }

  /** The node's Redis-protocol port. */
  respPort(id: string): number {
    return this.respPorts.get(id) as number;
  }

  /** Every node's RESP address, "host:port". */
  respAddresses(): string[] {
    return this.ids.map((id) => `127.0.0.1:${this.respPort(id)}`);
  }

  /** The event-loop stalls the nodes logged since they started (see stallsLogged). */
  loggedStalls(): string[] {
    return stallsLogged(this.output);
  }

  /** For a failed run: each node that has exited (code or signal) and the end of its output. */
  exits(): string {
    const lines: string[] = [];
    for (const [id, child] of this.processes) {
      if (child.exitCode === null && child.signalCode === null) continue;
      const tail = (this.output.get(id) ?? '').trim().split('\n').slice(-5).join('\n  ');
      lines.push(`${id} exited (${child.exitCode ?? child.signalCode}):\n  ${tail}\n`);
    }
    return lines.length === 0 ? 'every Tandem node is still running\n' : lines.join('');
  }

  /** Starts (or restarts) a node; its stderr is collected in `output`. */
  start(id: string): ChildProcess {
    const args = [mainScript, 'start', '--id', id, '--dir', this.dir(id), '--peers', this.peersFor(id), '--http-port', String(this.httpPorts.get(id)), '--resp-port', String(this.respPorts.get(id)), '--log-format', 'json', ...this.extraFlags];
    return this.spawnNode(id, args);
  }

  private spawnNode(id: string, args: string[]): ChildProcess {
    const child = stopOnSignal(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.env }));
    this.output.set(id, '');
    const collect = (chunk: Buffer): void => {
      this.output.set(id, (this.output.get(id) ?? '') + chunk.toString());
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.processes.set(id, child);
    return child;
  }

  /**
   * Starts (or restarts) a node that is not one of the founding ids: it joins through the HTTP
   * address of member `through` with `tandem start --join`.
   */
  async startJoiner(id: string, through: string): Promise<ChildProcess> {
    if (!this.peerPorts.has(id)) {
      this.peerPorts.set(id, await freePort());
      this.httpPorts.set(id, await freePort());
      this.respPorts.set(id, await freePort());
    }
    const args = [mainScript, 'start', '--id', id, '--dir', this.dir(id), '--join', `127.0.0.1:${this.httpPorts.get(through)}`, '--peer-address', `127.0.0.1:${this.peerPorts.get(id)}`];
    args.push('--http-port', String(this.httpPorts.get(id)), '--resp-port', String(this.respPorts.get(id)), '--log-format', 'json', ...this.extraFlags);
    return this.spawnNode(id, args);
  }

  /** Sends a signal and waits for the process to exit. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.processes.get(id);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async status(id: string): Promise<NodeStatus> {
    const answer = await httpCall(`127.0.0.1:${this.httpPorts.get(id)}`, 'GET', '/v1/status', { ...this.access, timeoutMs: 1000 });
    return JSON.parse(answer.body.toString()) as NodeStatus;
  }

  /** The id of the node that says it leads (and whose term is highest). */
  async leader(among: readonly string[] = this.ids): Promise<string> {
    return waitFor('a leader', 15_000, async () => {
      let best: NodeStatus | undefined;
      for (const id of among) {
        try {
          const s = await this.status(id);
          if (s.role === 'leader' && (best === undefined || s.term > best.term)) best = s;
        } catch {
          // down
        }
      }
      return best?.id;
    });
  }

  /** Waits until every node has applied the same index, and holds it on disk with the same digest. */
  async converged(timeoutMs = 20_000): Promise<NodeStatus[]> {
    return waitFor('every node to converge', timeoutMs, async () => {
      const all = await Promise.all(this.ids.map((id) => this.status(id)));
      const first = all[0] as NodeStatus;
      const same = all.every(
        (s) => s.appliedIndex === first.appliedIndex && s.digestIndex === s.appliedIndex && s.digest === first.digest && s.appliedIndex === s.commitIndex && s.lastIndex === first.lastIndex,
      );
      return same ? all : undefined;
    });
  }

  async put(id: string, key: string, value: string, ack = 'majority'): Promise<Response> {
    return this.request(id, 'PUT', `/v1/kv/${encodeURIComponent(key)}?ack=${ack}`, value);
  }

  async get(id: string, key: string, consistency = 'linearizable', headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.http(id)}/v1/kv/${encodeURIComponent(key)}?consistency=${encodeURIComponent(consistency)}`, { headers, signal: AbortSignal.timeout(10_000) });
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((id) => this.kill(id, 'SIGKILL')));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The q-quantile of sorted numbers. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** The median of numbers in any order. */
export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}
