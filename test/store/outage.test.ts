// A hung or killed Redis (test-owned): calls fail fast once it is known down, late claims take nothing, blocks survive.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BlockedKeys } from '../../src/store/blocked.js';
import { RedisStore } from '../../src/store/redis.js';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { startOwnRedis, uniquePrefix, type OwnRedis } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../helpers/tokens.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves to the call's elapsed ms and its outcome (a StoreError code, or 'ok'). */
async function timed(f: () => Promise<unknown>): Promise<{ ms: number; outcome: string }> {
  const t0 = Date.now();
  try {
    await f();
    return { ms: Date.now() - t0, outcome: 'ok' };
  } catch (err) {
    return { ms: Date.now() - t0, outcome: (err as { code?: string }).code ?? 'thrown' };
  }
}

describe('store: a hung Redis (SIGSTOP)', () => {
  let redis: OwnRedis;
  let store: RedisStore;
  const COMMAND_TIMEOUT = 1000;
  beforeAll(async () => {
    redis = await startOwnRedis();
    store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix('hung'), commandTimeoutMs: COMMAND_TIMEOUT, connectTimeoutMs: 500 });
    await until('the store to answer', () => store.available());
  });
  afterAll(async () => {
    redis.resume();
    await store.close();
    await redis.stop();
  });

  test('the first call waits commandTimeout; the next ones fail at once (down) until it answers again', async () => {
    await store.publish('k', '1');
    redis.pause();
    const first = await timed(() => store.getVersion('k'));
    expect(first.outcome).toBe('timeout');
    expect(store.health()).toEqual({ up: false, reason: 'not answering (a command timed out)' });
    const next = [];
    for (let i = 0; i < 10; i++) next.push(await timed(() => store.getVersion('k')));
    expect(next.map((n) => n.outcome)).toEqual(Array(10).fill('down'));
    // None of them waited for Redis (commandTimeout is 1 s; an answer at once is a few ms).
    for (const n of next) expect(n.ms).toBeLessThan(COMMAND_TIMEOUT / 2);
    redis.resume();
    await until('the store to answer again', () => store.available(), 3000);
    expect(await store.getVersion('k')).toBe('1');
  });

  test('a claim whose command timed out takes no lease when Redis resumes', async () => {
    await store.publish('late', '4');
    redis.pause();
    expect((await timed(() => store.claim('late', 30_000, 'timed-out'))).outcome).toBe('timeout');
    redis.resume();
    await until('the store to answer again', () => store.available(), 3000);
    // Redis ran the claim after its deadline: it took nothing, so the next writer gets the lease.
    expect(await store.peekClaim('late')).toEqual({ version: '4', claim: { kind: 'free' } });
    expect(await store.claim('late', 30_000, 'next')).toEqual({ version: '4', claim: { kind: 'taken' } });
  });
});

describe('store: a killed Redis and the limiter', () => {
  test('a client known to be over its limit stays limited while Redis is down; others fail fast', async () => {
    const redis = await startOwnRedis();
    const store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix('blocked'), commandTimeoutMs: 500, connectTimeoutMs: 200 });
    try {
      await until('the store to answer', () => store.available());
      const limiter = store.limiter({ rule: 'r', points: 2, durationS: 60 });
      expect((await limiter.consume('over')).kind).toBe('allowed');
      expect((await limiter.consume('over')).kind).toBe('allowed');
      expect((await limiter.consume('over')).kind).toBe('limited');
      await redis.kill();
      await until('the store to know', () => !store.available());
      const limited = await limiter.consume('over');
      expect(limited.kind).toBe('limited');
      expect(limited.resetMs).toBeGreaterThan(50_000);
      expect(await limiter.peek('over')).toMatchObject({ kind: 'limited' });
      await expect(limiter.consume('someone-else')).rejects.toMatchObject({ code: 'not_ready' });
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

describe('BlockedKeys: bounded, O(1)', () => {
  test('past its bound the oldest entry goes; expired entries answer 0', () => {
    let now = 1000;
    const b = new BlockedKeys(3, () => now);
    b.block('a', 100);
    b.block('b', 100);
    b.block('c', 500);
    b.block('d', 100);
    expect(b.size).toBe(3);
    expect(b.remainingMs('a')).toBe(0); // dropped as the oldest
    expect(b.remainingMs('b')).toBe(100);
    now += 200;
    expect(b.remainingMs('b')).toBe(0); // expired
    expect(b.remainingMs('c')).toBe(300);
    b.unblock('c');
    expect(b.remainingMs('c')).toBe(0);
  });

  test('100 000 distinct blocked clients stay within the bound', () => {
    const b = new BlockedKeys(10_000);
    for (let i = 0; i < 100_000; i++) b.block(`ip:2001:db8::${i.toString(16)}`, 60_000);
    expect(b.size).toBe(10_000);
    expect(b.remainingMs('ip:2001:db8::1869f')).toBeGreaterThan(0); // the newest is kept
  });
});

describe('gate: a hung Redis through the CLI', () => {
  let redis: OwnRedis;
  let g: RunningGate;
  const ADMIN = 'outage-admin-token';
  beforeAll(async () => {
    redis = await startOwnRedis();
    const key = await makeKey('ES256');
    g = await startGate({
      yaml: `
store: { url: "${redis.url}", keyPrefix: "${uniquePrefix('hung-gate')}", commandTimeout: 250ms, connectTimeout: 200ms }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit: { onStoreError: memory, rules: [{ name: r, limit: 1000, window: 60s }] }
conflict:
  onStoreError: allow
  claim: { enabled: true, lease: 30s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
      env: { GATE_ADMIN_TOKEN: ADMIN },
    });
    (g as RunningGate & { token: string }).token = await sign(key, { sub: 'stalled' });
    await until('ready', async () => (await fetch(`${g.url}/readyz?strict=1`)).status === 200);
  });
  afterAll(async () => {
    redis.resume();
    await g.stop();
    await redis.stop();
  });

  test('only the requests before the gate knew waited; the lease of a timed-out claim is not taken', async () => {
    const auth = { Authorization: `Bearer ${(g as RunningGate & { token: string }).token}` };
    const put = await fetch(`${g.adminUrl}/versions/orders:9`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: '{"version":"3"}' });
    expect(put.status).toBe(200);
    redis.pause();
    const answers = [];
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      const r = await forward(g.url, 'PUT', '/api/orders/9', { ...auth, 'If-Match': '"3"' });
      answers.push({ status: r.status, ms: Date.now() - t0 });
    }
    // Every write was answered by the fail modes (memory limits, allow writes)...
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    // ...and at most the first one paid the command timeout (250 ms; one that paid it took at least
    // that long): the rest were answered at once.
    expect(answers.filter((a) => a.ms >= 250).length).toBeLessThanOrEqual(1);
    // The fail modes are fail-open here: /readyz says degraded, strict says the store does not answer, and why.
    const degraded = await fetch(`${g.url}/readyz`);
    expect(degraded.status).toBe(200);
    expect(await degraded.json()).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^the store does not answer \(not answering \(.*timed out\)\); every onStoreError fails open$/) });
    expect((await fetch(`${g.url}/readyz?strict=1`)).status).toBe(503);
    redis.resume();
    await until('ready again', async () => (await fetch(`${g.url}/readyz?strict=1`)).status === 200, 5000);
    // The claim sent while Redis was stopped ran after its deadline and took nothing: no 409 for 30 s.
    const after = await forward(g.url, 'PUT', '/api/orders/9', { ...auth, 'If-Match': '"3"' });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-resource-version')).toBe('3');
  });
});
