// Versions that heal after a lost publish, versionTtl, and what the gate counts of conflicts (metrics, GET /conflicts/top).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VersionPublisher } from 'conflict-gate/client';
import type { RunningGate } from '../helpers/gate.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';
import { admin, ADMIN_TOKEN, auth, fixture, metric, type Fixture } from './helpers.js';

let f: Fixture;
let alice: Record<string, string>;
beforeAll(async () => {
  f = await fixture();
  alice = await f.bearer('alice');
});
afterAll(() => f.close());

const put = (g: RunningGate, uri: string, h: Record<string, string>) => auth(g.url, 'PUT', uri, { ...alice, ...h });

describe('a lost publish heals', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await f.gate(`
conflict:
  claim: { enabled: true, lease: 3s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/docs/:id", key: "docs:{id}", require: if-match }
    - { path: "/api/carts/:id", key: "carts:{id}", require: client-version }
`));
  });

  test('cached 3; "3" passes; upstream commits 4 but its publish is lost; "4" passes; once 4 is published, "3" is refused', async () => {
    expect((await admin(g, 'PUT', '/versions/orders:77', { version: '3' })).status).toBe(200);
    // A client writes with the current version: allowed, and the lease is taken on "3".
    expect((await put(g, '/api/orders/77', { 'If-Match': '"3"' })).status).toBe(200);
    // The upstream commits version 4 and crashes before publishing it: the lease runs out.
    await f.raw.del(`${prefix}claim:{orders:77}`);
    const healed0 = await metric(g, 'conflict_gate_version_heals_total', { rule: '/api/orders/:id' });
    // A client that read version 4 from the upstream is let through: the cache is behind.
    const next = await put(g, '/api/orders/77', { 'If-Match': '"4"' });
    expect(next.status).toBe(200);
    expect(next.header('x-resource-version')).toBe('3'); // the cached version, as always
    expect(await metric(g, 'conflict_gate_version_heals_total', { rule: '/api/orders/:id' })).toBe(healed0 + 1);
    // ... and it took the lease like any write (claim mode): a concurrent writer waits.
    const concurrent = await put(g, '/api/orders/77', { 'If-Match': '"4"' });
    expect(concurrent.status).toBe(409);
    expect(concurrent.json()).toMatchObject({ code: 'write_in_progress' });
    // Its write publishes 5 (or 4 finally arrives): the stale versions are refused again.
    expect((await admin(g, 'PUT', '/versions/orders:77', { version: '4' })).status).toBe(200);
    const stale = await put(g, '/api/orders/77', { 'If-Match': '"3"' });
    expect(stale.status).toBe(412);
    expect(stale.header('etag')).toBe('"4"');
    expect((await put(g, '/api/orders/77', { 'If-Match': '"4"' })).status).toBe(200);
  });

  test('Client-Version ahead heals the same way; behind is still 409', async () => {
    await f.raw.set(`${prefix}ver:{carts:1}`, '2.4');
    expect((await put(g, '/api/carts/1', { 'Client-Version': '2.5' })).status).toBe(200);
    await f.raw.set(`${prefix}ver:{carts:1}`, '2.5');
    expect((await put(g, '/api/carts/1', { 'Client-Version': '2.4' })).status).toBe(409);
  });

  test('opaque versions keep exact matching', async () => {
    await f.raw.set(`${prefix}ver:{docs:1}`, 'a1b2');
    expect((await put(g, '/api/docs/1', { 'If-Match': '"zzzz"' })).status).toBe(412);
    expect((await put(g, '/api/docs/1', { 'If-Match': '"99"' })).status).toBe(412);
    expect((await put(g, '/api/docs/1', { 'If-Match': '"a1b2"' })).status).toBe(200);
  });
});

describe('conflict.versionTtl', () => {
  test('a version published through the admin API or the client library expires to unknown; a raw SET is the upstream\'s own', async () => {
    const { g, prefix } = await f.gate(`
conflict:
  versionTtl: 2s
  unknownResource: deny
  resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]
`);
    const viaRedis = new VersionPublisher({ redis: { url: SHARED_REDIS_URL, keyPrefix: prefix, versionTtlMs: 2000 } });
    const viaAdmin = new VersionPublisher({ admin: { url: g.adminUrl, token: ADMIN_TOKEN } });
    try {
      expect((await admin(g, 'PUT', '/versions/orders:1', { version: '5' })).status).toBe(200);
      await viaAdmin.publish('orders:2', '5');
      await viaRedis.publish('orders:3', '5');
      await f.raw.set(`${prefix}ver:{orders:4}`, '5');
      for (const id of [1, 2, 3]) {
        const ttl = await f.raw.pttl(`${prefix}ver:{orders:${id}}`);
        expect(ttl > 0 && ttl <= 2000).toBe(true);
      }
      expect(await f.raw.pttl(`${prefix}ver:{orders:4}`)).toBe(-1);
      for (const id of [1, 2, 3, 4]) expect((await put(g, `/api/orders/${id}`, { 'If-Match': '"5"' })).status).toBe(200);
      // Published again within the ttl: it lives on.
      // (a ttl of 2 s: the steps before must all fit in it on a loaded machine)
      await new Promise((r) => setTimeout(r, 1000));
      await viaAdmin.publish('orders:1', '6');
      await new Promise((r) => setTimeout(r, 1200)); // orders:2 and 3 are past 2 s; orders:1 has 800 ms left
      expect((await put(g, '/api/orders/1', { 'If-Match': '"6"' })).status).toBe(200);
      // Idle ones expired: unknown, and unknownResource: deny applies.
      for (const id of [2, 3]) {
        const a = await put(g, `/api/orders/${id}`, { 'If-Match': '"5"' });
        expect(a.status).toBe(412);
        expect(a.json()).toMatchObject({ code: 'precondition_failed', detail: 'The resource has no known version.' });
      }
      expect((await put(g, '/api/orders/4', { 'If-Match': '"5"' })).status).toBe(200);
    } finally {
      await viaRedis.close();
      await viaAdmin.close();
    }
  });
});

describe('conflict visibility', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await f.gate(`
conflict:
  claim: { enabled: true, lease: 5s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/notes/:id", key: "notes:{id}", mode: shadow, require: if-match }
  idempotency:
    - { methods: [POST], path: "/api/orders", require: true }
`));
    for (const id of [1, 2, 3]) await f.raw.set(`${prefix}ver:{orders:${id}}`, '5');
  });

  test('refusals by rule and code in conflict_gate_conflict_denials_total (rule patterns, never resource keys)', async () => {
    for (let i = 0; i < 3; i++) await put(g, '/api/orders/1', { 'If-Match': '"4"' });
    await put(g, '/api/orders/2', {});
    await auth(g.url, 'POST', '/api/orders', alice);
    await put(g, '/api/notes/9', {});
    expect(await metric(g, 'conflict_gate_conflict_denials_total', { rule: '/api/orders/:id', code: 'precondition_failed' })).toBe(3);
    expect(await metric(g, 'conflict_gate_conflict_denials_total', { rule: '/api/orders/:id', code: 'precondition_required' })).toBe(1);
    expect(await metric(g, 'conflict_gate_conflict_denials_total', { rule: '/api/orders', code: 'idempotency_key_missing' })).toBe(1);
    // A shadowed denial refused nothing: it is in conflict_gate_shadow_denials_total, not here.
    expect(await metric(g, 'conflict_gate_conflict_denials_total', { rule: '/api/notes/:id', code: 'precondition_required' })).toBe(0);
    expect(await metric(g, 'conflict_gate_shadow_denials_total', { gate: 'conflict', code: 'precondition_required' })).toBe(1);
    const text = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(text).not.toMatch(/orders:1|notes:9/);
  });

  test('GET /conflicts/top: the hottest resource keys by conflict denials, admin token only', async () => {
    expect((await fetch(`${g.adminUrl}/conflicts/top`)).status).toBe(401);
    for (let i = 0; i < 4; i++) await put(g, '/api/orders/3', { 'If-Match': '"1"' });
    const r = await admin(g, 'GET', '/conflicts/top?n=2');
    expect(r.status).toBe(200);
    const body = (await r.json()) as { keys: Record<string, unknown>[]; capacity: number; since: string };
    expect(body.keys).toEqual([
      expect.objectContaining({ key: 'orders:3', rule: '/api/orders/:id', denied: 4, shadowed: 0, error: 0, codes: { precondition_failed: 4 } }),
      expect.objectContaining({ key: 'orders:1', rule: '/api/orders/:id', denied: 3, shadowed: 0, error: 0, codes: { precondition_failed: 3 } }),
    ]);
    expect(body.capacity).toBe(256);
    const all = (await (await admin(g, 'GET', '/conflicts/top?n=256')).json()) as { keys: { key: string; shadowed: number }[] };
    expect(all.keys.find((k) => k.key === 'notes:9')).toMatchObject({ shadowed: 1 });
    for (const bad of ['0', '257', 'x', '-1']) expect((await admin(g, 'GET', `/conflicts/top?n=${bad}`)).status).toBe(400);
  });
});
