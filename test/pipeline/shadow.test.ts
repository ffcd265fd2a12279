// Shadow mode, per gate and per rule: the store sees what enforce would do; only the answer changes.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefixes: string[] = [];
let key: TestKey;
beforeAll(async () => {
  key = await makeKey('ES256');
});
afterAll(async () => {
  for (const p of prefixes) await flushPrefix(raw, p);
  raw.disconnect();
});

async function gate(sections: string): Promise<{ g: RunningGate; prefix: string }> {
  const prefix = uniquePrefix('shadow');
  prefixes.push(prefix);
  const g = await startGate({
    yaml: `
store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}" }
${sections}`,
    files: { 'jwks.json': JSON.stringify(jwks(key)) },
  });
  for (let i = 0; i < 50 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  return { g, prefix };
}

const AUTH = (scopes: string) => `auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  requireScopes:
${scopes}`;

const bearer = async (sub: string, scope: string) => ({ Authorization: `Bearer ${await sign(key, { sub, scope })}` });

async function metric(g: RunningGate, gateName: string, code: string): Promise<number> {
  const text = await (await fetch(`${g.adminUrl}/metrics`)).text();
  const m = new RegExp(`^conflict_gate_shadow_denials_total\\{gate="${gateName}",code="${code}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Log lines are flushed every 250 ms: waits (bounded) until `count` of them are out. */
async function logLines(g: RunningGate, match: (l: Record<string, unknown>) => boolean, count = 1): Promise<Record<string, unknown>[]> {
  let found: Record<string, unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    found = g.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter(match);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}

describe('a shadowed rate-limit rule', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await gate(`${AUTH('    []')}
rateLimit:
  rules:
    - { name: watch, path: "/api/watched/*", limit: 2, window: 60s, mode: shadow }
    - { name: twin, path: "/api/twin/*", limit: 2, window: 60s }
    - { name: hard, path: "/api/hard/*", limit: 1, window: 60s }
`));
  });
  afterAll(() => g.stop());

  test('allows past the limit, says so in X-Gate-Shadow, and spends the points enforce would', async () => {
    const h = await bearer('sam', '');
    const statuses: number[] = [];
    const shadows: (string | null)[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await forward(g.url, 'GET', '/api/watched/x', h);
      statuses.push(r.status);
      shadows.push(r.headers.get('x-gate-shadow'));
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(shadows).toEqual(['', '', 'ratelimit/rate_limited', 'ratelimit/rate_limited']);
    // exactly what the same rule in enforce counts for the same requests (the over-limit block included)
    const twin: number[] = [];
    for (let i = 0; i < 4; i++) twin.push((await forward(g.url, 'GET', '/api/twin/x', h)).status);
    expect(twin).toEqual([200, 200, 429, 429]);
    expect(await raw.get(`${prefix}rl:watch:c:sam`)).toBe(await raw.get(`${prefix}rl:twin:c:sam`));
    expect(await raw.pttl(`${prefix}rl:watch:c:sam`)).toBeGreaterThan(50_000);
    expect(await metric(g, 'ratelimit', 'rate_limited')).toBe(2);
    const lines = await logLines(g, (l) => l.shadow === true && l.code === 'rate_limited', 2);
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatchObject({ gate: 'ratelimit', code: 'rate_limited', shadow: true });
  });

  test('the shadowed allow still carries the rule budget (r=0)', async () => {
    const r = await forward(g.url, 'GET', '/api/watched/x', await bearer('sam', ''));
    expect(r.headers.get('ratelimit')).toMatch(/^"watch";r=0;t=\d+$/);
  });

  test('an enforced rule beside it still refuses', async () => {
    const h = await bearer('tess', '');
    expect((await forward(g.url, 'GET', '/api/hard/x', h)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/api/hard/x', h)).status).toBe(429);
  });
});

describe('gate-level shadow, rule-level enforce', () => {
  let g: RunningGate;
  beforeAll(async () => {
    ({ g } = await gate(`${AUTH('    []')}
rateLimit:
  mode: shadow
  rules:
    - { name: strict, path: "/api/strict/*", limit: 1, window: 60s, mode: enforce }
    - { name: soft, limit: 1, window: 60s }
conflict:
  mode: shadow
  resources:
    - { path: "/api/strict/:id", key: "strict:{id}", require: if-match, mode: enforce }
    - { path: "/api/soft/:id", key: "soft:{id}", require: if-match }
    - { path: "/api/mixed/:id", key: "mixed:{id}", require: if-match, mode: enforce }
`));
  });
  afterAll(() => g.stop());

  test('a rule in enforce under a gate in shadow still denies', async () => {
    const h = await bearer('uma', '');
    expect((await forward(g.url, 'GET', '/api/strict/1', h)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/api/strict/1', h)).status).toBe(429);
    expect((await forward(g.url, 'PUT', '/api/strict/1', await bearer('vic', ''))).status).toBe(428);
  });

  test('rules without their own mode follow the gate', async () => {
    const h = await bearer('wes', '');
    await forward(g.url, 'GET', '/api/other', h);
    const r = await forward(g.url, 'PUT', '/api/soft/1', h);
    expect(r.status).toBe(200);
    // both gates' shadowed denials, in gate order
    expect(r.headers.get('x-gate-shadow')).toBe('ratelimit/rate_limited, conflict/precondition_required');
  });

  test('a shadowed denial before an enforced one is logged as a denial with "shadow":true too', async () => {
    const h = await bearer('zed', '');
    await forward(g.url, 'GET', '/api/other', h);
    const r = await forward(g.url, 'PUT', '/api/mixed/1', h);
    expect(r.status).toBe(428);
    const shadowLines = await logLines(g, (l) => l.client === 'zed' && l.shadow === true);
    expect(shadowLines).toHaveLength(1);
    expect(shadowLines[0]).toMatchObject({ msg: 'denied', shadow: true, gate: 'ratelimit', code: 'rate_limited', status: 429 });
    const denials = await logLines(g, (l) => l.client === 'zed' && l.msg === 'denied' && l.shadow === undefined);
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ outcome: 'deny', gate: 'conflict', code: 'precondition_required', status: 428 });
  });
});

describe('shadowed conflict and scope rules', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await gate(`${AUTH('    - { methods: [PUT], path: "/api/orders/*", scopes: ["orders:write"], mode: shadow }')}
conflict:
  claim: { enabled: true, lease: 30s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match, mode: shadow }
`));
    await raw.set(`${prefix}ver:{orders:1}`, '5');
    await raw.set(`${prefix}ver:{orders:2}`, '5');
  });
  afterAll(() => g.stop());

  test('a missing scope and a stale If-Match are reported, in gate order, and the write is allowed', async () => {
    const r = await forward(g.url, 'PUT', '/api/orders/1', { ...(await bearer('xia', 'orders:read')), 'If-Match': '"4"' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gate-shadow')).toBe('auth/insufficient_scope, conflict/precondition_failed');
    expect(r.headers.get('x-resource-key')).toBe('orders:1');
    expect(r.headers.get('x-resource-version')).toBe('5');
    // as in enforce: the failed write gave its lease back, the version is untouched
    expect(await raw.exists(`${prefix}claim:{orders:1}`)).toBe(0);
    expect(await raw.get(`${prefix}ver:{orders:1}`)).toBe('5');
    expect(await metric(g, 'auth', 'insufficient_scope')).toBe(1);
    expect(await metric(g, 'conflict', 'precondition_failed')).toBe(1);
    // each shadowed denial is logged as a denial with "shadow":true, in gate order
    const lines = await logLines(g, (l) => l.client === 'xia' && l.shadow === true, 2);
    expect(lines.map((l) => [l.msg, l.gate, l.code, l.status])).toEqual([
      ['denied', 'auth', 'insufficient_scope', 403],
      ['denied', 'conflict', 'precondition_failed', 412],
    ]);
  });

  test('a second writer on a leased resource is allowed, and the lease stays the first one’s', async () => {
    const h = { ...(await bearer('yan', 'orders:write')), 'If-Match': '"5"' };
    const first = await forward(g.url, 'PUT', '/api/orders/2', h);
    expect(first.headers.get('x-gate-shadow')).toBe('');
    const lease = await raw.get(`${prefix}claim:{orders:2}`);
    expect(lease).toMatch(/:5$/);
    const second = await forward(g.url, 'PUT', '/api/orders/2', h);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-gate-shadow')).toBe('conflict/write_in_progress');
    expect(await raw.get(`${prefix}claim:{orders:2}`)).toBe(lease);
  });

  test('token validity is never shadowed', async () => {
    expect((await forward(g.url, 'PUT', '/api/orders/1', { 'If-Match': '"5"' })).status).toBe(401);
    expect((await forward(g.url, 'PUT', '/api/orders/1', { Authorization: 'Bearer not.a.token', 'If-Match': '"5"' })).status).toBe(401);
  });
});
