// /readyz under a killed test-owned Redis, for every combination of the two fail modes (the CLI on a
// socket): 200 "degraded" when every onStoreError fails open, 503 when one is deny; ?strict=1 is 503
// either way; the metrics say the same; all of it comes back without a restart.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';
import { parseMetrics, total } from '../helpers/prom.js';
import { readyz, until } from '../helpers/readiness.js';

const COMBOS = [
  ['memory', 'allow'],
  ['allow', 'allow'],
  ['deny', 'allow'],
  ['memory', 'deny'],
  ['allow', 'deny'],
  ['deny', 'deny'],
] as const;

const yaml = (rateLimit: string, conflict: string, keySource = 'jwksFile: jwks.json') => `
store: { keyPrefix: "cgtest:ready:" }
auth: { ${keySource}, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
rateLimit: { onStoreError: ${rateLimit}, rules: [{ name: all, limit: 1000, window: 60s }] }
conflict: { onStoreError: ${conflict}, resources: [{ path: "/api/orders/:id", key: "orders:{id}" }] }
`;

async function gauge(g: RunningGate, name: string): Promise<number> {
  return total(parseMetrics(await (await fetch(`${g.adminUrl}/metrics`)).text()), name);
}

let key: TestKey;
let redis: OwnRedis;
const gates: { rateLimit: string; conflict: string; g: RunningGate }[] = [];

beforeAll(async () => {
  key = await makeKey('ES256');
  redis = await startOwnRedis();
  const started = await Promise.all(
    COMBOS.map(([rl, cf]) => startGate({ yaml: yaml(rl, cf), files: { 'jwks.json': JSON.stringify(jwks(key)) }, env: { REDIS_URL: redis.url } }).then((g) => ({ rateLimit: rl, conflict: cf, g }))),
  );
  gates.push(...started);
});

afterAll(async () => {
  await Promise.allSettled(gates.map(({ g }) => g.stop()));
  await redis?.stop();
});

describe.each(COMBOS.map(([rl, cf], i) => [rl, cf, i] as const))('rateLimit.onStoreError %s, conflict.onStoreError %s', (_rl, _cf, i) => {
  const g = () => gates[i]!.g;

  test('store up: ready, strict too; degraded 0, store_up 1', async () => {
    const r = await until(g(), (x) => x.code === 200 && x.body.status === 'ready', 'store up');
    expect(r.body.checks).toEqual({ store: true, keys: true });
    expect((await readyz(g(), '?strict=1')).code).toBe(200);
    expect(await gauge(g(), 'conflict_gate_store_up')).toBe(1);
    expect(await gauge(g(), 'conflict_gate_degraded')).toBe(0);
  });
});

describe('Redis killed', () => {
  beforeAll(async () => {
    // Every gate ready first (the test above may not have run when filtering).
    for (const { g } of gates) await until(g, (x) => x.body.status === 'ready', 'before the kill');
    await redis.kill();
  });

  test.each(COMBOS.map(([rl, cf], i) => [rl, cf, i] as const))(
    'rateLimit %s, conflict %s: /readyz follows the fail modes, strict says 503, metrics agree, answers match',
    async (rl, cf, i) => {
      const g = gates[i]!.g;
      const failOpen = rl !== 'deny' && cf !== 'deny';
      const r = await until(g, (x) => !x.body.checks.store, 'after the kill');
      if (failOpen) {
        expect(r.code).toBe(200);
        expect(r.body.status).toBe('degraded');
      } else {
        expect(r.code).toBe(503);
        expect(r.body.status).toBe('not_ready');
        for (const [field, mode] of [['rateLimit.onStoreError', rl], ['conflict.onStoreError', cf]] as const) {
          if (mode === 'deny') expect(r.body.reason).toContain(field);
          else expect(r.body.reason).not.toContain(field);
        }
      }
      expect(r.body.checks).toEqual({ store: false, keys: true });
      const strict = await readyz(g, '?strict=1');
      expect(strict.code).toBe(503);
      expect(strict.body.status).toBe('not_ready');
      expect(await gauge(g, 'conflict_gate_store_up')).toBe(0);
      expect(await gauge(g, 'conflict_gate_degraded')).toBe(failOpen ? 1 : 0);
      // What a ready (degraded) replica answers is what its config promises for an outage.
      const write = await forward(g.url, 'PUT', '/api/orders/1', { Authorization: `Bearer ${await sign(key)}` });
      expect(write.status).toBe(failOpen ? 200 : 503);
      if (!failOpen) expect(((await write.json()) as { code: string }).code).toBe('store_unavailable');
    },
  );

  test('Redis back: every gate is ready again without a restart', async () => {
    await redis.restart();
    for (const { g } of gates) {
      const r = await until(g, (x) => x.code === 200 && x.body.status === 'ready', 'after the restart');
      expect(r.body.checks).toEqual({ store: true, keys: true });
      expect(await gauge(g, 'conflict_gate_degraded')).toBe(0);
    }
  });
});

describe('signing keys not loaded', () => {
  let jwksServer: JwksServer;
  let g: RunningGate;
  beforeAll(async () => {
    jwksServer = await startJwksServer([]);
    jwksServer.setDown(true);
    g = await startGate({ yaml: yaml('memory', 'allow', `jwksUrl: "${jwksServer.url}"`), env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await g?.stop();
    await jwksServer?.close();
  });

  test('not ready (503) with the store up and fail-open modes; ready once the JWKS answers', async () => {
    const r = await until(g, (x) => x.body.checks.store, 'store up');
    expect(r.code).toBe(503);
    expect(r.body).toMatchObject({ status: 'not_ready', checks: { store: true, keys: false } });
    expect(r.body.reason).toContain('keys');
    jwksServer.setKeys(jwks(key).keys);
    jwksServer.setDown(false);
    await until(g, (x) => x.code === 200 && x.body.status === 'ready', 'keys loaded');
  });
});
