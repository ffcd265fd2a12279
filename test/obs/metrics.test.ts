// The metrics an operator reads: one prefix, decisions as {outcome,gate,code}, rate-limit outcomes per final
// answer, conflict denials by rule, JWKS freshness and keys, token-cache hits, publishes, build info.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Metrics, PREFIX } from '../../src/obs/metrics.js';
import { buildApp, type TestApp } from '../helpers/app.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { freePort } from '../helpers/net.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';
import { parseMetrics, scrape, total } from '../helpers/prom.js';

let key: TestKey;
let jwksServer: JwksServer;
let app: TestApp;
const ADMIN = 'metrics-admin-token-0123456789';

beforeAll(async () => {
  key = await makeKey('ES256');
  jwksServer = await startJwksServer(jwks(key).keys);
  app = await buildApp(
    `
store: { url: memory }
auth: { jwksUrl: "${jwksServer.url}", issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
rateLimit:
  rules:
    - { name: writes, methods: [PUT], path: "/api/*", limit: 100, window: 60s }
    - { name: shadowed, path: "/shadow/*", limit: 1, window: 60s, mode: shadow }
    - { name: tight, path: "/tight/*", limit: 1, window: 60s }
conflict:
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
    { adminToken: ADMIN },
  );
  app.deps.verifier.start();
  for (let i = 0; i < 100 && !app.deps.verifier.ready; i++) await new Promise((r) => setTimeout(r, 20));
  expect(app.deps.verifier.ready).toBe(true);
});
afterAll(async () => {
  await app.close();
  await jwksServer.close();
});

describe('names', () => {
  test('every metric the gate defines starts with conflict_gate_; only Node\'s own keep theirs', async () => {
    const names = (await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name);
    const ours = names.filter((n) => !/^(process_|nodejs_)/.test(n));
    expect(ours.length).toBeGreaterThan(15);
    expect(ours.filter((n) => !n.startsWith(PREFIX))).toEqual([]);
    for (const n of [
      'decisions_total', 'shadow_denials_total', 'request_duration_seconds', 'ratelimit_decisions_total', 'ratelimit_insurance_total',
      'conflict_denials_total', 'store_errors_total', 'store_up', 'degraded', 'jwks_refresh_total', 'jwks_last_success_timestamp_seconds',
      'jwks_keys', 'token_cache_total', 'publish_total', 'replays_total', 'config_reloads_total', 'config_info', 'build_info', 'log_lines_dropped_total',
    ]) expect(names).toContain(PREFIX + n);
  });

  test('build_info carries the package version and the Node version', async () => {
    const m = await scrape(app);
    const build = m.find((s) => s.name === 'conflict_gate_build_info')!;
    expect(build.labels).toEqual({ version: '0.1.0', node: process.versions.node });
    expect(build.value).toBe(1);
  });
});

describe('decisions', () => {
  test('an allow is an outcome (gate and code empty); a denial names its gate and code', async () => {
    const m0 = await scrape(app);
    await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(key)}` });
    await app.auth('GET', '/x');
    const m1 = await scrape(app);
    const d = (labels: Record<string, string>) => total(m1, 'conflict_gate_decisions_total', labels) - total(m0, 'conflict_gate_decisions_total', labels);
    expect(d({ outcome: 'allow', gate: '', code: '' })).toBe(1);
    expect(d({ outcome: 'deny', gate: 'auth', code: 'missing_token' })).toBe(1);
    expect(m1.filter((s) => s.name === 'conflict_gate_decisions_total' && s.labels.gate === 'pipeline')).toEqual([]);
    expect(total(m1, 'conflict_gate_request_duration_seconds_count', { outcome: 'deny' })).toBeGreaterThan(0);
  });

  test('a write the rate limit let through and the conflict gate refused is denied_later, not allowed', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'writer' })}` };
    await app.deps.store.publish('orders:1', '5');
    const m0 = await scrape(app);
    expect((await app.auth('PUT', '/api/orders/1', h)).status).toBe(428);
    expect((await app.auth('PUT', '/api/orders/1', { ...h, 'If-Match': '"4"' })).status).toBe(412);
    expect((await app.auth('PUT', '/api/orders/1', { ...h, 'If-Match': '"5"' })).status).toBe(200);
    const m1 = await scrape(app);
    const d = (outcome: string) => total(m1, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome }) - total(m0, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome });
    expect(d('denied_later')).toBe(2);
    expect(d('allowed')).toBe(1);
    const c = (code: string) => total(m1, 'conflict_gate_conflict_denials_total', { rule: '/api/orders/:id', code }) - total(m0, 'conflict_gate_conflict_denials_total', { rule: '/api/orders/:id', code });
    expect(c('precondition_required')).toBe(1);
    expect(c('precondition_failed')).toBe(1);
  });

  test('limited and shadow_limited: a 429 and a shadowed one are told apart', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'busy' })}` };
    for (let i = 0; i < 2; i++) await app.auth('GET', '/tight/1', h);
    for (let i = 0; i < 2; i++) await app.auth('GET', '/shadow/1', h);
    const m = await scrape(app);
    expect(total(m, 'conflict_gate_ratelimit_decisions_total', { rule: 'tight', outcome: 'limited' })).toBe(1);
    expect(total(m, 'conflict_gate_ratelimit_decisions_total', { rule: 'shadowed', outcome: 'shadow_limited' })).toBe(1);
    expect(total(m, 'conflict_gate_shadow_denials_total', { gate: 'ratelimit', code: 'rate_limited' })).toBe(1);
    expect(total(m, 'conflict_gate_ratelimit_decisions_total', { rule: 'shadowed', outcome: 'allowed' })).toBe(1);
  });
});

describe('JWKS and the token cache (TokenVerifier.stats())', () => {
  test('keys loaded, when they were fetched, fetches by result', async () => {
    const m = await scrape(app);
    expect(total(m, 'conflict_gate_jwks_keys')).toBe(1);
    const at = total(m, 'conflict_gate_jwks_last_success_timestamp_seconds');
    expect(at).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(at).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(total(m, 'conflict_gate_jwks_refresh_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
  });

  test('a token seen twice: one miss (a signature check), then a hit', async () => {
    const t = await sign(key, { sub: 'cached' });
    const m0 = await scrape(app);
    await app.auth('GET', '/c', { Authorization: `Bearer ${t}` });
    await app.auth('GET', '/c', { Authorization: `Bearer ${t}` });
    const m1 = await scrape(app);
    const d = (result: string) => total(m1, 'conflict_gate_token_cache_total', { result }) - total(m0, 'conflict_gate_token_cache_total', { result });
    expect(d('miss')).toBe(1);
    expect(d('hit')).toBe(1);
  });
});

describe('publishes and the store', () => {
  test('admin PUT /versions: ok and stale are counted', async () => {
    const put = (version: string) => app.admin.request('/versions/orders:9', { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ version }) });
    const m0 = await scrape(app);
    expect((await put('3')).status).toBe(200);
    expect((await put('2')).status).toBe(409);
    const m1 = await scrape(app);
    expect(total(m1, 'conflict_gate_publish_total', { result: 'ok' }) - total(m0, 'conflict_gate_publish_total', { result: 'ok' })).toBe(1);
    expect(total(m1, 'conflict_gate_publish_total', { result: 'stale' }) - total(m0, 'conflict_gate_publish_total', { result: 'stale' })).toBe(1);
  });

  test('a store that does not answer: store_error outcomes and store errors counted, store_up 0', async () => {
    const dead = await freePort();
    const down = await buildApp(
      `
store: { url: "redis://127.0.0.1:${dead}/0", keyPrefix: "cgtest:metrics-down:" }
auth: { jwksFile: jwks.json, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
rateLimit: { onStoreError: allow, rules: [{ name: all, limit: 10, window: 60s }] }
`,
      { files: { 'jwks.json': JSON.stringify(jwks(key)) } },
    );
    try {
      expect((await down.auth('GET', '/x', { Authorization: `Bearer ${await sign(key)}` })).status).toBe(200);
      const m = await scrape(down);
      expect(total(m, 'conflict_gate_ratelimit_decisions_total', { rule: 'all', outcome: 'store_error' })).toBe(1);
      expect(total(m, 'conflict_gate_store_errors_total', { op: 'ratelimit' })).toBe(1);
      expect(total(m, 'conflict_gate_store_up')).toBe(0);
      expect(total(m, 'conflict_gate_degraded')).toBe(1);
    } finally {
      await down.close();
    }
  });

  test('an nginx replay evaluated without its first answer (it takes nothing) still counts the store errors it meets', async () => {
    const dead = await freePort();
    const down = await buildApp(
      `
store: { url: "redis://127.0.0.1:${dead}/0", keyPrefix: "cgtest:metrics-replay-down:" }
auth: { jwksFile: jwks.json, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
conflict:
  onStoreError: allow
  claim: { enabled: true, lease: 5s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
      { files: { 'jwks.json': JSON.stringify(jwks(key)) }, adminToken: ADMIN },
    );
    try {
      const h = { Authorization: `Bearer ${await sign(key)}`, 'If-Match': '"3"' };
      // Explain is not traffic: the same write explained through the admin API counts nothing.
      const explained = await down.admin.request('/explain', { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ method: 'PUT', uri: '/api/orders/1', headers: h }) });
      expect(explained.status).toBe(200);
      expect(total(await scrape(down), 'conflict_gate_store_errors_total')).toBe(0);
      // The replay of a first call whose answer was not kept: evaluated, never a 2xx (nginx would answer the client with it).
      expect((await down.auth('PUT', '/api/orders/1', { ...h, 'X-Request-Id': 'req-replay-dead-01', 'X-Auth-Replay': '409' })).status).toBe(503);
      const m1 = await scrape(down);
      // counted under the read it made: it peeks at the lease, never takes it
      expect(total(m1, 'conflict_gate_store_errors_total', { op: 'peek_claim' })).toBe(1);
      expect(total(m1, 'conflict_gate_store_errors_total', { op: 'claim' })).toBe(0);
      // and live traffic counts as before
      expect((await down.auth('PUT', '/api/orders/1', h)).status).toBe(200);
      const m2 = await scrape(down);
      expect(total(m2, 'conflict_gate_store_errors_total', { op: 'claim' })).toBe(1);
      expect(total(m2, 'conflict_gate_store_errors_total')).toBe(2);
    } finally {
      await down.close();
    }
  });
});

test('parseMetrics reads labels with escaped quotes (so a pass here means something)', () => {
  expect(parseMetrics('a_total{x="a\\"b",y=""} 3\n# HELP a_total x\n')).toEqual([{ name: 'a_total', labels: { x: 'a\\"b', y: '' }, value: 3 }]);
});
