import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import type { IntervalHistogram } from 'node:perf_hooks';
import { LabelledHistogram, PairCounter } from '../src/server/hot-metrics.js';
import { Metrics } from '../src/server/metrics.js';
import { Prng } from '../src/shared/prng.js';

const buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.1];

describe('metrics counted per write', () => {
  it('render exactly as prom-client renders the same counts and observations (seed 42)', async () => {
    console.log('# seed 42');
    const random = new Prng(42);
    const ours = new Registry();
    const theirs = new Registry();
    const writes = new PairCounter('t_writes_total', 'writes', ['ack', 'outcome'], ours);
    const latency = new LabelledHistogram('t_latency_seconds', 'latency', 'ack', buckets, ours);
    const promWrites = new Counter({ name: 't_writes_total', help: 'writes', labelNames: ['ack', 'outcome'], registers: [theirs] });
    const promLatency = new Histogram({ name: 't_latency_seconds', help: 'latency', labelNames: ['ack'], buckets, registers: [theirs] });
    const acks = ['leader', 'majority', 'all'];
    for (let i = 0; i < 2000; i++) {
      const ack = acks[random.int(0, 2)]!;
      const outcome = random.int(0, 9) === 0 ? 'timeout' : 'ok';
      writes.inc(ack, outcome);
      promWrites.inc({ ack, outcome });
      // Values on bucket bounds too: a value equal to a bound belongs to that bucket.
      const value = random.int(0, 3) === 0 ? buckets[random.int(0, buckets.length - 1)]! : random.int(0, 200_000) / 1_000_000;
      latency.observe(ack, value);
      promLatency.observe({ ack }, value);
    }
    const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '').sort();
    const rendered = lines(await ours.metrics());
    // Sums are floating point added in the same order, so equal to the last digit.
    assert.deepEqual(rendered, lines(await theirs.metrics()));
    assert.ok(rendered.some((line) => /^t_latency_seconds_bucket\{le="\+Inf",ack="all"\} \d+$/.test(line)));
    writes.reset();
    assert.ok(!(await ours.metrics()).includes('t_writes_total{'), 'reset forgets the counts');
  });
});

describe('the event-loop delay gauge', () => {
  it('reports how late the loop ran, less the sampling interval, and starts over at each scrape', async () => {
    const metrics = new Metrics();
    // A stand-in for perf_hooks' monitor: samples in nanoseconds between timer runs.
    let samples: number[] = [];
    const monitor = {
      get count() {
        return samples.length;
      },
      get max() {
        return Math.max(...samples);
      },
      percentile: (p: number) => [...samples].sort((a, b) => a - b)[Math.min(samples.length - 1, Math.ceil((p / 100) * samples.length) - 1)] as number,
      reset: () => {
        samples = [];
      },
    } as unknown as IntervalHistogram;
    metrics.watchEventLoop(monitor, 10);
    samples = [...Array.from({ length: 98 }, () => 10.5e6), 14e6, 40e6];
    const first = await metrics.registry.getSingleMetricAsString('tandem_event_loop_delay_seconds');
    assert.match(first, /\{quantile="0\.5"\} 0\.0005\d*\n/);
    assert.match(first, /\{quantile="0\.99"\} 0\.004\d*\n/);
    assert.match(first, /\{quantile="1"\} 0\.03\d*(\n|$)/);
    assert.equal(samples.length, 0, 'the monitor starts over');
    samples = [10e6, 9.9e6];
    const second = await metrics.registry.getSingleMetricAsString('tandem_event_loop_delay_seconds');
    assert.match(second, /\{quantile="1"\} 0(\n|$)/, 'a loop on time is 0 late');
  });
});
