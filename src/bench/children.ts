/**
 * What a benchmark started — child processes (the systems, their load generators) and temporary
 * directories — so that a benchmark stopped by a signal (SIGINT, SIGTERM, SIGHUP: `timeout`, a CI
 * runner, `kill`) stops and removes them before it exits. Only the parent gets a `kill PID`: the
 * clusters it started would otherwise run on, and their directories stay. A benchmark that ends
 * normally stops and removes them itself, as before.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let watching = false;

/** Kills `child` (SIGKILL) if this process is stopped by a signal while it runs; returns it. */
export function stopOnSignal(child: ChildProcess): ChildProcess {
  watchSignals();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Removes `dir` (recursively) if this process is stopped by a signal; returns it. */
export function removeOnSignal(dir: string): string {
  watchSignals();
  dirs.add(dir);
  return dir;
}

function watchSignals(): void {
  if (watching) return;
  watching = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of children) child.kill('SIGKILL');
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      // Then die of the signal, as without this handler (its exit status says which).
      process.kill(process.pid, signal);
    });
  }
}
