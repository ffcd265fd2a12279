// The /auth handler's own duties: trusted proxies, forwarded-request parsing, errors (the replay protocol: test/obs/replay.test.ts).
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
    ['a backslash (Node\'s URL parser reads it as a slash)', { 'X-Forwarded-Method': 'PUT', 'X-Forwarded-Uri': '/api\\orders\\42' }],
    ['an encoded backslash', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/admin%5Cx' }],
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

describe('a fault while deciding', () => {
  // Through the raw listener on a real socket (the path every proxy call takes): a throw where the
  // request is read, or inside a gate, is a 500 internal_error, logged, and the next request is served.
  test.each([
    ['reading the call (the trusted-proxy check)', 'classify'],
    ['inside a gate (auth)', 'auth'],
  ])('a throw %s is 500 internal_error, and the gate goes on', async (_n, where) => {
    const { createServer } = await import('node:http');
    const { createGateListener } = await import('../../src/http/gate-app.js');
    const { DecisionRecorder } = await import('../../src/obs/recorder.js');
    const real = app.deps.generation;
    let fail = true;
    const boom = () => {
      throw new Error('boom');
    };
    const logged: unknown[] = [];
    const log = Object.assign(Object.create(app.deps.log) as typeof app.deps.log, { error: (o: unknown) => logged.push(o) });
    const { listener } = createGateListener({
      current: () =>
        !fail ? real
        : where === 'classify' ? { ...real, forwarded: { ...real.forwarded, classifyIp: boom } }
        : { ...real, gates: { ...real.gates, auth: Object.assign(Object.create(real.gates.auth) as typeof real.gates.auth, { check: boom }) } },
      recorder: new DecisionRecorder(app.deps.metrics, app.deps.log),
      log,
      ready: app.deps.ready,
    });
    const server = createServer(listener);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const call = () => fetch(`http://127.0.0.1:${port}/auth`, { headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/public/x' } });
    try {
      const res = await call();
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'internal_error', status: 500 });
      expect(logged).toHaveLength(1);
      fail = false;
      expect((await call()).status).toBe(200);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
