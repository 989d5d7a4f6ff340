/**
 * What a workload cost a system in CPU, read from Linux's per-thread scheduler statistics
 * (/proc/<pid>/task/<tid>/schedstat: nanoseconds on a CPU, nanoseconds runnable but waiting for
 * one). Two figures per run: CPU time of all the system's processes (every thread) per operation,
 * and how long the busiest process's main thread was runnable but waiting for a core, as a share
 * of the run. On a machine with fewer cores than busy processes (three nodes and the load
 * generator on two cores here) that wait is latency, and CPU per operation sets the ceiling.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { median } from './cluster.js';

/** One process at one moment: all its threads' CPU and waiting, and its main thread's. */
export interface ProcessCpu {
  readonly cpuNs: number;
  readonly waitNs: number;
  readonly mainCpuNs: number;
  readonly mainWaitNs: number;
}

export interface CpuReading {
  readonly atMs: number;
  readonly processes: ReadonlyMap<number, ProcessCpu>;
}

export interface CpuFigure {
  /** CPU microseconds of all the system's processes per operation. */
  readonly cpuUsPerOp: number;
  /** The busiest process's main thread: time runnable but without a core, % of the run. */
  readonly mainWaitPct: number;
}

/** The first two fields of a schedstat line: [ns on a CPU, ns waiting on a run queue]. */
export function parseSchedstat(text: string): readonly [number, number] {
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)) throw new Error(`unreadable schedstat line: ${JSON.stringify(text)}`);
  return [run, wait];
}

/** Reads every thread of each process; null where /proc has no schedstat (not Linux) or a process is gone. */
export function readCpu(pids: readonly number[]): CpuReading | null {
  const processes = new Map<number, ProcessCpu>();
  try {
    for (const pid of pids) {
      let cpuNs = 0;
      let waitNs = 0;
      let main: readonly [number, number] = [0, 0];
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        let stat: readonly [number, number];
        try {
          stat = parseSchedstat(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
        } catch {
          continue; // a thread that ended between the listing and the read
        }
        cpuNs += stat[0];
        waitNs += stat[1];
        if (Number(tid) === pid) main = stat;
      }
      processes.set(pid, { cpuNs, waitNs, mainCpuNs: main[0], mainWaitNs: main[1] });
    }
  } catch {
    return null;
  }
  return { atMs: performance.now(), processes };
}

/** What each process used between two readings (its pid, and a ProcessCpu of differences). */
interface Used extends ProcessCpu {
  readonly pid: number;
}

/**
 * Each process's use between two readings, and the time between them. Threads that ended in
 * between are not counted (a node's threads live as long as it does). Null when either reading
 * is missing, a process is in only one of them, or no time passed.
 */
function between(before: CpuReading | null, after: CpuReading | null): { readonly wallNs: number; readonly used: readonly Used[] } | null {
  if (before === null || after === null || before.processes.size !== after.processes.size) return null;
  const wallNs = (after.atMs - before.atMs) * 1e6;
  if (wallNs <= 0) return null;
  const used: Used[] = [];
  for (const [pid, end] of after.processes) {
    const start = before.processes.get(pid);
    if (start === undefined) return null;
    used.push({ pid, cpuNs: end.cpuNs - start.cpuNs, waitNs: end.waitNs - start.waitNs, mainCpuNs: end.mainCpuNs - start.mainCpuNs, mainWaitNs: end.mainWaitNs - start.mainWaitNs });
  }
  return { wallNs, used };
}

/** The figure between two readings over `ops` operations; null where `between` is, or without operations. */
export function cpuFigure(before: CpuReading | null, after: CpuReading | null, ops: number): CpuFigure | null {
  const span = between(before, after);
  if (span === null || ops <= 0) return null;
  let cpuNs = 0;
  let busiest: Used | null = null;
  for (const p of span.used) {
    cpuNs += p.cpuNs;
    if (busiest === null || p.mainCpuNs > busiest.mainCpuNs) busiest = p;
  }
  return { cpuUsPerOp: cpuNs / 1000 / ops, mainWaitPct: (100 * (busiest?.mainWaitNs ?? 0)) / span.wallNs };
}

/** The medians of a workload's CPU figures over its runs, where they have them; {} where none does. */
export function medianCpu(figures: readonly Partial<CpuFigure>[]): Partial<CpuFigure> {
  const measured = figures.flatMap((f) => (f.cpuUsPerOp === undefined || f.mainWaitPct === undefined ? [] : [{ cpuUsPerOp: f.cpuUsPerOp, mainWaitPct: f.mainWaitPct }]));
  if (measured.length === 0) return {};
  return { cpuUsPerOp: Number(median(measured.map((f) => f.cpuUsPerOp)).toFixed(1)), mainWaitPct: Number(median(measured.map((f) => f.mainWaitPct)).toFixed(0)) };
}

/** A row's two CPU cells: µs per operation (one decimal) and the main thread's wait (whole %), or two empty cells. */
export function cpuCells(figure: Partial<CpuFigure>): string {
  return figure.cpuUsPerOp === undefined || figure.mainWaitPct === undefined ? ' | ' : `${figure.cpuUsPerOp.toFixed(1)} | ${figure.mainWaitPct.toFixed(0)}%`;
}

/** The process ids of a system's children (those that started). */
export function pidsOf(children: Iterable<{ readonly pid?: number | undefined }>): number[] {
  return [...children].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
}

/** One node's share of a round, in µs of CPU per write, and its event loop's wait for a core. */
export interface NodeThreads {
  readonly role: 'leader' | 'follower';
  readonly mainUs: number;
  readonly otherUs: number;
  readonly mainWaitPct: number;
}

/** Splits each process's CPU between its main thread and the rest, per write, between two readings ([] where `between` is null, or without writes). */
export function threadShares(before: CpuReading, after: CpuReading, writes: number, leaderPid: number): NodeThreads[] {
  const span = between(before, after);
  if (span === null || writes <= 0) return [];
  return span.used.map((p) => ({
    role: p.pid === leaderPid ? 'leader' : 'follower',
    mainUs: p.mainCpuNs / 1000 / writes,
    otherUs: (p.cpuNs - p.mainCpuNs) / 1000 / writes,
    mainWaitPct: (100 * p.mainWaitNs) / span.wallNs,
  }));
}

/** Writes the node has answered: the count of its write-latency histogram (every series). */
export function writesAnswered(metrics: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) if (line.startsWith('tandem_write_latency_seconds_count')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}
