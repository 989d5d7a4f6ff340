import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stallsLogged } from '../src/bench/cluster.js';
import { cpuCells, cpuFigure, medianCpu, parseSchedstat, readCpu, threadShares, writesAnswered, type CpuReading } from '../src/bench/cpu.js';
import { figureOf, parseRedisBenchmark } from '../src/bench/redis-benchmark.js';

// Trimmed from a real redis-benchmark 7.0 report (progress lines end in \r, not \n).
const report = [
  ' SET: rps=78840.0 (overall: 78840.0) avg_msec=0.346 (overall: 0.346)\r====== SET ======',
  '  20000 requests completed in 0.25 seconds',
  'Latency by percentile distribution:',
  '0.000% <= 0.063 milliseconds (cumulative count 1)',
  '50.000% <= 0.263 milliseconds (cumulative count 10106)',
  '99.805% <= 3.967 milliseconds (cumulative count 19961)',
  '99.902% <= 4.375 milliseconds (cumulative count 19981)',
  '99.951% <= 4.423 milliseconds (cumulative count 19991)',
  '100.000% <= 4.471 milliseconds (cumulative count 20000)',
  'Summary:',
  '  throughput summary: 78740.16 requests per second',
  '  latency summary (msec):',
  '          avg       min       p50       p95       p99       max',
  '        0.345     0.056     0.263     0.583     2.415     4.471',
  ' GET: rps=69408.7 (overall: 71101.6)\r====== GET ======',
  'Latency by percentile distribution:',
  '50.000% <= 0.300 milliseconds (cumulative count 10000)',
  '99.900% <= 1.500 milliseconds (cumulative count 19980)',
  'Summary:',
  '  throughput summary: 71022.73 requests per second',
  '  latency summary (msec):',
  '          avg       min       p50       p95       p99       max',
  '        0.358     0.050     0.300     0.600     1.100     2.000',
].join('\n');

describe('benchmark reports', () => {
  it("reads redis-benchmark's throughput, p50, p99 and the first percentile line at or past 99.9%", () => {
    const figures = parseRedisBenchmark(report);
    assert.deepEqual([...figures.keys()], ['SET', 'GET']);
    assert.deepEqual(figures.get('SET'), { opsPerSecond: 78740.16, p50Ms: 0.263, p99Ms: 2.415, p999Ms: 4.375 });
    assert.deepEqual(figures.get('GET'), { opsPerSecond: 71022.73, p50Ms: 0.3, p99Ms: 1.1, p999Ms: 1.5 });
    assert.equal(parseRedisBenchmark('Could not connect to Redis at 127.0.0.1:1: Connection refused\n').size, 0);
  });

  it('takes p50, p99 and p99.9 of a sorted latency list', () => {
    const latencies = Array.from({ length: 1000 }, (_, k) => k + 1);
    const figure = figureOf(latencies, 2);
    assert.equal(figure.opsPerSecond, 500);
    assert.ok(figure.p50Ms >= 500 && figure.p50Ms <= 501, `p50 ${figure.p50Ms}`);
    assert.ok(figure.p99Ms >= 990 && figure.p99Ms <= 991, `p99 ${figure.p99Ms}`);
    assert.ok(figure.p999Ms >= 999 && figure.p999Ms <= 1000, `p99.9 ${figure.p999Ms}`);
  });
});

describe('the catch-up benchmark’s evidence for a leader change', () => {
  it('lists every stall the nodes logged, with its GC share and role', () => {
    const output = new Map([
      ['k2', '{"event":"role changed","role":"leader"}\n{"time":"t","level":"warn","node":"k2","event":"event loop stalled","ms":412,"gcMs":380,"role":"leader"}\n'],
      ['k3', '{"event":"snapshot taken"}\n'],
      ['k1', 'cut: "event loop stalled","ms":2\n'],
    ]);
    assert.deepEqual(stallsLogged(output), ['k2 412 ms (GC 380 ms, leader)', 'k1 cut: "event loop stalled","ms":2']);
    assert.deepEqual(stallsLogged(new Map([['k1', '{"event":"role changed"}']])), []);
  });
});

describe('CPU per operation from /proc schedstat', () => {
  it('reads a schedstat line and refuses one it cannot read', () => {
    assert.deepEqual(parseSchedstat('123456789 2000 17\n'), [123456789, 2000]);
    assert.throws(() => parseSchedstat('garbage'), /unreadable schedstat line/);
  });

  it('sums every process and takes the wait of the busiest main thread', () => {
    const reading = (atMs: number, rows: [number, number, number, number, number][]): CpuReading => ({
      atMs,
      processes: new Map(rows.map(([pid, cpuNs, waitNs, mainCpuNs, mainWaitNs]) => [pid, { cpuNs, waitNs, mainCpuNs, mainWaitNs }])),
    });
    const before = reading(0, [[1, 1e9, 0, 5e8, 0], [2, 0, 0, 0, 0]]);
    // Over 1 s: process 1 used 0.6 s (main thread 0.5 s, waiting 0.3 s), process 2 used 0.2 s (waiting 0.9 s).
    const after = reading(1000, [[1, 1.6e9, 4e8, 1e9, 3e8], [2, 2e8, 9e8, 1e8, 9e8]]);
    const figure = cpuFigure(before, after, 4000);
    assert.ok(figure !== null);
    assert.equal(figure.cpuUsPerOp, 200); // 0.8 s of CPU over 4,000 operations
    assert.equal(figure.mainWaitPct, 30); // the busiest main thread (process 1's), not the longest wait
    assert.equal(cpuFigure(before, reading(1000, [[1, 2e9, 0, 1e9, 0]]), 10), null, 'a process missing from one reading');
    assert.equal(cpuFigure(null, after, 10), null);
    assert.equal(cpuFigure(before, after, 0), null);
  });

  it('takes the median over runs that have a figure, and prints two cells either way', () => {
    assert.deepEqual(medianCpu([{ cpuUsPerOp: 90, mainWaitPct: 30 }, {}, { cpuUsPerOp: 80.04, mainWaitPct: 41.6 }, { cpuUsPerOp: 100, mainWaitPct: 35 }]), { cpuUsPerOp: 90, mainWaitPct: 35 });
    assert.deepEqual(medianCpu([{}, {}]), {});
    assert.equal(cpuCells({ cpuUsPerOp: 85.5, mainWaitPct: 35 }), '85.5 | 35%');
    assert.equal(cpuCells({ cpuUsPerOp: 1074.5678, mainWaitPct: 21.7 }), '1074.6 | 22%', 'a raw figure, rounded for the table');
    assert.equal(cpuCells({}).split('|').length, 2, 'two empty cells keep the columns in line');
  });

  it('splits each node between its event loop and its other threads, per write (bench:cpu)', () => {
    const at = (atMs: number, rows: [number, number, number][]): CpuReading => ({
      atMs,
      processes: new Map(rows.map(([pid, cpuNs, mainCpuNs]) => [pid, { cpuNs, waitNs: 0, mainCpuNs, mainWaitNs: mainCpuNs / 2 }])),
    });
    // Over 2 s and 1,000 writes: the leader (7) used 50 ms, 30 of them on its event loop; a follower 20 ms, 15 on its loop.
    const shares = threadShares(at(0, [[7, 0, 0], [8, 0, 0]]), at(2000, [[7, 5e7, 3e7], [8, 2e7, 1.5e7]]), 1000, 7);
    assert.deepEqual(shares, [
      { role: 'leader', mainUs: 30, otherUs: 20, mainWaitPct: 0.75 },
      { role: 'follower', mainUs: 15, otherUs: 5, mainWaitPct: 0.375 },
    ]);
    assert.deepEqual(threadShares(at(0, [[7, 0, 0]]), at(2000, [[7, 5e7, 3e7]]), 0, 7), [], 'no writes, no shares');
    const metrics = ['# HELP tandem_write_latency_seconds …', 'tandem_write_latency_seconds_bucket{ack="majority",le="0.001"} 5', 'tandem_write_latency_seconds_count{ack="majority"} 1200', 'tandem_write_latency_seconds_count{ack="leader"} 34', 'tandem_writes_total 9'].join('\n');
    assert.equal(writesAnswered(metrics), 1234);
  });

  it('reads this process on Linux: its CPU grows while it works', { skip: process.platform !== 'linux' }, () => {
    const before = readCpu([process.pid]);
    const until = performance.now() + 30;
    let spin = 0;
    while (performance.now() < until) spin++;
    const after = readCpu([process.pid]);
    assert.ok(before !== null && after !== null && spin > 0);
    const figure = cpuFigure(before, after, 1);
    assert.ok(figure !== null && figure.cpuUsPerOp >= 10_000, `30 ms of spinning read as ${figure?.cpuUsPerOp} µs`);
    assert.equal(readCpu([2 ** 22 + 12345]), null, 'a process that does not exist');
  });
});
