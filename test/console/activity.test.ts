// The console's activity: the 15-minute window rolls, every list stays bounded, and it is fed by the same record() as /metrics.
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { deny, type Deny } from '../../src/core/decision.js';
import { withMode, type Step } from '../../src/core/step.js';
import { Activity, BUCKET_MS, CONFLICT_KEYS_TRACKED, RECENT_DENIALS, RECENT_SHADOWED, TEXT_MAX, WINDOW_BUCKETS, activityOf, recordActivity, type SeriesSnapshot } from '../../src/obs/activity.js';
import { createLogger } from '../../src/obs/log.js';
import { Metrics } from '../../src/obs/metrics.js';
import { DecisionRecorder, type DecisionEvent } from '../../src/obs/recorder.js';
import { decisionCounts } from './metrics-text.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const allow = (): DecisionEvent => ({ outcome: 'allow', status: 200, shadowed: [], steps: [], method: 'GET', path: '/api/x', clientIp: '10.0.0.1', clientId: 'alice', seconds: 0.001 });

function denied(d: Deny, step?: Step, more: Partial<DecisionEvent> = {}): DecisionEvent {
  return { outcome: 'deny', deny: d, status: d.status ?? 400, shadowed: [], steps: step ? [step] : [], method: 'PUT', path: '/api/orders/42', clientIp: '10.0.0.1', clientId: 'alice', seconds: 0.001, ...more };
}

/** A conflict denial as the conflict gate's step carries it: the rule, the key it read. */
function conflictDenial(key: string, code: 'precondition_failed' | 'stale_client_version' | 'write_in_progress' = 'precondition_failed', mode: 'enforce' | 'shadow' = 'enforce') {
  const d = deny('conflict', code, 'stale', { status: code === 'precondition_failed' ? 412 : 409 });
  const step = withMode('conflict', '/api/orders/:id', mode, d, { key, version: '7' });
  return { d, step };
}

const byId = (series: SeriesSnapshot[]) => Object.fromEntries(series.map((s) => [`${s.outcome}/${s.gate}/${s.code}`, s]));

describe('decision rates over the last 15 minutes', () => {
  test('each decision lands in its 10 s bucket; one that is 15 minutes old leaves the window but stays in the total', () => {
    const c = clock();
    const a = new Activity(c.now);
    a.record(allow());
    a.record(denied(deny('auth', 'missing_token', 'no token')));
    c.advance(BUCKET_MS);
    a.record(allow());
    let s = byId(a.snapshot().series);
    expect(s['allow//']!.counts).toHaveLength(WINDOW_BUCKETS);
    expect(s['allow//']!.counts.slice(-2)).toEqual([1, 1]);
    expect(s['deny/auth/missing_token']!.counts.slice(-2)).toEqual([1, 0]);
    expect(s['allow//']!.total).toBe(2);

    c.advance((WINDOW_BUCKETS - 2) * BUCKET_MS); // the first bucket is now the oldest one still shown
    s = byId(a.snapshot().series);
    expect(s['deny/auth/missing_token']!.counts.reduce((x, y) => x + y)).toBe(1);
    c.advance(BUCKET_MS);
    s = byId(a.snapshot().series);
    expect(s['deny/auth/missing_token']!.counts.reduce((x, y) => x + y)).toBe(0);
    expect(s['deny/auth/missing_token']!.total).toBe(1);
    expect(s['allow//']!.counts.reduce((x, y) => x + y)).toBe(1);
  });

  test('a bucket reused after the ring wrapped starts from zero', () => {
    const c = clock();
    const a = new Activity(c.now);
    for (let i = 0; i < 5; i++) a.record(allow());
    c.advance(WINDOW_BUCKETS * BUCKET_MS); // same ring slot, 15 minutes later
    a.record(allow());
    const s = byId(a.snapshot().series);
    expect(s['allow//']!.counts.reduce((x, y) => x + y)).toBe(1);
    expect(s['allow//']!.counts.at(-1)).toBe(1);
    expect(s['allow//']!.total).toBe(6);
  });

  test('`from` is the start of the oldest bucket shown, and the newest bucket holds now', () => {
    const c = clock(T0 + 3_500);
    const snap = new Activity(c.now).snapshot();
    expect(snap.from).toBe(Math.floor((T0 + 3_500) / BUCKET_MS) * BUCKET_MS - (WINDOW_BUCKETS - 1) * BUCKET_MS);
    expect(snap.now - snap.from).toBeLessThan(WINDOW_BUCKETS * BUCKET_MS);
  });
});

describe('bounded lists', () => {
  test(`the last ${RECENT_DENIALS} denials are kept, newest first, with rule, method, path and client`, () => {
    const c = clock();
    const a = new Activity(c.now);
    const rule = withMode('ratelimit', 'writes', 'enforce', deny('ratelimit', 'rate_limited', 'over'), { bucket: 'c:alice' });
    for (let i = 0; i < RECENT_DENIALS + 50; i++) {
      c.advance(1);
      a.record(denied(rule.decision as Deny, rule, { path: `/api/n/${i}`, status: 429 }));
    }
    const list = a.snapshot().denials;
    expect(list).toHaveLength(RECENT_DENIALS);
    expect(list[0]).toMatchObject({ gate: 'ratelimit', code: 'rate_limited', status: 429, rule: 'writes', method: 'PUT', path: `/api/n/${RECENT_DENIALS + 49}`, clientId: 'alice', clientIp: '10.0.0.1' });
    expect(list.at(-1)!.path).toBe('/api/n/50');
  });

  test('a denial before any gate ran (a bad forwarded request) has no rule', () => {
    const a = new Activity();
    a.record(denied(deny('forward', 'bad_forward_request', 'no method'), undefined, { method: undefined, path: undefined, clientId: undefined }));
    expect(a.snapshot().denials[0]).toMatchObject({ gate: 'forward', code: 'bad_forward_request', status: 400, rule: null, method: null, path: null, clientId: null });
  });

  test(`client-sent text is cut at ${TEXT_MAX} characters`, () => {
    const a = new Activity();
    a.record(denied(deny('auth', 'missing_token', 'x'), undefined, { path: `/${'a'.repeat(5000)}`, clientId: 'b'.repeat(5000) }));
    const d = a.snapshot().denials[0]!;
    expect(d.path!.length).toBe(TEXT_MAX + 1);
    expect(d.clientId!.length).toBe(TEXT_MAX + 1);
  });

  test(`shadowed denials: counted by gate and code, the last ${RECENT_SHADOWED} listed with the rule that would have refused`, () => {
    const a = new Activity();
    const d = deny('ratelimit', 'rate_limited', 'over', { status: 429 });
    const step = withMode('ratelimit', 'soft', 'shadow', d, {});
    for (let i = 0; i < RECENT_SHADOWED + 5; i++) a.record({ ...allow(), shadowed: [step.shadowed!], steps: [step] });
    const snap = a.snapshot();
    expect(byId(snap.series)['shadow/ratelimit/rate_limited']!.total).toBe(RECENT_SHADOWED + 5);
    expect(byId(snap.series)['allow//']!.total).toBe(RECENT_SHADOWED + 5);
    expect(snap.shadowed).toHaveLength(RECENT_SHADOWED);
    expect(snap.shadowed[0]).toMatchObject({ gate: 'ratelimit', code: 'rate_limited', status: 429, rule: 'soft' });
    expect(snap.denials).toEqual([]);
  });
});

describe('hottest resources by conflict denials', () => {
  test('counted by resource key with rule and codes; shadowed ones apart; a store outage is no conflict', () => {
    const a = new Activity();
    for (let i = 0; i < 3; i++) {
      const { d, step } = conflictDenial('orders:42');
      a.record(denied(d, step));
    }
    const stale = conflictDenial('orders:42', 'stale_client_version');
    a.record(denied(stale.d, stale.step));
    const other = conflictDenial('orders:7');
    a.record(denied(other.d, other.step));
    const shadow = withMode('conflict', '/api/orders/:id', 'shadow', deny('conflict', 'precondition_failed', 'stale'), { key: 'orders:7' });
    a.record({ ...allow(), shadowed: [shadow.shadowed!], steps: [shadow] });
    a.record({ ...allow(), shadowed: [shadow.shadowed!], steps: [shadow] });
    const outage = withMode('conflict', '/api/orders/:id', 'enforce', deny('conflict', 'store_unavailable', 'down'), { key: 'orders:99' });
    a.record(denied(outage.decision as Deny, outage));

    const top = a.snapshot().conflicts;
    expect(top).toEqual([
      { key: 'orders:42', rule: '/api/orders/:id', denied: 4, shadowed: 0, codes: { precondition_failed: 3, stale_client_version: 1 }, error: 0, lastAt: expect.any(Number) },
      { key: 'orders:7', rule: '/api/orders/:id', denied: 1, shadowed: 2, codes: { precondition_failed: 3 }, error: 0, lastAt: expect.any(Number) },
    ]);
  });

  test(`bounded to ${CONFLICT_KEYS_TRACKED} keys; a hot key survives a flood of one-off keys`, () => {
    const a = new Activity();
    for (let i = 0; i < 5000; i++) {
      const once = conflictDenial(`orders:once-${i}`);
      a.record(denied(once.d, once.step));
      if (i % 20 === 0) {
        const hot = conflictDenial('orders:hot');
        a.record(denied(hot.d, hot.step));
      }
    }
    const top = a.snapshot(CONFLICT_KEYS_TRACKED + 10).conflicts;
    expect(top.length).toBe(CONFLICT_KEYS_TRACKED);
    expect(top[0]!.key).toBe('orders:hot');
    // Space-Saving: what it counted is a lower bound, with the inherited count as the bound of its error.
    expect(top[0]!.denied).toBeLessThanOrEqual(250);
    expect(top[0]!.denied + top[0]!.error).toBeGreaterThanOrEqual(250);
  });
});

describe('fed by the recorder that counts /metrics', () => {
  const silent = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

  test('every recorded decision is in both, with the same counts', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const activity = new Activity();
    const recorder = recordActivity(new DecisionRecorder(metrics, silent()), activity);
    const events: DecisionEvent[] = [allow(), allow(), denied(deny('auth', 'missing_token', 'x'), undefined, { status: 401 })];
    const shadow = withMode('ratelimit', 'soft', 'shadow', deny('ratelimit', 'rate_limited', 'over'), {});
    events.push({ ...allow(), shadowed: [shadow.shadowed!], steps: [shadow] });
    const { d, step } = conflictDenial('orders:1');
    events.push(denied(d, step, { status: 412 }));
    for (const e of events) recorder.record(e);
    recorder.replayServed();

    const fromActivity = Object.fromEntries(activity.snapshot().series.filter((s) => s.total > 0).map((s) => [`${s.outcome}/${s.gate}/${s.code}`, s.total]));
    expect(fromActivity).toEqual({ 'allow//': 3, 'deny/auth/missing_token': 1, 'shadow/ratelimit/rate_limited': 1, 'deny/conflict/precondition_failed': 1, 'replay//': 1 });
    expect(decisionCounts(await metrics.registry.metrics())).toEqual(fromActivity);
  });

  test('one activity per Metrics registry, so both listeners reach the same one', () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(activityOf(m)).toBe(activityOf(m));
    expect(activityOf(new Metrics({ defaultMetrics: false }))).not.toBe(activityOf(m));
  });
});
