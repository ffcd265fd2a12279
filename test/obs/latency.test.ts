// The tallied latency histogram against prom-client's own Histogram: the same observations, the same exposition.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedHistogram } from '../../src/obs/latency.js';

const BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const NAME = 'conflict_gate_request_duration_seconds';
const HELP = 'Time to answer /auth, by outcome.';

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['outcome'], buckets: BUCKETS, registers: [theirs] });
  const tallied = new TalliedHistogram<'allow' | 'deny'>(NAME, HELP, 'outcome', BUCKETS).registerIn(ours);
  const observe = { allow: tallied.labels('allow'), deny: tallied.labels('deny') };
  const both = (outcome: 'allow' | 'deny', v: number) => {
    reference.labels(outcome).observe(v);
    observe[outcome](v);
  };
  return { theirs, ours, both, reference, tallied };
}

/** Values on and around every bound, below the first, above the last, seeded. */
function samples(n: number): number[] {
  let x = 12345;
  const out: number[] = [0, ...BUCKETS, ...BUCKETS.map((b) => b * (1 + 1e-9)), 2, 30];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push((x / 2 ** 31) ** 4 * 1.5);
  }
  return out;
}

function withoutExemplars<T extends { values: object[] }>(metrics: T[]): T[] {
  return metrics.map((m) => ({ ...m, values: m.values.map((v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'exemplar'))) }));
}

describe('TalliedHistogram', () => {
  it('writes the same /metrics text as prom-client on the same observations', async () => {
    const { theirs, ours, both } = pair();
    const vs = samples(5000);
    // allow first: a label's series comes in the order it was first observed (prom-client) or asked for (ours).
    vs.forEach((v, i) => both(i % 7 === 3 ? 'deny' : 'allow', v));
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toMatch(/^conflict_gate_request_duration_seconds_bucket\{le="0.001",outcome="allow"\} \d+$/m);
    expect(text).toContain(`conflict_gate_request_duration_seconds_count{outcome="allow"} ${vs.filter((_, i) => i % 7 !== 3).length}`);
  });

  it('gives the same JSON, shows a label only once observed, and resets as prom-client does', async () => {
    const { theirs, ours, both, reference, tallied } = pair();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).not.toContain('outcome=');
    both('allow', 0.0003);
    expect(await ours.metrics()).not.toContain('outcome="deny"');
    both('deny', 0.7);
    // prom-client adds an `exemplar` member (null: exemplars are off); the rest is the same.
    expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
    reference.reset();
    tallied.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    both('allow', 0.002);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
