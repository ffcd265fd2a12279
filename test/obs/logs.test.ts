// Log lines through the real CLI: every deny code gets one line with the reason, rule or resource,
// client, request id and trace id; shadowed denials and sampled allows; nothing secret in any line.
import { SignJWT } from 'jose';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER } from '../helpers/tokens.js';

const SECRET = 'obs-logs-hmac-s3cret-0123456789abcdef';
const ADMIN = 'obs-logs-admin-t0ken-0123456789';
const COOKIE = 'session=cookie-s3cret-value';
const QUERY_SECRET = 'query-s3cret-value';
const REDIS_PASSWORD = 'redis-pa55word-s3cret';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

async function token(claims: Record<string, unknown> = {}, opts: { secret?: string; exp?: number } = {}): Promise<string> {
  return new SignJWT({ scope: 'orders:read orders:write', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject((claims.sub as string | undefined) ?? 'lena')
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime(opts.exp ?? '1h')
    .sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

const yaml = (prefix: string, conflictOnStoreError = 'allow') => `
server: { trustedProxies: ["127.0.0.0/8"], logAllows: 1 }
store: { keyPrefix: "${prefix}" }
auth:
  secret: "${SECRET}"
  issuer: "${ISSUER}"
  audience: "${AUDIENCE}"
  publicRoutes: ["GET /public/*"]
  requireScopes: [{ methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }]
rateLimit:
  rules:
    - { name: tight, path: "/api/tight/*", limit: 1, window: 60s }
    - { name: watch, path: "/api/watched/*", limit: 1, window: 60s, mode: shadow }
conflict:
  onStoreError: ${conflictOnStoreError}
  claim: { enabled: true, lease: 5s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/docs/:id", key: "docs:{id}", require: client-version }
`;

type Line = Record<string, unknown>;
const lines = (g: RunningGate): Line[] =>
  g
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);

/** The line(s) of a request id, once the 250 ms flush has written them. */
async function linesOf(g: RunningGate, id: string): Promise<Line[]> {
  for (let i = 0; i < 60 && !lines(g).some((l) => l.requestId === id); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  return lines(g).filter((l) => l.requestId === id);
}

/** /auth as a proxy would call it, with the ids, a cookie and a query secret on every request. */
async function call(g: RunningGate, method: string, path: string | null, id: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<Response> {
  return fetch(`http://${host}:${g.port}/auth`, {
    headers: {
      'X-Forwarded-Method': method,
      ...(path === null ? {} : { 'X-Forwarded-Uri': `${path}?access_token=${QUERY_SECRET}` }),
      'X-Request-Id': id,
      traceparent: `00-${TRACE}-00f067aa0ba902b7-01`,
      Cookie: COOKIE,
      ...headers,
    },
  });
}

let g: RunningGate;
let down: RunningGate;
let prefix: string;
let redis: Redis;
const secrets: string[] = [SECRET, ADMIN, 'cookie-s3cret-value', QUERY_SECRET, REDIS_PASSWORD];

beforeAll(async () => {
  prefix = uniquePrefix('obs-logs');
  redis = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 2 });
  // HOST unset: the default listens on :: (both families), so ::1 is a caller outside trustedProxies.
  g = await startGate({ yaml: yaml(prefix), env: { REDIS_URL: SHARED_REDIS_URL, GATE_ADMIN_TOKEN: ADMIN, HOST: '' } });
  // A store that never answers (a closed port, with a password in its URL) and conflict.onStoreError deny.
  const dead = await freePort();
  down = await startGate({ yaml: yaml(uniquePrefix('obs-logs-down'), 'deny'), env: { REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${dead}/0` } });
  for (let i = 0; i < 100 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  const put = (key: string, version: string) =>
    fetch(`${g.adminUrl}/versions/${key}`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ version }) });
  expect((await put('orders:2', '2')).status).toBe(200);
  expect((await put('docs:1', '3')).status).toBe(200);
  expect((await put('orders:3', '1')).status).toBe(200);
});

afterAll(async () => {
  await Promise.allSettled([g?.stop(), down?.stop()]);
  if (redis) {
    await flushPrefix(redis, prefix);
    redis.disconnect();
  }
});

interface Case {
  code: string;
  status: number;
  gate: string;
  send: (id: string) => Promise<Response>;
  expect?: Line;
}

const CASES: Case[] = [
  { code: 'bad_forward_request', status: 400, gate: 'forward', send: (id) => call(g, 'GET', null, id) },
  { code: 'missing_token', status: 401, gate: 'auth', send: (id) => call(g, 'GET', '/api/x', id), expect: { method: 'GET', path: '/api/x' } },
  { code: 'invalid_token', status: 401, gate: 'auth', send: async (id) => call(g, 'GET', '/api/x', id, { Authorization: `Bearer ${await token({}, { secret: 'another-secret-0123456789abcdef0123' })}` }) },
  {
    code: 'insufficient_scope',
    status: 403,
    gate: 'auth',
    send: async (id) => call(g, 'PUT', '/api/orders/2', id, { Authorization: `Bearer ${await token({ scope: 'orders:read' })}`, 'If-Match': '"2"' }),
    expect: { rule: 'POST,PUT,PATCH,DELETE /api/orders/*', client: 'lena' },
  },
  { code: 'untrusted_source', status: 403, gate: 'forward', send: (id) => call(g, 'GET', '/api/x', id, {}, '[::1]'), expect: { ip: '::1' } },
  {
    code: 'rate_limited',
    status: 429,
    gate: 'ratelimit',
    send: async (id) => {
      const h = { Authorization: `Bearer ${await token({ sub: 'tina' })}` };
      expect((await call(g, 'GET', '/api/tight/1', `${id}-first`, h)).status).toBe(200);
      return call(g, 'GET', '/api/tight/1', id, h);
    },
    expect: { rule: 'tight', client: 'tina' },
  },
  {
    code: 'precondition_failed',
    status: 412,
    gate: 'conflict',
    send: async (id) => call(g, 'PUT', '/api/orders/2', id, { Authorization: `Bearer ${await token({ sub: 'pia' })}`, 'If-Match': '"1"' }),
    expect: { rule: '/api/orders/:id', resource: 'orders:2', client: 'pia' },
  },
  {
    code: 'stale_client_version',
    status: 409,
    gate: 'conflict',
    send: async (id) => call(g, 'PUT', '/api/docs/1', id, { Authorization: `Bearer ${await token({ sub: 'sam' })}`, 'Client-Version': '1' }),
    expect: { rule: '/api/docs/:id', resource: 'docs:1' },
  },
  {
    code: 'write_in_progress',
    status: 409,
    gate: 'conflict',
    send: async (id) => {
      const h = { Authorization: `Bearer ${await token({ sub: 'wes' })}`, 'If-Match': '"1"' };
      expect((await call(g, 'PUT', '/api/orders/3', `${id}-first`, h)).status).toBe(200);
      return call(g, 'PUT', '/api/orders/3', id, h);
    },
    expect: { rule: '/api/orders/:id', resource: 'orders:3' },
  },
  {
    code: 'precondition_required',
    status: 428,
    gate: 'conflict',
    send: async (id) => call(g, 'DELETE', '/api/orders/4', id, { Authorization: `Bearer ${await token()}` }),
    expect: { rule: '/api/orders/:id', resource: 'orders:4' },
  },
  {
    code: 'store_unavailable',
    status: 503,
    gate: 'conflict',
    send: async (id) => call(down, 'PUT', '/api/orders/5', id, { Authorization: `Bearer ${await token()}`, 'If-Match': '"1"' }),
    expect: { rule: '/api/orders/:id', resource: 'orders:5' },
  },
];

describe('one denial line per request, with what an operator needs', () => {
  test.each(CASES.map((c) => [c.code, c] as const))('%s', async (code, c) => {
    const id = `req-${code}-0001`;
    const res = await c.send(id);
    expect(res.status).toBe(c.status);
    const problem = (await res.json()) as { detail: string };
    const found = await linesOf(code === 'store_unavailable' ? down : g, id);
    expect(found, `lines for ${id}`).toHaveLength(1);
    const line = found[0]!;
    expect(line).toMatchObject({
      level: 'info',
      msg: 'denied',
      outcome: 'deny',
      gate: c.gate,
      code,
      status: c.status,
      reason: problem.detail,
      requestId: id,
      traceId: TRACE,
      ip: '127.0.0.1',
      ...c.expect,
    });
    expect(typeof line.time).toBe('string');
    expect(typeof line.ms).toBe('number');
    if (line.path !== undefined) expect(line.path).not.toContain('?');
  });
});

describe('other lines', () => {
  test('a shadowed denial: one line, "denied" with shadow true, for a request that was allowed', async () => {
    const h = { Authorization: `Bearer ${await token({ sub: 'shadowy' })}` };
    expect((await call(g, 'GET', '/api/watched/1', 'req-shadow-0001', h)).status).toBe(200);
    expect((await call(g, 'GET', '/api/watched/1', 'req-shadow-0002', h)).status).toBe(200);
    const found = await linesOf(g, 'req-shadow-0002');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ msg: 'denied', shadow: true, outcome: 'allow', gate: 'ratelimit', code: 'rate_limited', status: 429, rule: 'watch', client: 'shadowy', shadowed: 'ratelimit/rate_limited' });
  });

  test('server.logAllows: 1 logs every allow, with its rule, resource and client', async () => {
    const res = await call(g, 'PUT', '/api/orders/6', 'req-allow-0001', { Authorization: `Bearer ${await token({ sub: 'ally' })}`, 'If-Match': '"1"' });
    expect(res.status).toBe(200);
    const found = await linesOf(g, 'req-allow-0001');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 'info', msg: 'allowed', outcome: 'allow', status: 200, method: 'PUT', path: '/api/orders/6', resource: 'orders:6', client: 'ally', traceId: TRACE });
  });

  test('a malformed traceparent gives no traceId; an attacker-sized request id and path are capped', async () => {
    const long = `/api/${'x'.repeat(15_000)}`;
    const id = `req-long-${'y'.repeat(120)}`;
    await fetch(`${g.url}/auth`, { headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': long, 'X-Request-Id': id, traceparent: 'not-a-trace' } });
    let line: Line | undefined;
    for (let i = 0; i < 60 && !line; i++) {
      line = lines(g).find((l) => typeof l.requestId === 'string' && (l.requestId as string).startsWith('req-long-'));
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    expect(line).toBeDefined();
    expect(line!.traceId).toBeUndefined();
    expect((line!.path as string).length).toBeLessThan(300);
    expect(line!.path).toMatch(/…\[\+\d+ chars\]$/);
    expect(JSON.stringify(line).length).toBeLessThan(1500);
  });
});

test('nothing secret in any line: tokens, the HMAC secret, the admin token, cookies, query strings, the Redis password', async () => {
  const all = `${g.output()}\n${down.output()}`;
  expect(all.split('\n').filter((l) => l.startsWith('{')).length).toBeGreaterThan(CASES.length);
  for (const s of secrets) expect(all, `"${s}" in the logs`).not.toContain(s);
  // no bearer token (a JWT is three base64url parts; none of the ones sent may appear)
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
  expect(all).not.toContain('access_token');
});
