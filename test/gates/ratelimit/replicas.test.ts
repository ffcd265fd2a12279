// Real processes: three replicas share one Redis budget; a Redis outage and its recovery.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, startOwnRedis, uniquePrefix, type OwnRedis } from '../../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../../helpers/tokens.js';

let key: TestKey;
beforeAll(async () => {
  key = await makeKey('ES256');
});

const config = (url: string, prefix: string, rules: string, extra = '', commandTimeout = '200ms') => `
store: { url: "${url}", keyPrefix: "${prefix}", commandTimeout: ${commandTimeout}, connectTimeout: 200ms }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit:
${extra}
  rules:
${rules}
`;

/** `query` "?strict=1": the store answers and keys are loaded (plain /readyz follows the fail modes). */
async function waitReady(g: RunningGate, want: number, query = '') {
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${g.url}/readyz${query}`)).status === want) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/readyz${query} never became ${want}`);
}

describe('three gate processes on one Redis', () => {
  const prefix = uniquePrefix('replicas');
  const raw = new Redis(SHARED_REDIS_URL);
  let gates: RunningGate[] = [];
  afterAll(async () => {
    await Promise.all(gates.map((g) => g.stop()));
    await flushPrefix(raw, prefix);
    raw.disconnect();
  });

  test('together they admit exactly `limit` requests per client per window, not 3x', async () => {
    // A generous command timeout: this test is about exactness, not outages (a timeout falls back to memory).
    const yaml = config(SHARED_REDIS_URL, prefix, '    - { name: shared, limit: 25, window: 60s }', '', '5s');
    gates = await Promise.all([0, 1, 2].map(() => startGate({ yaml, files: { 'jwks.json': JSON.stringify(jwks(key)) } })));
    // Until a replica's Redis connection is up it limits from memory (the fail mode): wait for ready.
    for (const g of gates) await waitReady(g, 200, '?strict=1');
    const clients = ['c1', 'c2', 'c3'];
    const tokens = await Promise.all(clients.map((sub) => sign(key, { sub })));
    // 60 requests per client, spread round-robin over the replicas, all in flight at once.
    const calls = clients.flatMap((_, ci) =>
      Array.from({ length: 60 }, (_, i) => forward(gates[i % 3]!.url, 'GET', '/api/x', { Authorization: `Bearer ${tokens[ci]}` }).then((r) => ({ ci, status: r.status }))),
    );
    const results = await Promise.all(calls);
    for (let ci = 0; ci < clients.length; ci++) {
      const mine = results.filter((r) => r.ci === ci);
      expect(mine.filter((r) => r.status === 200)).toHaveLength(25);
      expect(mine.filter((r) => r.status === 429)).toHaveLength(35);
    }
    for (const g of gates) expect(await (await fetch(`${g.adminUrl}/metrics`)).text()).not.toMatch(/store_errors_total\{/);
  });
});

describe('Redis killed while requests flow, then restarted', () => {
  let redis: OwnRedis;
  const gates: Record<'memory' | 'allow' | 'deny', RunningGate | undefined> = { memory: undefined, allow: undefined, deny: undefined };
  const prefix = uniquePrefix('outage');
  let token: string;

  beforeAll(async () => {
    redis = await startOwnRedis();
    token = await sign(key, { sub: 'zoe' });
    for (const mode of ['memory', 'allow', 'deny'] as const) {
      gates[mode] = await startGate({
        yaml: config(redis.url, `${prefix}${mode}:`, '    - { name: r, limit: 3, window: 60s }', `  onStoreError: ${mode}`),
        files: { 'jwks.json': JSON.stringify(jwks(key)) },
      });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(gates).map((g) => g?.stop()));
    await redis.stop();
  });

  const call = async (g: RunningGate) => {
    const started = Date.now();
    const res = await forward(g.url, 'GET', '/api/x', { Authorization: `Bearer ${token}` });
    return { res, ms: Date.now() - started };
  };

  test('each fail mode does what it says; nothing hangs; the process stays up; /readyz follows the fail mode', async () => {
    for (const g of Object.values(gates)) await waitReady(g!, 200, '?strict=1');
    // One request while Redis is up: each replica has spent one shared point.
    for (const g of Object.values(gates)) expect((await call(g!)).res.status).toBe(200);

    await redis.kill();
    for (const g of Object.values(gates)) await waitReady(g!, 503, '?strict=1');
    // Fail-open modes stay ready (degraded); deny is not ready (CONTRACT.md, "Readiness").
    expect((await fetch(`${gates.memory!.adminUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${gates.allow!.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${gates.deny!.url}/readyz`)).status).toBe(503);

    // memory: the replica carries on from the shared count it last saw (it spent the first of the
    // 3 shared points of its key prefix, so it saw 2 left): it grants those 2, not a fresh 3 (issue 13 item 13).
    const mem = [];
    for (let i = 0; i < 4; i++) mem.push(await call(gates.memory!));
    expect(mem.map((m) => m.res.status)).toEqual([200, 200, 429, 429]);
    expect(mem[0]!.res.headers.get('ratelimit')).toMatch(/^"r";r=1;t=\d+$/);
    // allow: everything passes, without RateLimit headers (nothing was counted).
    const allow = await call(gates.allow!);
    expect(allow.res.status).toBe(200);
    expect(allow.res.headers.get('ratelimit')).toBeNull();
    // deny: 503 store_unavailable with Retry-After.
    const deny = await call(gates.deny!);
    expect(deny.res.status).toBe(503);
    expect(deny.res.headers.get('retry-after')).toBe('1');
    expect(await deny.res.json()).toMatchObject({ code: 'store_unavailable', status: 503 });

    // No request waited for Redis: well under the command timeout plus overhead.
    for (const m of [...mem, allow, deny]) expect(m.ms).toBeLessThan(1000);
    for (const g of Object.values(gates)) expect(g!.proc.exitCode).toBeNull();
    expect((await fetch(`${gates.deny!.url}/healthz`)).status).toBe(200);
  });

  test('Redis restarted: shared limiting resumes without a gate restart', async () => {
    await redis.restart();
    for (const g of Object.values(gates)) await waitReady(g!, 200);
    const raw = new Redis(redis.url);
    // The restarted Redis is empty: the rule counts from zero again, in Redis.
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(gates.deny!)).res.status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(await raw.get(`${prefix}deny:rl:r:c:zoe`)).toBe('4');
    raw.disconnect();
  });
});

describe('a hung Redis (socket open, nothing answers)', () => {
  test('/readyz?strict=1 turns 503 (plain /readyz says degraded), requests stay bounded by the command timeout, and it recovers', async () => {
    const redis = await startOwnRedis();
    const g = await startGate({
      yaml: config(redis.url, uniquePrefix('hung'), '    - { name: r, limit: 100, window: 60s }', '  onStoreError: memory'),
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
    });
    try {
      await waitReady(g, 200, '?strict=1');
      redis.pause();
      await waitReady(g, 503, '?strict=1');
      expect(await (await fetch(`${g.url}/readyz`)).json()).toMatchObject({ status: 'degraded' });
      const started = Date.now();
      const res = await forward(g.url, 'GET', '/api/x', { Authorization: `Bearer ${await sign(key, { sub: 'hung' })}` });
      expect(res.status).toBe(200); // the memory fail mode answered
      expect(Date.now() - started).toBeLessThan(1000); // commandTimeout is 200ms
      redis.resume();
      await waitReady(g, 200);
    } finally {
      await g.stop();
      await redis.stop();
    }
  });
});
