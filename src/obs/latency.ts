// A histogram counted as plain numbers per request and turned into prom-client's values only when /metrics is read.
import type { Metric, MetricObjectWithValues, MetricValueWithName } from 'prom-client';

/** One label value's counts: observations per bucket (not cumulative), their sum and count. */
interface Series {
  buckets: Float64Array;
  sum: number;
  count: number;
}

type Values = MetricObjectWithValues<MetricValueWithName<string>>;

/**
 * A histogram with one label, for /auth's latency (one observation per decision). prom-client's
 * Histogram#observe builds a label object, validates it and hashes it into a string on every call,
 * then looks the bucket up by its bound as a property name: ~1 % of the gate's CPU under the
 * realistic mix. Here an observation is a bucket search and three additions; the values are built
 * at scrape time in the shape prom-client's own histogram gives them, so the registry writes the
 * same text (test/obs/latency.test.ts compares the two on the same observations). A label value
 * appears once it has been observed, as with prom-client (in the order labels() was first called).
 */
export class TalliedHistogram<L extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<L, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
  ) {}

  /**
   * The observe function for one label value (the same series however often it is asked for).
   * Values are the caller's measured durations, always finite: unlike prom-client's, it does not
   * check (a NaN would land in the first bucket and make the sum NaN).
   */
  labels(value: L): (seconds: number) => void {
    let s = this.series.get(value);
    if (!s) this.series.set(value, (s = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    const series = s;
    const bounds = this.bounds;
    return (v) => {
      let i = 0;
      while (i < bounds.length && v > bounds[i]!) i++;
      series.buckets[i]! += 1;
      series.sum += v;
      series.count += 1;
    };
  }

  /** Registers it like a prom-client metric (the registry reads name, help, type, getForPromString() and get(), and calls reset()). */
  registerIn(registry: { registerMetric(m: Metric): void }): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  /** What the registry writes /metrics from: each series' label as a shared label, as prom-client's Histogram gives it. */
  getForPromString(): Values {
    const values: MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [label, s] of this.series) {
      if (s.count === 0) continue;
      const shared = { [this.labelName]: label };
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.buckets[i]!;
        values.push(value({ le }, acc, bucket, shared));
      });
      values.push(value({ le: '+Inf' }, s.count, bucket, shared), value({}, s.sum, `${this.name}_sum`, shared), value({}, s.count, `${this.name}_count`, shared));
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values } as unknown as Values;
  }

  /** The same with the shared label merged into each value's labels (getMetricsAsJSON). */
  get(): Values {
    const data = this.getForPromString();
    data.values = data.values.map((v) => {
      const { sharedLabels, labels, ...rest } = v as MetricValueWithName<string> & { sharedLabels: Record<string, string> };
      return { ...rest, labels: { ...labels, ...sharedLabels } };
    });
    return data;
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

function value(labels: Record<string, string | number>, v: number, metricName: string, sharedLabels: Record<string, string>): MetricValueWithName<string> {
  return { labels, sharedLabels, value: v, metricName } as MetricValueWithName<string>;
}
