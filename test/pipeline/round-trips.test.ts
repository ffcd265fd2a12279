// One Redis round trip per decision: a checked write's version read travels with its rate-limit point.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { Relay } from '../helpers/relay.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefix = uniquePrefix('trips');
const relay = new Relay();
let key: TestKey;
let g: RunningGate;
/** Every gate a test started, stopped after it even when an assertion failed halfway. */
const started: RunningGate[] = [];

beforeAll(async () => {
  key = await makeKey('ES256');
  await relay.start();
  await raw.set(`${prefix}ver:{orders:42}`, '8');
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
});
afterAll(async () => {
  await relay.stop();
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

async function startWith(claim: boolean): Promise<void> {
  g = await startGate({
    yaml: `
store: { url: "redis://127.0.0.1:${relay.port}/0", keyPrefix: "${prefix}" }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit:
  rules: [{ name: all, limit: 100, window: 60s }]
conflict:
  claim: { enabled: ${claim}, lease: 5s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
    files: { 'jwks.json': JSON.stringify(jwks(key)) },
  });
  started.push(g);
  for (let i = 0; i < 50 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
}

/** The gate's writes to Redis that name `needle`. */
const carrying = (needle: string) => relay.writes.filter((w) => w.includes(needle));

describe('round trips per decision (the gate → Redis writes, seen by a relay)', () => {
  test('a write checked by If-Match: its version read goes out in the same write as its rate-limit point', async () => {
    await startWith(false);
    const bearer = { Authorization: `Bearer ${await sign(key, { sub: 'alice' })}` };
    for (const ifMatch of ['"8"', '"7"']) {
      relay.writes.length = 0;
      const res = await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': ifMatch });
      expect(res.status).toBe(ifMatch === '"8"' ? 200 : 412);
      const versionReads = carrying(`${prefix}ver:{orders:42}`);
      expect(versionReads).toHaveLength(1);
      // The same write carries the rate-limit increment: one round trip for the decision.
      expect(versionReads[0]).toContain(`${prefix}rl:all:`);
      expect(carrying(`${prefix}rl:all:`)).toHaveLength(1);
    }
  });

  test('claim mode: the lease is taken only after the rate limit has granted the point, in a write of its own', async () => {
    await startWith(true);
    const bearer = { Authorization: `Bearer ${await sign(key, { sub: 'bob' })}` };
    relay.writes.length = 0;
    const res = await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"8"' });
    expect(res.status).toBe(200);
    const claims = carrying(`${prefix}claim:{orders:42}`);
    expect(claims).toHaveLength(1);
    expect(claims[0]).not.toContain(`${prefix}rl:all:`);
    const point = relay.writes.findIndex((w) => w.includes(`${prefix}rl:all:`));
    expect(point).toBeGreaterThanOrEqual(0);
    expect(point).toBeLessThan(relay.writes.indexOf(claims[0]!));
  });
});
