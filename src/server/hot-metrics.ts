import type { Metric, Registry } from 'prom-client';

/**
 * Metrics counted once per write: a few number updates each, rendered by prom-client's registry
 * only when it is scraped. prom-client's own counter and histogram hash their label object on
 * every inc() and observe() (even through a child from labels()) and allocate a result: 3.5% of
 * the leader's CPU with 16-deep pipelines.
 */

interface MetricValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

/** What prom-client's registry reads of a metric when it renders the scrape. */
interface Rendered {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: MetricValue[];
}

abstract class HotMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    // The registry asks only for name, get() and (to merge registries) the rest of this shape.
    registry.registerMetric(this as unknown as Metric);
  }

  abstract get(): Promise<Rendered>;
  abstract reset(): void;
}

/** A counter with two labels, e.g. ack level and outcome. */
export class PairCounter extends HotMetric {
  private readonly counts = new Map<string, Map<string, number>>();

  constructor(
    name: string,
    help: string,
    private readonly labelNames: readonly [string, string],
    registry: Registry,
  ) {
    super(name, help, registry);
  }

  inc(first: string, second: string): void {
    let inner = this.counts.get(first);
    if (inner === undefined) this.counts.set(first, (inner = new Map()));
    inner.set(second, (inner.get(second) ?? 0) + 1);
  }

  async get(): Promise<Rendered> {
    const [a, b] = this.labelNames;
    const values: MetricValue[] = [];
    for (const [first, inner] of this.counts) for (const [second, value] of inner) values.push({ value, labels: { [a]: first, [b]: second } });
    return { name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values };
  }

  reset(): void {
    this.counts.clear();
  }
}

/** A histogram with one label, e.g. ack level; `buckets` are the upper bounds, ascending. */
export class LabelledHistogram extends HotMetric {
  private readonly series = new Map<string, { readonly counts: Float64Array; sum: number; count: number }>();

  constructor(
    name: string,
    help: string,
    private readonly labelName: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, registry);
  }

  observe(label: string, value: number): void {
    let series = this.series.get(label);
    if (series === undefined) this.series.set(label, (series = { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }));
    const buckets = this.buckets;
    let bucket = 0;
    while (bucket < buckets.length && value > buckets[bucket]!) bucket++;
    series.counts[bucket]!++;
    series.sum += value;
    series.count++;
  }

  async get(): Promise<Rendered> {
    const values: MetricValue[] = [];
    for (const [label, { counts, sum, count }] of this.series) {
      let cumulative = 0;
      for (let bucket = 0; bucket <= this.buckets.length; bucket++) {
        cumulative += counts[bucket]!;
        const le = bucket < this.buckets.length ? this.buckets[bucket]! : '+Inf';
        values.push({ value: cumulative, labels: { le, [this.labelName]: label }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: sum, labels: { [this.labelName]: label }, metricName: `${this.name}_sum` });
      values.push({ value: count, labels: { [this.labelName]: label }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  reset(): void {
    this.series.clear();
  }
}
