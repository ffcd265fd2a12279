// The admin listener: metrics, health, and the versions API behind GATE_ADMIN_TOKEN.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type TestApp } from '../helpers/app.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const ADMIN = 'admin-token-0123456789';
const prefix = uniquePrefix('admin');
const raw = new Redis(SHARED_REDIS_URL);
let key: TestKey;
let app: TestApp;

const yaml = (store: string) => `
store: { url: "${store}", keyPrefix: "${prefix}" }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
conflict:
  claim: { enabled: true, lease: 30s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]
`;

beforeAll(async () => {
  key = await makeKey('ES256');
  app = await buildApp(yaml(SHARED_REDIS_URL), { files: { 'jwks.json': JSON.stringify(jwks(key)) }, adminToken: ADMIN });
  for (let i = 0; i < 100 && !app.deps.store.available(); i++) await new Promise((r) => setTimeout(r, 10));
});
afterAll(async () => {
  await app.close();
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

const admin = (method: string, path: string, opts: { token?: string | null; body?: unknown } = {}) =>
  Promise.resolve(
    app.admin.request(path, {
      method,
      headers: { ...(opts.token === null ? {} : { Authorization: `Bearer ${opts.token ?? ADMIN}` }), 'Content-Type': 'application/json' },
      body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    }),
  );

describe('versions API', () => {
  test('no token or a wrong token is 401; the right one is served', async () => {
    const none = await admin('GET', '/versions/orders:1', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ status: 401, code: 'admin_unauthorized' });
    expect((await admin('GET', '/versions/orders:1', { token: ADMIN + 'x' })).status).toBe(401);
    expect((await admin('GET', '/versions/orders:1', { token: ADMIN.slice(0, -1) })).status).toBe(401);
    expect((await admin('GET', '/versions/orders:1')).status).toBe(404);
  });

  test('PUT publishes into <prefix>ver:{key}; GET reads it with its ETag', async () => {
    const put = await admin('PUT', '/versions/orders:10', { body: { version: '8' } });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ key: 'orders:10', version: '8', previous: null });
    expect(await raw.get(`${prefix}ver:{orders:10}`)).toBe('8');
    const get = await admin('GET', '/versions/orders:10');
    expect(await get.json()).toEqual({ key: 'orders:10', version: '8' });
    expect(get.headers.get('etag')).toBe('"8"');
  });

  test('publish-if-newer: a lower numeric version is 409 stale_publish', async () => {
    await admin('PUT', '/versions/orders:11', { body: { version: '5' } });
    const stale = await admin('PUT', '/versions/orders:11', { body: { version: '4' } });
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe('application/problem+json');
    expect(await stale.json()).toMatchObject({ status: 409, code: 'stale_publish', currentVersion: '5' });
    expect((await admin('PUT', '/versions/orders:11', { body: { version: '5' } })).status).toBe(200);
    expect((await admin('PUT', '/versions/orders:11', { body: { version: 6 } })).status).toBe(200);
    expect(await raw.get(`${prefix}ver:{orders:11}`)).toBe('6');
  });

  test.each([['{"version":""}'], ['{"version":"a\\"b"}'], ['{}'], ['not json'], ['{"version":{"x":1}}']])('a bad body %s is 400', async (body) => {
    const res = await admin('PUT', '/versions/orders:12', { body });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'bad_request' });
  });

  test('DELETE forgets the version; a second DELETE is 404', async () => {
    await admin('PUT', '/versions/orders:13', { body: { version: '1' } });
    expect((await admin('DELETE', '/versions/orders:13')).status).toBe(204);
    expect(await raw.exists(`${prefix}ver:{orders:13}`)).toBe(0);
    expect((await admin('DELETE', '/versions/orders:13')).status).toBe(404);
  });

  test('PUT releases a claim: the next write is allowed at once', async () => {
    await admin('PUT', '/versions/orders:14', { body: { version: '2' } });
    const token = await sign(key);
    const w = (id: string) => app.auth('PUT', '/api/orders/14', { Authorization: `Bearer ${token}`, 'If-Match': '"2"', 'X-Request-Id': id });
    expect((await w('w-000000001')).status).toBe(200);
    expect((await w('w-000000002')).status).toBe(409);
    expect(await raw.exists(`${prefix}claim:{orders:14}`)).toBe(1);
    expect((await admin('PUT', '/versions/orders:14', { body: { version: '2' } })).status).toBe(200); // the write failed upstream
    expect(await raw.exists(`${prefix}claim:{orders:14}`)).toBe(0);
    expect((await w('w-000000003')).status).toBe(200);
  });

  test('keys with slashes and percent-escapes', async () => {
    expect((await admin('PUT', '/versions/tenants%2Facme%3Aorders', { body: { version: '1' } })).status).toBe(200);
    expect(await raw.get(`${prefix}ver:{tenants/acme:orders}`)).toBe('1');
  });
});

describe('without GATE_ADMIN_TOKEN', () => {
  test('the versions API answers 403 to everyone; metrics and health stay open', async () => {
    const open = await buildApp(yaml('memory'), { files: { 'jwks.json': JSON.stringify(jwks(key)) } });
    const res = await open.admin.request('/versions/orders:1', { headers: { Authorization: 'Bearer anything' } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'admin_disabled' });
    expect((await open.admin.request('/versions/orders:1', { method: 'PUT', body: '{"version":"1"}' })).status).toBe(403);
    expect((await open.admin.request('/healthz')).status).toBe(200);
    expect((await open.admin.request('/readyz')).status).toBe(200);
    expect((await open.admin.request('/metrics')).status).toBe(200);
    await open.close();
  });
});

describe('metrics', () => {
  test('decisions by gate and code, and the /auth latency histogram', async () => {
    await app.auth('GET', '/x');
    await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(key)}` });
    const text = await (await app.admin.request('/metrics')).text();
    expect(text).toMatch(/^conflict_gate_decisions_total\{outcome="deny",gate="auth",code="missing_token"\} \d+/m);
    expect(text).toMatch(/^conflict_gate_decisions_total\{outcome="allow",gate="",code=""\} \d+/m);
    expect(text).toMatch(/^conflict_gate_request_duration_seconds_bucket\{le="0.001",outcome="allow"\} \d+/m);
    expect(text).toMatch(/^conflict_gate_store_up 1$/m);
  });
});
