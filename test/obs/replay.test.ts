// The nginx replay protocol (http/replay.ts): a marked first call keeps its denial, the replay is served from it;
// one evaluation, one count and one log line per client request; an unmarked X-Request-Id keeps nothing.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ReplayCache } from '../../src/http/replay.js';
import { keyLayout } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory.js';
import { buildApp, type TestApp } from '../helpers/app.js';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';
import { scrape, total } from '../helpers/prom.js';

let key: TestKey;
let app: TestApp;
let store: MemoryStore;
let token: string;

beforeAll(async () => {
  key = await makeKey('ES256');
  token = await sign(key);
  store = new MemoryStore();
  app = await buildApp(
    `
server: { trustedProxies: ["127.0.0.0/8"] }
store: { url: memory }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["/public/*"]
  requireScopes: [{ path: "/admin/*", scopes: [admin] }]
rateLimit: { rules: [{ name: r, limit: 2, window: 60s }] }
conflict:
  claim: { enabled: true, lease: 5s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
    { files: { 'jwks.json': JSON.stringify(jwks(key)) }, store },
  );
  await store.publish('orders:1', '3');
});
afterAll(() => app.close());

const first = (id: string) => ({ 'X-Request-Id': id, 'X-Auth-Replay': 'first' });
const replay = (id: string, status = '403') => ({ 'X-Request-Id': id, 'X-Auth-Replay': status });
const linesFor = (id: string) => app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === id);

describe('a marked first call and its replay', () => {
  test('a 409: the first call says 403 (nginx logs no error for it), the replay gets the real answer, served from the kept one', async () => {
    const w = { Authorization: `Bearer ${token}`, 'If-Match': '"3"' };
    expect((await app.auth('PUT', '/api/orders/1', { ...w, 'X-Request-Id': 'req-lease-0001' })).status).toBe(200); // takes the lease
    const m0 = await scrape(app);
    const firstCall = await app.auth('PUT', '/api/orders/1', { ...w, ...first('req-aaaa-0002'), 'X-Forwarded-For': '198.51.100.3' });
    expect(firstCall.status).toBe(403);
    const body = await firstCall.text();
    expect(JSON.parse(body)).toMatchObject({ code: 'write_in_progress', status: 409 });
    const second = await app.auth('PUT', '/api/orders/1', { ...w, ...replay('req-aaaa-0002'), 'X-Forwarded-For': '198.51.100.3' });
    expect(second.status).toBe(409);
    expect(await second.text()).toBe(body);
    expect(second.headers.get('retry-after')).toBe(firstCall.headers.get('retry-after'));
    const m1 = await scrape(app);
    const delta = (name: string, labels: Record<string, string>) => total(m1, name, labels) - total(m0, name, labels);
    expect(delta('conflict_gate_decisions_total', { outcome: 'deny', code: 'write_in_progress' })).toBe(1);
    expect(delta('conflict_gate_decisions_total', {})).toBe(1);
    expect(delta('conflict_gate_replays_total', { result: 'served' })).toBe(1);
    expect(delta('conflict_gate_conflict_denials_total', { rule: '/api/orders/:id', code: 'write_in_progress' })).toBe(1);
    expect(linesFor('req-aaaa-0002')).toHaveLength(1);
    await store.publish('orders:1', '3'); // ends the lease
  });

  test('a replayed 429 spends no second point and is not a second decision', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'replayer' })}` };
    expect((await app.auth('GET', '/a', { ...h, ...first('req-bbbb-0001') })).status).toBe(200);
    expect((await app.auth('GET', '/a', { ...h, ...first('req-bbbb-0002') })).status).toBe(200);
    const m0 = await scrape(app);
    expect((await app.auth('GET', '/a', { ...h, ...first('req-bbbb-0003') })).status).toBe(403);
    const r = await app.auth('GET', '/a', { ...h, ...replay('req-bbbb-0003') });
    expect(r.status).toBe(429);
    expect(await r.json()).toMatchObject({ code: 'rate_limited' });
    const m1 = await scrape(app);
    expect(total(m1, 'conflict_gate_ratelimit_decisions_total', { rule: 'r' }) - total(m0, 'conflict_gate_ratelimit_decisions_total', { rule: 'r' })).toBe(1);
    expect(total(m1, 'conflict_gate_decisions_total', { code: 'rate_limited' }) - total(m0, 'conflict_gate_decisions_total', { code: 'rate_limited' })).toBe(1);
    // kept in the store too: a replay that reaches another replica is served the same
    expect(await store.recall('req-bbbb-0003')).not.toBeNull();
  });

  test.each([
    ['401 missing_token', '/x', {}, 401, 401],
    ['403 insufficient_scope', '/admin/x', { scope: 'other' }, 403, 403],
    ['400 bad_forward_request', '/api/%2F', {}, 400, 403],
  ] as const)('%s: one decision and one log line; kept in memory only (no store write for an auth denial)', async (_n, path, claims, status, firstStatus) => {
    const id = `req-auth-${status}-${path.length}`;
    const h: Record<string, string> = 'scope' in claims ? { Authorization: `Bearer ${await sign(key, { scope: claims.scope })}` } : {};
    const m0 = await scrape(app);
    const f = await app.auth('GET', path, { ...h, ...first(id) });
    expect(f.status).toBe(firstStatus);
    const r = await app.auth('GET', path, { ...h, ...replay(id, String(firstStatus)) });
    expect(r.status).toBe(status);
    expect(r.headers.get('www-authenticate')).toBe(f.headers.get('www-authenticate'));
    const m1 = await scrape(app);
    expect(total(m1, 'conflict_gate_decisions_total') - total(m0, 'conflict_gate_decisions_total')).toBe(1);
    expect(total(m1, 'conflict_gate_replays_total', { result: 'served' }) - total(m0, 'conflict_gate_replays_total', { result: 'served' })).toBe(1);
    expect(linesFor(id)).toHaveLength(1);
    expect(await store.recall(id)).toBeNull();
  });

  test('a kept denial is only served for the same method and URI', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'other' })}` };
    expect((await app.auth('GET', '/b', { ...h, ...first('req-dddd-0001') })).status).toBe(200);
    expect((await app.auth('GET', '/b', { ...h, ...first('req-dddd-0002') })).status).toBe(200);
    expect((await app.auth('GET', '/b', { ...h, ...first('req-dddd-0003') })).status).toBe(403); // kept 429
    const m0 = await scrape(app);
    const elsewhere = await app.auth('GET', '/c', { ...h, ...replay('req-dddd-0003') });
    expect(elsewhere.status).toBe(429); // over the limit anyway, but evaluated afresh
    const m1 = await scrape(app);
    expect(total(m1, 'conflict_gate_replays_total', { result: 'evaluated' }) - total(m0, 'conflict_gate_replays_total', { result: 'evaluated' })).toBe(1);
    expect(total(m1, 'conflict_gate_decisions_total') - total(m0, 'conflict_gate_decisions_total')).toBe(1);
    const same = await app.auth('GET', '/b', { ...h, ...replay('req-dddd-0003') });
    expect(same.status).toBe(429);
    const m2 = await scrape(app);
    expect(total(m2, 'conflict_gate_replays_total', { result: 'served' }) - total(m1, 'conflict_gate_replays_total', { result: 'served' })).toBe(1);
    expect(total(m2, 'conflict_gate_decisions_total') - total(m1, 'conflict_gate_decisions_total')).toBe(0);
  });
});

describe('outside the protocol', () => {
  test('an X-Request-Id without the first-call marker (Caddy sends one on every call) keeps nothing, anywhere', async () => {
    const before = app.deps.replay.size;
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'caddy-client' })}` };
    for (let i = 0; i < 4; i++) await app.auth('GET', '/caddy', { ...h, 'X-Request-Id': `caddy-uuid-000${i}` });
    for (let i = 0; i < 3; i++) await app.auth('GET', '/nokeep', { 'X-Request-Id': `caddy-uuid-100${i}` });
    expect(app.deps.replay.size).toBe(before);
    for (const id of ['caddy-uuid-0002', 'caddy-uuid-0003', 'caddy-uuid-1000']) expect(await store.recall(id)).toBeNull();
    // and their statuses are the real ones (no first-call mapping)
    expect((await app.auth('GET', '/caddy', { ...h, 'X-Request-Id': 'caddy-uuid-0009' })).status).toBe(429);
  });

  test('the replay marker grants nothing: without a kept denial the request is evaluated and counted; an allow is never a 2xx (nginx would answer the client with it, the API unasked)', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'sneaky' })}` };
    const m0 = await scrape(app);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await app.auth('GET', '/a', { ...h, ...replay(`req-cccc-000${i}`, '429') })).status);
    expect(statuses).toEqual([503, 503, 429, 429]);
    const m1 = await scrape(app);
    expect(total(m1, 'conflict_gate_decisions_total') - total(m0, 'conflict_gate_decisions_total')).toBe(4);
    expect(total(m1, 'conflict_gate_replays_total', { result: 'evaluated' }) - total(m0, 'conflict_gate_replays_total', { result: 'evaluated' })).toBe(4);
    const lost = await app.auth('GET', '/lost-first', { Authorization: `Bearer ${await sign(key, { sub: 'lost-first' })}`, ...replay('req-cccc-0100') });
    expect(lost.status).toBe(503);
    expect(lost.headers.get('retry-after')).toBe('1');
    expect(await lost.json()).toMatchObject({ status: 503, code: 'store_unavailable', retryAfter: 1 });
  });

  test('a replay evaluated without its first answer takes no lease: the write it answers 503 can be retried at once', async () => {
    // The first call timed out at nginx (its answer was never kept): nginx answers the client from
    // the replay, so the write cannot reach the API, and a lease taken for it would refuse the
    // client's retry with a 409 until the lease ran out.
    await store.publish('orders:2', '1');
    const w = { Authorization: `Bearer ${await sign(key, { sub: 'lost-lease' })}`, 'If-Match': '"1"' };
    const lost = await app.auth('PUT', '/api/orders/2', { ...w, ...replay('req-eeee-0001', '500') });
    expect(lost.status).toBe(503);
    expect(await lost.json()).toMatchObject({ code: 'store_unavailable' });
    expect((await app.auth('PUT', '/api/orders/2', { ...w, 'X-Request-Id': 'req-eeee-0002' })).status).toBe(200);
    // That retry holds the lease now; a replay (another client's: the limit is 2) is still refused as any write is while it is held.
    const other = { Authorization: `Bearer ${await sign(key, { sub: 'lost-lease-2' })}`, 'If-Match': '"1"' };
    const held = await app.auth('PUT', '/api/orders/2', { ...other, ...replay('req-eeee-0003', '500') });
    expect(held.status).toBe(409);
    expect(await held.json()).toMatchObject({ code: 'write_in_progress' });
    await store.publish('orders:2', '2'); // ends the lease
  });

  test('a request id that is not 8-128 of [A-Za-z0-9._:-] is not part of the protocol', async () => {
    const r = await app.auth('GET', '/nokeep2', { 'X-Request-Id': 'short', 'X-Auth-Replay': 'first' });
    expect(r.status).toBe(401);
    expect(await store.recall('short')).toBeNull();
  });
});

describe('ReplayCache', () => {
  test('holds at most maxLocal denials in memory, the oldest going first', async () => {
    let now = 0;
    const cache = new ReplayCache(new MemoryStore(() => now), 10_000, () => now, 3);
    const res = { status: 429, headers: {}, body: '{}' };
    for (const id of ['id-00000001', 'id-00000002', 'id-00000003', 'id-00000004']) cache.remember(id, 'f', res, false);
    expect(cache.size).toBe(3);
    expect(await cache.recall('id-00000001', 'f')).toBeNull();
    expect(await cache.recall('id-00000004', 'f')).toEqual(res);
    now = 10_001;
    expect(await cache.recall('id-00000004', 'f')).toBeNull();
  });
});

describe('a record in the store that this gate did not write', () => {
  // Through the CLI on a real socket and real Redis: a kept denial is read back from the store, and
  // anyone with access to it could have left something else under a request id.
  const raw = new Redis(SHARED_REDIS_URL);
  const prefix = uniquePrefix('replay-records');
  let g: RunningGate;
  beforeAll(async () => {
    g = await startGate({
      yaml: `
server: { trustedProxies: ["127.0.0.0/8"] }
store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}", commandTimeout: 2s }
auth: { secret: "replay-records-secret-0123456789abcdef", publicRoutes: ["/public/*"] }
`,
    });
    for (let i = 0; i < 50 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(async () => {
    await g.stop();
    await flushPrefix(raw, prefix);
    raw.disconnect();
  });

  const f = createHash('sha256').update('GET').update('\0').update('/public/x').digest('base64url');
  test.each<[string, unknown]>([
    ['a null header map', { f, s: 429, h: null, b: '' }],
    ['a status that is not a number', { f, s: 'abc', h: {}, b: '' }],
    ['a status that is no denial', { f, s: 200, h: {}, b: '' }],
    ['a body that is not a string', { f, s: 429, h: {}, b: 123 }],
    ['a header name that is no token', { f, s: 429, h: { 'Bad Header': 'x' }, b: '' }],
    ['a header value with CR LF', { f, s: 429, h: { 'Retry-After': 'a\r\nb' }, b: '' }],
    ['the fingerprint alone', { f }],
    ['JSON that is no object', 42],
  ])('%s: the replay is evaluated like any request, not left unanswered', async (_n, record) => {
    const id = `rec-${Math.random().toString(36).slice(2, 10)}`;
    await raw.set(keyLayout(prefix).replay(id), JSON.stringify(record), 'EX', 60);
    const res = await forward(g.url, 'GET', '/public/x', { 'X-Request-Id': id, 'X-Auth-Replay': '429' }, { signal: AbortSignal.timeout(3000) });
    // Evaluated: an allow, which a replay answers as 503 (nginx would give a 2xx to the client unproxied).
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'store_unavailable' });
  });

  test('a well-formed kept denial is still served', async () => {
    const id = 'rec-wellformed-1';
    await raw.set(keyLayout(prefix).replay(id), JSON.stringify({ f, s: 429, h: { 'Retry-After': '7', 'Content-Type': 'application/problem+json' }, b: '{"code":"rate_limited"}' }), 'EX', 60);
    const res = await forward(g.url, 'GET', '/public/x', { 'X-Request-Id': id, 'X-Auth-Replay': '429' }, { signal: AbortSignal.timeout(3000) });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ code: 'rate_limited' });
    expect(g.output()).not.toContain('unhandled');
  });
});
