// The /auth handler's own duties: trusted proxies, forwarded-request parsing, replay, errors.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type TestApp } from '../helpers/app.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

let key: TestKey;
let app: TestApp;
let token: string;

beforeAll(async () => {
  key = await makeKey('ES256');
  token = await sign(key);
  app = await buildApp(
    `
server: { trustedProxies: ["127.0.0.0/8", "10.0.0.0/8", "::1/128"] }
store: { url: memory }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], publicRoutes: ["/public/*"] }
rateLimit: { rules: [{ name: r, limit: 2, window: 60s }] }
conflict:
  claim: { enabled: true, lease: 5s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
    { files: { 'jwks.json': JSON.stringify(jwks(key)) } },
  );
  await app.deps.store.publish('orders:1', '3');
});
afterAll(() => app.close());

describe('trusted proxies', () => {
  test.each(['203.0.113.5', '::ffff:203.0.113.5', '2001:db8::1'])('a call from %s is 403 untrusted_source', async (peer) => {
    const res = await app.auth('GET', '/public/x', {}, peer);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'untrusted_source', status: 403 });
  });
  test.each([
    ['127.0.0.1', '198.51.100.101'],
    ['::ffff:10.1.2.3', '198.51.100.102'],
    ['::1', '198.51.100.103'],
  ])('a call from %s is served', async (peer, client) => {
    expect((await app.auth('GET', '/public/y', { 'X-Forwarded-For': client }, peer)).status).toBe(200);
  });
});

describe('the forwarded request', () => {
  test.each<[string, Record<string, string>]>([
    ['no X-Forwarded-Method', { 'X-Forwarded-Uri': '/x' }],
    ['no X-Forwarded-Uri', { 'X-Forwarded-Method': 'GET' }],
    ['a method that is not a token', { 'X-Forwarded-Method': 'GE T', 'X-Forwarded-Uri': '/x' }],
    ['an encoded slash in a segment', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders%2F1' }],
    ['a NUL byte', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/%00' }],
    ['a relative URI', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': 'api/x' }],
    ['X-Forwarded-For garbage', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/public/x', 'X-Forwarded-For': 'not-an-ip' }],
  ])('%s is 400 bad_forward_request', async (_n, headers) => {
    const res = await app.gate.request('/auth', { headers }, { incoming: { socket: { remoteAddress: '127.0.0.1' } } } as never);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'bad_forward_request', status: 400, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  });

  test("nginx's X-Original-Method / X-Original-URI are read", async () => {
    const res = await app.gate.request('/auth', { headers: { 'X-Original-Method': 'GET', 'X-Original-URI': '/public/z?q=1', 'X-Forwarded-For': '198.51.100.2' } }, { incoming: { socket: { remoteAddress: '127.0.0.1' } } } as never);
    expect(res.status).toBe(200);
  });

  test('/auth answers any method (Traefik sends GET, preserveRequestMethod sends the original)', async () => {
    for (const method of ['GET', 'POST', 'HEAD', 'PUT']) {
      const res = await app.gate.request('/auth', { method, headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/public/m', 'X-Forwarded-For': `198.51.100.${10 + method.length}`, Authorization: `Bearer ${token}` } }, { incoming: { socket: { remoteAddress: '127.0.0.1' } } } as never);
      expect(res.status).toBe(200);
    }
  });
});

describe('nginx replay (X-Request-Id + X-Auth-Replay)', () => {
  const write = (extra: Record<string, string>) => ({ Authorization: `Bearer ${token}`, 'If-Match': '"3"', ...extra });

  test('a replayed denial is served from the first answer: no second lease, same body', async () => {
    const first = await app.auth('PUT', '/api/orders/1', write({ 'X-Request-Id': 'req-aaaa-0001' }));
    expect(first.status).toBe(200); // takes the lease
    const second = await app.auth('PUT', '/api/orders/1', write({ 'X-Request-Id': 'req-aaaa-0002', 'X-Forwarded-For': '198.51.100.3' }));
    expect(second.status).toBe(409);
    const body = await second.text();
    const replay = await app.auth('PUT', '/api/orders/1', write({ 'X-Request-Id': 'req-aaaa-0002', 'X-Auth-Replay': '500', 'X-Forwarded-For': '198.51.100.3' }));
    expect(replay.status).toBe(409);
    expect(await replay.text()).toBe(body);
    expect(replay.headers.get('retry-after')).toBe(second.headers.get('retry-after'));
    await app.deps.store.publish('orders:1', '3'); // release
  });

  test('a replayed 429 does not spend a second point', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'replayer' })}` };
    expect((await app.auth('GET', '/a', { ...h, 'X-Request-Id': 'req-bbbb-0001' })).status).toBe(200);
    expect((await app.auth('GET', '/a', { ...h, 'X-Request-Id': 'req-bbbb-0002' })).status).toBe(200);
    const over = await app.auth('GET', '/a', { ...h, 'X-Request-Id': 'req-bbbb-0003' });
    expect(over.status).toBe(429);
    const replay = await app.auth('GET', '/a', { ...h, 'X-Request-Id': 'req-bbbb-0003', 'X-Auth-Replay': '500' });
    expect(replay.status).toBe(429);
    expect(await replay.json()).toMatchObject({ code: 'rate_limited' });
  });

  test('the replay marker grants nothing: without a kept denial the request is evaluated and counted', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'sneaky' })}` };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await app.auth('GET', '/a', { ...h, 'X-Request-Id': `req-cccc-000${i}`, 'X-Auth-Replay': '429' })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  test('auth denials are not kept: an unauthenticated caller cannot write to the store', async () => {
    const before = (app.deps.replay as unknown as { local: Map<string, unknown> }).local.size;
    for (let i = 0; i < 5; i++) expect((await app.auth('GET', '/nokeep', { 'X-Request-Id': `req-eeee-000${i}` })).status).toBe(401);
    expect((app.deps.replay as unknown as { local: Map<string, unknown> }).local.size).toBe(before);
    // and the replay of an auth denial is answered again, identically
    const again = await app.auth('GET', '/nokeep', { 'X-Request-Id': 'req-eeee-0000', 'X-Auth-Replay': '401' });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ code: 'missing_token' });
  });

  test('a kept denial is only served for the same method and URI', async () => {
    const h = { Authorization: `Bearer ${await sign(key, { sub: 'other' })}` };
    expect((await app.auth('GET', '/b', { ...h, 'X-Request-Id': 'req-dddd-0001' })).status).toBe(200);
    expect((await app.auth('GET', '/b', { ...h, 'X-Request-Id': 'req-dddd-0002' })).status).toBe(200);
    expect((await app.auth('GET', '/b', { ...h, 'X-Request-Id': 'req-dddd-0003' })).status).toBe(429); // kept
    const replayed = async () => Number(/gate_decisions_total\{gate="replay",code="replayed"\} (\d+)/.exec(await app.deps.metrics.registry.metrics())?.[1] ?? 0);
    const r0 = await replayed();
    const elsewhere = await app.auth('GET', '/c', { ...h, 'X-Request-Id': 'req-dddd-0003', 'X-Auth-Replay': '500' });
    expect(elsewhere.status).toBe(429); // over the limit anyway, but evaluated afresh
    expect(await replayed()).toBe(r0);
    const sameRoute = await app.auth('GET', '/b', { ...h, 'X-Request-Id': 'req-dddd-0003', 'X-Auth-Replay': '500' });
    expect(sameRoute.status).toBe(429);
    expect(await replayed()).toBe(r0 + 1);
  });
});

describe('health', () => {
  test('/healthz is 200; /readyz is 200 with a memory store and local keys', async () => {
    expect((await app.gate.request('/healthz')).status).toBe(200);
    expect(await (await app.gate.request('/readyz')).json()).toEqual({ status: 'ready', checks: { store: true, keys: true } });
  });
  test('an unknown path is a 404 problem', async () => {
    const res = await app.gate.request('/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
