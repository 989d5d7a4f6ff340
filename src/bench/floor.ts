/**
 * Starts and stops the floor (floor-node.ts): three processes on loopback with the shape of
 * Tandem's write path and nothing else, which the benchmarks set beside Tandem as the least a
 * majority write costs in Node.js on this machine (`npm run bench:cpu -- --floor`,
 * `npm run bench:redis -- --floor`, `npm run bench:etcd -- --floor`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, waitFor } from './cluster.js';
import { removeOnSignal, stopOnSignal } from './children.js';

/** A running floor: its processes (the leader last), the leader's RESP port, and a count of the SETs it answered. */
export interface Floor {
  readonly processes: readonly ChildProcess[];
  /** Where the three logs are written (removed by stop). */
  readonly dir: string;
  readonly leaderPid: number;
  readonly respPort: number;
  /** Where the leader takes `PUT /v1/kv/<key>`. */
  readonly httpPort: number;
  answered(): Promise<number>;
  stop(): void;
}

/** Starts two followers and a leader, each logging under a fresh temporary directory; resolves once the leader listens. */
export async function startFloor(): Promise<Floor> {
  const dir = removeOnSignal(mkdtempSync(join(tmpdir(), 'tandem-floor-')));
  const script = new URL('./floor-node.js', import.meta.url).pathname;
  const [respPort, httpPort, ...followerPorts] = [await freePort(), await freePort(), await freePort(), await freePort()] as [number, number, number, number];
  const processes: ChildProcess[] = followerPorts.map((port) => stopOnSignal(spawn(process.execPath, [script, 'follower', String(port), dir], { stdio: ['ignore', 'ignore', 'inherit'] })));
  const stop = (): void => {
    for (const child of processes) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(followerPorts.map((port) => waitFor(`the floor's follower on port ${port}`, 10_000, () => listening(port))));
    const leader = stopOnSignal(spawn(process.execPath, [script, 'leader', String(respPort), String(httpPort), dir, ...followerPorts.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] }));
    processes.push(leader);
    await Promise.all([respPort, httpPort].map((port) => waitFor(`the floor's leader on port ${port}`, 10_000, () => listening(port))));
    return { processes, dir, leaderPid: leader.pid ?? -1, respPort, httpPort, answered: answeredCounter(leader), stop };
  } catch (error) {
    stop();
    throw error;
  }
}

/** The floor's leader answers each line on its stdin with the SETs it has answered so far; a question to a leader that exited is refused. */
function answeredCounter(leader: ChildProcess): () => Promise<number> {
  const lines = createInterface({ input: leader.stdout as NodeJS.ReadableStream });
  const waiting: { readonly resolve: (count: number) => void; readonly reject: (error: Error) => void }[] = [];
  let exited: Error | null = null;
  lines.on('line', (line) => waiting.shift()?.resolve(Number(line)));
  leader.once('exit', (code, signal) => {
    exited = new Error(`the floor's leader exited (${code ?? signal})`);
    for (const waiter of waiting.splice(0)) waiter.reject(exited);
  });
  return () =>
    new Promise((resolve, reject) => {
      if (exited !== null) {
        reject(exited);
        return;
      }
      waiting.push({ resolve, reject });
      leader.stdin?.write('count\n');
    });
}

/** Whether something listens on the loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
