// Admin /console and /console/data through the whole admin app: the page holds no data, the data needs the token, no secret leaves.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CONSOLE_CSP } from '../../src/http/admin/console.js';
import { CONSOLE_HTML } from '../../src/http/console/page.js';
import { MemoryStore } from '../../src/store/memory.js';
import { buildApp, type TestApp } from '../helpers/app.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, signHs, type TestKey } from '../helpers/tokens.js';
import { decisionCounts } from './metrics-text.js';

const ADMIN = 'console-admin-token-0123456789';
let key: TestKey;
let app: TestApp;

const yaml = `
store: { url: memory }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [PUT], path: "/api/*", scopes: ["orders:write"], mode: shadow }
rateLimit:
  rules:
    - { name: tight, path: "/api/tight/*", limit: 1, window: 60s }
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
`;

beforeAll(async () => {
  key = await makeKey('ES256');
  app = await buildApp(yaml, { files: { 'jwks.json': JSON.stringify(jwks(key)) }, adminToken: ADMIN });
});
afterAll(() => app.close());

const get = (a: TestApp, path: string, token: string | null = ADMIN) => Promise.resolve(a.admin.request(path, { headers: token === null ? {} : { Authorization: `Bearer ${token}` } }));

describe('the page and its assets', () => {
  test.each([
    ['/console', 'text/html'],
    ['/console/app.js', 'text/javascript'],
    ['/console/app.css', 'text/css'],
    ['/console/favicon.svg', 'image/svg+xml'],
  ])('%s is served by the gate itself (%s) with a strict Content-Security-Policy', async (path, type) => {
    const res = await get(app, path, null);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain(type);
    expect(res.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.text();
    // Nothing from elsewhere: no absolute URL to fetch (the SVG namespace is a name, not a request).
    expect(body.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '')).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
  });

  test('the CSP allows no inline script or style and nothing from another origin', () => {
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    expect(CONSOLE_HTML).not.toMatch(/<script>|<script [^>]*>[^<]|<style|style=|\son\w+=/i);
  });

  test('the page is the same static text whatever happened: it holds no data', async () => {
    await app.auth('GET', '/api/orders/1');
    const res = await get(app, '/console', null);
    expect(await res.text()).toBe(CONSOLE_HTML);
  });
});

describe('GET /console/data', () => {
  test('needs the admin token: 401 without it or with a wrong one', async () => {
    const none = await get(app, '/console/data', null);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'admin_unauthorized' });
    expect((await get(app, '/console/data', `${ADMIN}x`)).status).toBe(401);
  });

  test('403 to everyone when the gate has no admin token', async () => {
    const open = await buildApp(yaml, { files: { 'jwks.json': JSON.stringify(jwks(key)) } });
    try {
      const res = await get(open, '/console/data', 'anything');
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'admin_disabled' });
    } finally {
      await open.close();
    }
  });

  test('its counts are the counts /metrics reports, and it lists denials, shadowed denials and conflict keys', async () => {
    const a = await buildApp(yaml, { files: { 'jwks.json': JSON.stringify(jwks(key)) }, adminToken: ADMIN });
    try {
      const reader = `Bearer ${await sign(key, { sub: 'bob', scope: 'orders:read' })}`;
      const writer = `Bearer ${await sign(key, { sub: 'alice', scope: 'orders:write' })}`;
      await a.deps.store.publish('orders:42', '7');
      const answers = [
        await a.auth('GET', '/public/x'),
        await a.auth('GET', '/api/orders/1'),
        await a.auth('GET', '/api/orders/1', { Authorization: 'Bearer a.b.c' }),
        await a.auth('GET', '/api/tight/1', { Authorization: writer }),
        await a.auth('GET', '/api/tight/1', { Authorization: writer }),
        await a.auth('PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"6"' }),
        await a.auth('PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"7"' }),
        // The scope rule is in shadow: bob is allowed, and the would-be denial is counted as shadowed.
        await a.auth('PUT', '/api/orders/42', { Authorization: reader, 'If-Match': '"7"' }),
      ].map((r) => r.status);
      expect(answers).toEqual([200, 401, 401, 200, 429, 412, 200, 200]);

      const res = await get(a, '/console/data');
      expect(res.status).toBe(200);
      const data = await res.json();
      const totals = Object.fromEntries(
        (data.activity.series as { outcome: string; gate: string; code: string; total: number }[]).filter((s) => s.total > 0).map((s) => [`${s.outcome}/${s.gate}/${s.code}`, s.total]),
      );
      expect(totals).toEqual({
        'allow//': 4,
        'deny/auth/missing_token': 1,
        'deny/auth/invalid_token': 1,
        'deny/ratelimit/rate_limited': 1,
        'deny/conflict/precondition_failed': 1,
        'shadow/auth/insufficient_scope': 1,
      });
      expect(decisionCounts(await a.deps.metrics.registry.metrics())).toEqual(totals);

      expect(data.activity.denials.map((d: { code: string }) => d.code)).toEqual(['precondition_failed', 'rate_limited', 'invalid_token', 'missing_token']);
      expect(data.activity.denials[0]).toMatchObject({ gate: 'conflict', status: 412, rule: '/api/orders/:id', method: 'PUT', path: '/api/orders/42', clientId: 'alice', clientIp: '127.0.0.1' });
      expect(data.activity.shadowed[0]).toMatchObject({ gate: 'auth', code: 'insufficient_scope', status: 403, rule: 'PUT /api/*', clientId: 'bob' });
      expect(data.conflicts.top).toEqual([expect.objectContaining({ key: 'orders:42', rule: '/api/orders/:id', denied: 1, shadowed: 0 })]);
      expect(data.health).toMatchObject({ ready: true, status: 'ready', checks: { store: true, keys: true } });
      expect(data.keys).toMatchObject({ keys: 1, lastSuccessAt: expect.any(Number), refreshes: { ok: 0, error: 0 } });
      expect(JSON.stringify(data)).not.toContain(writer.slice(7));
      expect(JSON.stringify(data)).not.toContain(reader.slice(7));
    } finally {
      await a.close();
    }
  });

  test('the config summary: rules, modes, patterns and fail modes', async () => {
    const data = await (await get(app, '/console/data')).json();
    expect(data.config).toMatchObject({
      auth: { keys: 'jwksFile (1 key)', algorithms: ['ES256'], issuer: [ISSUER], audience: [AUDIENCE], publicRoutes: ['GET /public/*'], requireScopes: [{ rule: 'PUT /api/*', scopes: ['orders:write'], mode: 'shadow' }] },
      rateLimit: { mode: 'enforce', onStoreError: 'memory', rules: [{ name: 'tight', limit: 1, windowS: 60, by: 'client', mode: 'enforce' }] },
      conflict: { mode: 'enforce', onStoreError: 'allow', unknownResource: 'allow', ifMatchStatus: 412, claim: { enabled: false }, resources: [{ pattern: '/api/orders/:id', require: 'if-match', mode: 'enforce' }] },
      store: { mode: 'memory', endpoints: [] },
    });
  });
});

describe('no secret in the config summary', () => {
  const SECRET = 'hs-secret-that-must-never-leave-0123456789abcdef';
  const REDIS_PASSWORD = 'redis-pass-never-shown';

  test('an HMAC secret and a Redis password are named, never shown', async () => {
    const a = await buildApp(
      `
store: { url: "redis://console-user:${REDIS_PASSWORD}@127.0.0.1:6399/2" }
auth: { secret: "${SECRET}", issuer: ${ISSUER}, audience: ${AUDIENCE} }
`,
      { adminToken: ADMIN, store: new MemoryStore() },
    );
    try {
      await a.auth('GET', '/api/x', { Authorization: `Bearer ${await signHs(SECRET)}` });
      const text = await (await get(a, '/console/data')).text();
      const data = JSON.parse(text);
      expect(data.config.auth.keys).toBe('HMAC secret');
      expect(data.config.store).toMatchObject({ mode: 'redis', endpoints: ['127.0.0.1:6399/2'] });
      for (const leak of [SECRET, REDIS_PASSWORD, 'console-user', ADMIN]) expect(text).not.toContain(leak);
    } finally {
      await a.close();
    }
  });

  test('a JWKS URL is shown without its query or fragment (where an API key would sit)', async () => {
    const a = await buildApp(`auth: { jwksUrl: "https://issuer.test/keys.json?apikey=never-shown#frag-never-shown", issuer: ${ISSUER} }\nstore: { url: memory }`, { adminToken: ADMIN });
    try {
      const text = await (await get(a, '/console/data')).text();
      expect(JSON.parse(text).config.auth.keys).toBe('jwksUrl https://issuer.test/keys.json');
      for (const leak of ['never-shown', 'apikey']) expect(text).not.toContain(leak);
    } finally {
      await a.close();
    }
  });
});
