import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { flagHelp, parseFlags, UsageError, type FlagSpec } from './args.js';

const flags: Record<string, FlagSpec> = {
  nodes: { type: 'int', help: 'how many nodes', min: 1, max: 7, default: 3 },
  dir: { type: 'string', help: 'where the nodes keep their data and logs', default: './tandem-data' },
  'peer-port': { type: 'int', help: 'first peer port (one per node, counting up)', min: 1024, max: 65000, default: 7001 },
  'http-port': { type: 'int', help: 'first HTTP port (one per node, counting up)', min: 1024, max: 65000, default: 8001 },
  'resp-port': { type: 'int', help: 'first Redis-protocol port (one per node, counting up)', min: 1024, max: 65000, default: 6380 },
  help: { type: 'switch', help: 'show this help' },
};

const mainScript = resolve(fileURLToPath(import.meta.url), '..', 'main.js');

/** Polls every node's status until one leads, or `timeoutMs` passes. */
/** Fails with a clear message when a port the demo needs is taken. */
async function checkPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', () => reject(new UsageError(`port ${port} on 127.0.0.1 is in use (another demo?); choose others with --peer-port, --http-port and --resp-port`)));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

async function waitForLeader(httpPorts: number[], pids: ReadonlySet<number>, timeoutMs: number, giveUp: () => boolean): Promise<string | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !giveUp()) {
    for (const port of httpPorts) {
      try {
        const status = (await (await fetch(`http://127.0.0.1:${port}/v1/status`, { signal: AbortSignal.timeout(500) })).json()) as { role: string; id: string; pid: number };
        if (status.role === 'leader' && pids.has(status.pid)) return status.id;
      } catch {
        // not up yet
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

/** `tandem demo`: a local cluster of child processes, until Ctrl-C. */
export async function demoCommand(argv: readonly string[]): Promise<number> {
  const v = parseFlags(argv, flags);
  if (v['help'] === true) {
    process.stdout.write(`tandem demo: start a local cluster and keep it running until Ctrl-C\n\n${flagHelp(flags)}\n`);
    return 0;
  }
  const count = v['nodes'] as number;
  const dir = resolve(v['dir'] as string);
  const ids = Array.from({ length: count }, (_, k) => `n${k + 1}`);
  const peerPorts = ids.map((_, k) => (v['peer-port'] as number) + k);
  const httpPorts = ids.map((_, k) => (v['http-port'] as number) + k);
  const respPorts = ids.map((_, k) => (v['resp-port'] as number) + k);
  const peers = ids.map((id, k) => `${id}=127.0.0.1:${peerPorts[k]}`).join(',');
  for (const port of [...peerPorts, ...httpPorts, ...respPorts]) await checkPortFree(port);
  mkdirSync(dir, { recursive: true });
  const exited: string[] = [];
  const children: ChildProcess[] = ids.map((id, k) => {
    const logFile = openSync(join(dir, `${id}.log`), 'a');
    const child = spawn(process.execPath, [mainScript, 'start', '--id', id, '--dir', join(dir, id), '--peers', peers, '--http-port', String(httpPorts[k]), '--resp-port', String(respPorts[k]), '--log-format', 'json'], {
      stdio: ['ignore', logFile, logFile],
    });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      exited.push(id);
      const lastLines = readFileSync(join(dir, `${id}.log`), 'utf8').trim().split('\n').slice(-2).join('\n  ');
      process.stderr.write(`tandem demo: node ${id} exited (${signal ?? `code ${code}`}); the end of ${join(dir, `${id}.log`)}:\n  ${lastLines}\n`);
    });
    return child;
  });
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(children.map((child) => new Promise<void>((done) => (child.exitCode !== null || child.signalCode !== null ? done() : (child.once('exit', () => done()), child.kill('SIGTERM'))))));
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)));

  const pids = new Set(children.map((child) => child.pid ?? -1));
  const leader = await waitForLeader(httpPorts, pids, 15_000, () => exited.length > 0);
  if (leader === null) {
    process.stderr.write(`tandem demo: the cluster did not come up (${exited.length > 0 ? `node ${exited.join(', ')} exited` : 'no leader after 15 s'}); node logs are in ${dir}\n`);
    await stopAll();
    return 1;
  }
  process.stdout.write(`Tandem: ${count} nodes running, leader ${leader}. Data and logs in ${dir}\n\n`);
  ids.forEach((id, k) => process.stdout.write(`  ${id}  http://127.0.0.1:${httpPorts[k]}   redis 127.0.0.1:${respPorts[k]}   peer 127.0.0.1:${peerPorts[k]}\n`));
  process.stdout.write(`
Try:
  curl -X PUT --data-binary 'hello' http://127.0.0.1:${httpPorts[0]}/v1/kv/greeting
  curl http://127.0.0.1:${httpPorts[count - 1]}/v1/kv/greeting
  redis-cli -p ${respPorts[count - 1]} get greeting        (any Redis client works; writes to a follower are forwarded)
  node ${mainScript} get greeting --seeds 127.0.0.1:${respPorts[0]}
  node ${mainScript} status --node 127.0.0.1:${httpPorts[0]}

Ctrl-C stops every node.
`);
  await new Promise(() => {});
  return 0;
}
