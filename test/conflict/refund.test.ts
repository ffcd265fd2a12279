// conflict.refundRateLimit: a write the conflict gate refuses (412, 409, 428) gives its rate-limit point back; off, as before.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningGate } from '../helpers/gate.js';
import { auth, fixture, type Fixture } from './helpers.js';

let f: Fixture;
beforeAll(async () => {
  f = await fixture();
});
afterAll(() => f.close());

const sections = (refund: boolean, conflictMode = 'enforce') => `
rateLimit:
  rules: [{ name: writes, methods: [POST, PUT, PATCH, DELETE], path: "/api/*", limit: 3, window: 60s }]
conflict:
  refundRateLimit: ${refund}
  mode: ${conflictMode}
  claim: { enabled: true, lease: 10s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/carts/:id", key: "carts:{id}", require: client-version }
  idempotency:
    - { methods: [POST], path: "/api/payments" }
`;

/** Every refusal the refund covers, each once, by `sub` (its own budget). */
async function refusals(g: RunningGate, prefix: string, sub: string): Promise<string[]> {
  const h = await f.bearer(sub);
  const other = await f.bearer(`${sub}-other`);
  await f.raw.set(`${prefix}ver:{orders:1}`, '5');
  await f.raw.set(`${prefix}ver:{orders:2}`, '5');
  await f.raw.set(`${prefix}ver:{carts:1}`, '5');
  // Another client (its own budget) holds orders:2's lease.
  expect((await auth(g.url, 'PUT', '/api/orders/2', { ...other, 'If-Match': '"5"' })).status).toBe(200);
  const codes: string[] = [];
  const code = async (p: Promise<{ status: number; header(n: string): string | undefined; body: string }>) => {
    const a = await p;
    const shadow = a.header('x-gate-shadow');
    codes.push(a.status === 200 ? `shadow ${shadow}` : `${a.status} ${(JSON.parse(a.body) as { code: string }).code}`);
  };
  await code(auth(g.url, 'PUT', '/api/orders/1', h)); // 428
  await code(auth(g.url, 'PUT', '/api/orders/1', { ...h, 'If-Match': '"4"' })); // 412
  await code(auth(g.url, 'PUT', '/api/carts/1', { ...h, 'Client-Version': '4' })); // 409 stale_client_version
  await code(auth(g.url, 'PUT', '/api/orders/2', { ...h, 'If-Match': '"5"' })); // 409 write_in_progress
  return codes;
}

/** Writes that pass the conflict gate, until the rate limit refuses one: how many passed. */
async function budgetLeft(g: RunningGate, sub: string): Promise<number> {
  const h = await f.bearer(sub);
  for (let i = 0; i < 10; i++) {
    const a = await auth(g.url, 'POST', `/api/other/${i}`, h);
    if (a.status === 429) return i;
    expect(a.status).toBe(200);
  }
  return 10;
}

describe('conflict.refundRateLimit', () => {
  test('on: 428, 412, 409 stale_client_version and 409 write_in_progress leave the budget untouched', async () => {
    const { g, prefix } = await f.gate(sections(true));
    expect(await refusals(g, prefix, 'carol')).toEqual(['428 precondition_required', '412 precondition_failed', '409 stale_client_version', '409 write_in_progress']);
    expect(await budgetLeft(g, 'carol')).toBe(3);
  });

  test('on: 409 idempotency_in_flight is given back too; the first request with the key is not', async () => {
    const { g } = await f.gate(sections(true));
    const h = { ...(await f.bearer('erin')), 'Idempotency-Key': 'pay-1' };
    expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(409);
    expect(await budgetLeft(g, 'erin')).toBe(2);
  });

  test('on: a 400 (a malformed If-Match) is not given back', async () => {
    const { g } = await f.gate(sections(true));
    const h = await f.bearer('frank');
    expect((await auth(g.url, 'PUT', '/api/orders/1', { ...h, 'If-Match': '5' })).status).toBe(400);
    expect(await budgetLeft(g, 'frank')).toBe(2);
  });

  test('on, with the conflict gate in shadow: the store sees what enforce does, so the points come back as well', async () => {
    const { g, prefix } = await f.gate(sections(true, 'shadow'));
    expect(await refusals(g, prefix, 'grace')).toEqual([
      'shadow conflict/precondition_required',
      'shadow conflict/precondition_failed',
      'shadow conflict/stale_client_version',
      'shadow conflict/write_in_progress',
    ]);
    expect(await budgetLeft(g, 'grace')).toBe(3);
  });

  test('off (the default): a 428 and a 412 leave one write of three, as before', async () => {
    const { g, prefix } = await f.gate(sections(false));
    const h = await f.bearer('dave');
    await f.raw.set(`${prefix}ver:{orders:1}`, '5');
    expect((await auth(g.url, 'PUT', '/api/orders/1', h)).status).toBe(428);
    expect((await auth(g.url, 'PUT', '/api/orders/1', { ...h, 'If-Match': '"4"' })).status).toBe(412);
    expect(await budgetLeft(g, 'dave')).toBe(1);
  });
});
