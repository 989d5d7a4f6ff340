import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const mainScript = resolve(fileURLToPath(import.meta.url), '..', '..', 'cli', 'main.js');

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** A local cluster of `tandem start` processes for the benchmark scripts. */
export class BenchCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
  readonly ids: string[];
  private readonly children = new Map<string, ChildProcess>();
  private readonly httpPorts = new Map<string, number>();
  private peers = '';

  constructor(nodes: number, private readonly flags: readonly string[] = []) {
    this.ids = Array.from({ length: nodes }, (_, k) => `n${k + 1}`);
  }

  async init(): Promise<void> {
    const parts: string[] = [];
    for (const id of this.ids) {
      parts.push(`${id}=127.0.0.1:${await freePort()}`);
      this.httpPorts.set(id, await freePort());
    }
    this.peers = parts.join(',');
    for (const id of this.ids) this.start(id);
  }

  url(id: string): string {
    return `http://127.0.0.1:${this.httpPorts.get(id)}`;
  }

  start(id: string): void {
    const child = spawn(process.execPath, [mainScript, 'start', '--id', id, '--dir', join(this.root, id), '--peers', this.peers, '--http-port', String(this.httpPorts.get(id)), '--log-format', 'json', ...this.flags], { stdio: 'ignore' });
    this.children.set(id, child);
  }

  async kill(id: string): Promise<void> {
    const child = this.children.get(id);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  /** The current leader's id, polling until one is found. */
  async leader(among: readonly string[] = this.ids, timeoutMs = 20_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      for (const id of among) {
        try {
          const status = (await (await fetch(`${this.url(id)}/v1/status`, { signal: AbortSignal.timeout(300) })).json()) as { role: string };
          if (status.role === 'leader') return id;
        } catch {
          // not up
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('no leader');
  }

  async stop(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id)));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The q-quantile of sorted numbers. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
