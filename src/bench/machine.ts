/** What a benchmark report records about the machine it ran on. */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantile } from './cluster.js';

/** fdatasync of a 100-byte append, median over 200, in ms: what one durable write costs here. */
export function fsyncMs(dir: string): number {
  const file = join(dir, 'fsync-probe');
  const fd = openSync(file, 'a');
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const started = performance.now();
    writeSync(fd, Buffer.alloc(100, 1));
    fdatasyncSync(fd);
    times.push(performance.now() - started);
  }
  closeSync(fd);
  return quantile(times.sort((a, b) => a - b), 0.5);
}

/** A TCP round trip on loopback (one byte there and back), median over 2,000, in µs. */
export async function loopbackRoundTripUs(): Promise<number> {
  const server = createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const socket = createConnection({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      socket.once('data', () => resolve());
      socket.write('x');
    });
    times.push((performance.now() - started) * 1000);
  }
  socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return quantile(times.sort((a, b) => a - b), 0.5);
}

/** Cores, the fsync latency in a fresh temporary directory and the loopback round trip. */
export async function describeMachine(): Promise<{ cores: number; cpu: string; fsyncMs: number; loopbackRoundTripUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-machine-'));
  try {
    return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', fsyncMs: Number(fsyncMs(dir).toFixed(3)), loopbackRoundTripUs: Math.round(await loopbackRoundTripUs()) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
