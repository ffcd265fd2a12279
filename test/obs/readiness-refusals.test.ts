// /readyz, metrics and logs when Redis answers but refuses writes (out of memory under noeviction,
// as kubernetes/redis.yaml ships it; store.url at a replica), and for gates whose deny fail mode no
// request meets (shadow mode, no rules). The CLI on a socket, test-owned redis-servers.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { parseMetrics, total } from '../helpers/prom.js';
import { readyz, until } from '../helpers/readiness.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const yaml = (rateLimit: string, conflict: string, claim = true) => `
store: { keyPrefix: "cgtest:refuse:" }
auth: { jwksFile: jwks.json, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
rateLimit: { ${rateLimit} }
conflict: { claim: { enabled: ${claim} }, ${conflict} }
`;
const ENFORCED_RL = 'onStoreError: memory, rules: [{ name: all, limit: 1000, window: 60s }]';
const ENFORCED_CF = 'onStoreError: allow, resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]';

/** The gate's log lines holding `text`, once at least one has arrived (stdout is read as it comes). */
async function logged(g: RunningGate, text: string): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const lines = g.output().split('\n').filter((l) => l.includes(text));
    if (lines.length > 0) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no log line holds ${JSON.stringify(text)}:\n${g.output()}`);
}

const gauge = async (g: RunningGate, name: string) => total(parseMetrics(await (await fetch(`${g.adminUrl}/metrics`)).text()), name);

let key: TestKey;
beforeAll(async () => {
  key = await makeKey('ES256');
});

async function gateOn(redis: OwnRedis, rateLimit = ENFORCED_RL, conflict = ENFORCED_CF, claim = true): Promise<RunningGate> {
  return startGate({ yaml: yaml(rateLimit, conflict, claim), files: { 'jwks.json': JSON.stringify(jwks(key)) }, env: { REDIS_URL: redis.url } });
}

describe('Redis answers but refuses writes', () => {
  let redis: OwnRedis;
  let raw: Redis;
  let g: RunningGate;
  beforeAll(async () => {
    redis = await startOwnRedis();
    raw = new Redis(redis.url);
    // No claims: a write's check is a version read, which a full Redis still answers.
    g = await gateOn(redis, ENFORCED_RL, ENFORCED_CF, false);
    await until(g, (x) => x.body.status === 'ready', 'before');
  });
  afterAll(async () => {
    await g?.stop();
    raw?.disconnect();
    await redis?.stop();
  });

  test('out of memory under noeviction: degraded with Redis words, store_up 0, one warn line; stale writes still 412; ready again once it has room', async () => {
    await raw.set('cgtest:refuse:ver:{orders:77}', '8');
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    await raw.config('SET', 'maxmemory', '1');
    const put = async (etag: string) => (await forward(g.url, 'PUT', '/api/orders/77', { Authorization: `Bearer ${await sign(key)}`, 'If-Match': etag })).status;
    // A write's rate-limit increment meets the refusal (onStoreError memory decides it); the probe names it at once.
    expect(await put('"8"')).toBe(200);
    const r = await until(g, (x) => x.body.status === 'degraded', 'out of memory');
    expect(r.code).toBe(200);
    expect(r.body.reason).toContain("refusing writes (OOM command not allowed when used memory > 'maxmemory')");
    expect(await gauge(g, 'conflict_gate_store_up')).toBe(0);
    expect(await gauge(g, 'conflict_gate_degraded')).toBe(1);
    // Versions are still read: a stale write is refused, again and again (not let through as an outage).
    for (let i = 0; i < 3; i++) expect(await put('"7"')).toBe(412);
    expect(await put('"8"')).toBe(200);
    const warns = await logged(g, 'refusing writes (OOM');
    expect(warns.length).toBe(1);
    expect(JSON.parse(warns[0]!)).toMatchObject({ level: 'warn' });
    // Still refusing through a lost connection: the state ends only with a write check that passes.
    await raw.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await new Promise((r) => setTimeout(r, 600));
    expect((await readyz(g)).body.reason).toContain('refusing writes (OOM');
    await raw.config('SET', 'maxmemory', '0');
    await until(g, (x) => x.body.status === 'ready', 'room again');
    await logged(g, 'store: accepting writes again');
    expect(await gauge(g, 'conflict_gate_store_up')).toBe(1);
  });

  test('a lost connection is logged when it goes and when it comes back', async () => {
    const count = (text: string) => g.output().split('\n').filter((l) => l.includes(text)).length;
    const [gone, back] = [count('not connected (the connection closed)'), count('store: serving again')];
    await redis.kill();
    await until(g, (x) => !x.body.checks.store, 'killed');
    await redis.restart();
    await until(g, (x) => x.body.status === 'ready', 'restarted');
    await expect.poll(() => count('not connected (the connection closed)')).toBe(gone + 1);
    await expect.poll(() => count('store: serving again')).toBe(back + 1);
  });
});

describe('store.url at a replica', () => {
  let master: OwnRedis;
  let replica: OwnRedis;
  let g: RunningGate;
  beforeAll(async () => {
    [master, replica] = await Promise.all([startOwnRedis(), startOwnRedis()]);
    g = await gateOn(replica, ENFORCED_RL, ENFORCED_CF.replace('allow', 'deny'));
    await until(g, (x) => x.body.status === 'ready', 'before');
  });
  afterAll(async () => {
    await g?.stop();
    await Promise.all([master?.stop(), replica?.stop()]);
  });

  test('not ready (conflict.onStoreError deny) with the reason; writes 503; ready once it is a master again', async () => {
    const raw = new Redis(replica.url);
    try {
      await raw.replicaof('127.0.0.1', String(master.port));
      // The first write meets READONLY (its fail mode answers) and has the probe check writes at once.
      const write = await forward(g.url, 'PUT', '/api/orders/1', { Authorization: `Bearer ${await sign(key)}` });
      expect(write.status).toBe(503);
      const r = await until(g, (x) => !x.body.checks.store, 'replica');
      expect(r.code).toBe(503);
      expect(r.body.reason).toContain("refusing writes (READONLY You can't write against a read only replica)");
      // A gate started on the replica knows it at its first connection, before any request.
      const booted = await gateOn(replica);
      try {
        const b = await until(booted, (x) => !x.body.checks.store, 'booted on a replica');
        expect(b).toMatchObject({ code: 200, body: { status: 'degraded' } });
        expect(b.body.reason).toContain('refusing writes (READONLY');
      } finally {
        await booted.stop();
      }
      await raw.replicaof('NO', 'ONE');
      await until(g, (x) => x.body.status === 'ready', 'master again');
    } finally {
      raw.disconnect();
    }
  });
});

describe('a deny fail mode that shadow mode turns into allows does not take the replica out', () => {
  let redis: OwnRedis;
  const gates: Record<string, RunningGate> = {};
  beforeAll(async () => {
    redis = await startOwnRedis();
    const configs: Record<string, [string, string]> = {
      shadow: [`mode: shadow, ${ENFORCED_RL.replace('memory', 'deny')}`, `mode: shadow, ${ENFORCED_CF.replace('allow', 'deny')}`],
      'no rules': ['onStoreError: deny', 'onStoreError: deny'],
      'one rule enforced': [`mode: shadow, onStoreError: deny, rules: [{ name: all, limit: 1000, window: 60s, mode: enforce }]`, ENFORCED_CF],
    };
    for (const [name, [rl, cf]] of Object.entries(configs)) gates[name] = await gateOn(redis, rl, cf);
    for (const g of Object.values(gates)) await until(g, (x) => x.body.status === 'ready', 'before');
    await redis.kill();
  });
  afterAll(async () => {
    await Promise.allSettled(Object.values(gates).map((g) => g.stop()));
    await redis?.stop();
  });

  test.each(['shadow'])('%s: degraded (200), and it allows', async (name) => {
    const g = gates[name]!;
    const r = await until(g, (x) => !x.body.checks.store, 'killed');
    expect(r).toMatchObject({ code: 200, body: { status: 'degraded' } });
    expect(await gauge(g, 'conflict_gate_degraded')).toBe(1);
    const write = await forward(g.url, 'PUT', '/api/orders/1', { Authorization: `Bearer ${await sign(key)}` });
    expect(write.status).toBe(200);
  });

  test('no rules: not ready, as the contract words it (every onStoreError fail-open, or 503)', async () => {
    const r = await until(gates['no rules']!, (x) => !x.body.checks.store, 'killed');
    expect(r.code).toBe(503);
    expect(r.body.reason).toMatch(/and rateLimit\.onStoreError and conflict\.onStoreError are deny$/);
  });

  test('one enforced rule under a shadow gate: not ready, and it denies', async () => {
    const g = gates['one rule enforced']!;
    const r = await until(g, (x) => !x.body.checks.store, 'killed');
    expect(r.code).toBe(503);
    expect(r.body.reason).toMatch(/and rateLimit\.onStoreError is deny$/);
    const write = await forward(g.url, 'PUT', '/api/orders/1', { Authorization: `Bearer ${await sign(key)}` });
    expect(write.status).toBe(503);
  });
});
