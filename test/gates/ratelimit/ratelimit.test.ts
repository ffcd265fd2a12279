// The rate-limit gate against real Redis, through /auth.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type TestApp } from '../../helpers/app.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../../helpers/tokens.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await flushPrefix(raw, p);
  raw.disconnect();
});

let key: TestKey;
beforeAll(async () => {
  key = await makeKey('ES256');
});

async function gateWith(rules: string, extra = ''): Promise<TestApp> {
  const prefix = uniquePrefix('rl');
  prefixes.push(prefix);
  return buildApp(
    `
store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}" }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["GET /public/*"]
rateLimit:
  rules:
${rules}
${extra}`,
    { files: { 'jwks.json': JSON.stringify(jwks(key)) } },
  );
}

const as = async (sub: string, claims: Record<string, unknown> = {}) => ({ Authorization: `Bearer ${await sign(key, { sub, claims })}` });

async function ready(app: TestApp) {
  for (let i = 0; i < 100 && !app.deps.store.available(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('rate limits on Redis', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await gateWith(`
    - { name: writes, methods: [POST, PUT, PATCH, DELETE], path: "/api/*", limit: 2, window: 60s }
    - { name: tenants, path: "/tenant/*", limit: 3, window: 60s, by: "claim:tenant" }
    - { name: plans, path: "/plans/*", limit: 1, window: 60s, overrides: [{ claim: plan, value: pro, limit: 4 }] }
    - { name: byip, path: "/byip/*", limit: 2, window: 60s, by: ip }
    - { name: default, limit: 5, window: 60s }`);
    await ready(app);
  });
  afterAll(() => app.close());

  test('exactly `limit` requests pass in a window; the next is 429 with the contract headers', async () => {
    const h = await as('alice');
    for (let i = 1; i <= 5; i++) {
      const res = await app.auth('GET', '/api/orders/1', h);
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-policy')).toBe('"default";q=5;w=60');
      expect(res.headers.get('ratelimit')).toMatch(new RegExp(`^"default";r=${5 - i};t=(60|59)$`));
    }
    const denied = await app.auth('GET', '/api/orders/1', h);
    expect(denied.status).toBe(429);
    const retryAfter = Number(denied.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(denied.headers.get('ratelimit')).toBe(`"default";r=0;t=${retryAfter}`);
    expect(denied.headers.get('ratelimit-policy')).toBe('"default";q=5;w=60');
    expect(denied.headers.get('content-type')).toBe('application/problem+json');
    expect(await denied.json()).toMatchObject({ status: 429, code: 'rate_limited', retryAfter });
    // Once over, the replica answers from its local "over until T" map: still 429, every time.
    for (let i = 0; i < 3; i++) expect((await app.auth('GET', '/api/orders/1', h)).status).toBe(429);
  });

  test('clients do not share budgets', async () => {
    const bob = await as('bob');
    for (let i = 0; i < 5; i++) expect((await app.auth('GET', '/x', bob)).status).toBe(200);
    expect((await app.auth('GET', '/x', bob)).status).toBe(429);
    expect((await app.auth('GET', '/x', await as('carol'))).status).toBe(200);
  });

  test('first matching rule wins: writes have their own rule and counter', async () => {
    const dave = await as('dave');
    expect((await app.auth('POST', '/api/o', dave)).headers.get('ratelimit-policy')).toBe('"writes";q=2;w=60');
    expect((await app.auth('PUT', '/api/o', dave)).status).toBe(200);
    expect((await app.auth('DELETE', '/api/o', dave)).status).toBe(429);
    expect((await app.auth('GET', '/api/o', dave)).status).toBe(200); // default rule still has budget
  });

  test('a claim-keyed rule shares one budget across a tenant', async () => {
    const statuses = [];
    for (const sub of ['t1', 't2', 't3', 't4']) statuses.push((await app.auth('GET', '/tenant/x', await as(sub, { tenant: 'acme' }))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await app.auth('GET', '/tenant/x', await as('t5', { tenant: 'globex' }))).status).toBe(200);
  });

  test('a per-claim-value override raises the limit for that plan', async () => {
    const free = await as('free-user', { plan: 'free' });
    expect((await app.auth('GET', '/plans/x', free)).status).toBe(200);
    expect((await app.auth('GET', '/plans/x', free)).status).toBe(429);
    const pro = await as('pro-user', { plan: 'pro' });
    const r = await app.auth('GET', '/plans/x', pro);
    expect(r.headers.get('ratelimit-policy')).toBe('"plans";q=4;w=60');
    for (let i = 0; i < 3; i++) expect((await app.auth('GET', '/plans/x', pro)).status).toBe(200);
    expect((await app.auth('GET', '/plans/x', pro)).status).toBe(429);
  });

  test('an ip-keyed rule counts the rightmost untrusted X-Forwarded-For address, whoever the token is', async () => {
    const xff = (ip: string) => ({ 'X-Forwarded-For': `${ip}, 10.0.0.5` });
    expect((await app.auth('GET', '/byip/a', { ...(await as('u1')), ...xff('203.0.113.7') })).status).toBe(200);
    expect((await app.auth('GET', '/byip/a', { ...(await as('u2')), ...xff('203.0.113.7') })).status).toBe(200);
    expect((await app.auth('GET', '/byip/a', { ...(await as('u3')), ...xff('203.0.113.7') })).status).toBe(429);
    // a spoofed leftmost entry does not change the client: 198.51.100.1 is what the trusted proxy saw
    expect((await app.auth('GET', '/byip/a', { ...(await as('u4')), 'X-Forwarded-For': '203.0.113.7, 198.51.100.1' })).status).toBe(200);
  });

  test('public routes are limited per client IP', async () => {
    const ip = { 'X-Forwarded-For': '192.0.2.44' };
    for (let i = 0; i < 5; i++) expect((await app.auth('GET', '/public/doc', ip)).status).toBe(200);
    const res = await app.auth('GET', '/public/doc', ip);
    expect(res.status).toBe(429);
    expect((await app.auth('GET', '/public/doc', { 'X-Forwarded-For': '192.0.2.45' })).status).toBe(200);
  });

  test('a 401 never consumes the budget', async () => {
    const erin = await as('erin');
    for (let i = 0; i < 10; i++) expect((await app.auth('GET', '/x', { Authorization: 'Bearer bad.token.here' })).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await app.auth('GET', '/x', erin)).status).toBe(200);
  });

  test('the counter lives in Redis under the rule prefix', async () => {
    const prefix = app.deps.compiled.store.keyPrefix;
    await app.auth('GET', '/x', await as('frank'));
    expect(await raw.get(`${prefix}rl:default:c:frank`)).toBe('1');
  });
});

describe('window reset', () => {
  test('after the window the budget is back', async () => {
    const app = await gateWith('    - { name: short, limit: 2, window: 1s }');
    await ready(app);
    const h = await as('gina');
    expect((await app.auth('GET', '/x', h)).status).toBe(200);
    expect((await app.auth('GET', '/x', h)).status).toBe(200);
    const denied = await app.auth('GET', '/x', h);
    expect(denied.status).toBe(429);
    expect(denied.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await app.auth('GET', '/x', h)).status).toBe(200);
    await app.close();
  });
});

describe('IPv6 clients on a public route: one bucket per rateLimit.ipv6Subnet prefix', () => {
  const from = (ip: string) => ({ 'X-Forwarded-For': ip });

  test('default /64: two addresses of one /64 share a bucket; the next /64 has its own', async () => {
    const app = await gateWith('    - { name: pub, path: "/public/*", limit: 1, window: 60s }');
    await ready(app);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:2::1'))).status).toBe(200);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:2:ffff:ffff:ffff:fffe'))).status).toBe(429);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:3::1'))).status).toBe(200);
    await app.close();
  });

  test('ipv6Subnet: 128 keys each address on its own', async () => {
    const app = await gateWith('    - { name: pub, path: "/public/*", limit: 1, window: 60s }', '  ipv6Subnet: 128');
    await ready(app);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:2::1'))).status).toBe(200);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:2::2'))).status).toBe(200);
    expect((await app.auth('GET', '/public/doc', from('2001:db8:1:2::1'))).status).toBe(429);
    await app.close();
  });
});

describe('no rule matched', () => {
  test('no RateLimit headers and no counter', async () => {
    const app = await gateWith('    - { name: only-api, path: "/api/*", limit: 1, window: 60s }');
    const res = await app.auth('GET', '/other', await as('hank'));
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit')).toBeNull();
    await app.close();
  });
});

describe('memory store has the same semantics', () => {
  test('limit then 429', async () => {
    const app = await buildApp(
      `store: { url: memory }\nauth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }\nrateLimit: { rules: [{ name: d, limit: 2, window: 60s }] }`,
      { files: { 'jwks.json': JSON.stringify(jwks(key)) } },
    );
    const h = await as('ivy');
    expect((await app.auth('GET', '/x', h)).headers.get('ratelimit')).toMatch(/^"d";r=1;t=60$/);
    expect((await app.auth('GET', '/x', h)).status).toBe(200);
    expect((await app.auth('GET', '/x', h)).status).toBe(429);
    await app.close();
  });
});
