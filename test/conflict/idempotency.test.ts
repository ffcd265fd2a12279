// Idempotency-Key at the edge through the real CLI and real Redis: every row of the contract's table and its edges.
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VersionPublisher } from 'conflict-gate/client';
import type { RunningGate } from '../helpers/gate.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';
import { admin, auth, authBlock, fixture, type Answer, type Fixture } from './helpers.js';

let f: Fixture;
let g: RunningGate;
let prefix: string;
let alice: Record<string, string>;
let bob: Record<string, string>;

beforeAll(async () => {
  f = await fixture();
  alice = await f.bearer('alice');
  bob = await f.bearer('bob');
  ({ g, prefix } = await f.gate(`${authBlock('publicRoutes: ["POST /public/*"]')}
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/items/:id", key: "items:{id}", require: if-match }
  idempotency:
    - { methods: [POST], path: "/api/orders", require: true, inFlight: 30s, ttl: 24h }
    - { methods: [POST], path: "/api/payments", inFlight: 1s, ttl: 3s }
    - { methods: [PUT, PATCH], path: "/api/orders/:id", inFlight: 30s, ttl: 1h }
    - { methods: [POST], path: "/public/signup", require: true }
    - { methods: [POST], path: "/api/watched", require: true, mode: shadow }
    - { methods: [PUT], path: "/api/items/:id", inFlight: 300ms, ttl: 1h }
  idempotencyBody: { maxBytes: 1024, timeout: 300ms }
`));
});
afterAll(() => f.close());

let seq = 0;
const newKey = () => `k-${Date.now().toString(36)}-${++seq}`;
const problem = (a: Answer) => {
  expect(a.header('content-type')).toBe('application/problem+json');
  return a.json();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the contract table', () => {
  test('400 idempotency_key_missing: a rule with require: true matched and no Idempotency-Key', async () => {
    const a = await auth(g.url, 'POST', '/api/orders', alice);
    expect(a.status).toBe(400);
    expect(problem(a)).toMatchObject({ status: 400, code: 'idempotency_key_missing' });
  });

  test.each([['an empty value', ''], ['a bare token with a space', 'a b'], ['two keys', '"a", "b"'], ['256 characters', 'x'.repeat(256)], ['an sf-string with a parameter', '"k";v=1'], ['a character outside the set', 'k*']])(
    '400 idempotency_key_malformed: %s',
    async (_n, value) => {
      const a = await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': value });
      expect(a.status).toBe(400);
      expect(problem(a)).toMatchObject({ status: 400, code: 'idempotency_key_malformed' });
    },
  );

  test('allow: the first request with a key passes, and X-Idempotency-Key holds the key without its quotes', async () => {
    const k = newKey();
    const a = await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': `"${k}"` });
    expect(a.status).toBe(200);
    expect(a.header('x-idempotency-key')).toBe(k);
    const bare = newKey();
    expect((await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': bare })).header('x-idempotency-key')).toBe(bare);
  });

  test('409 idempotency_in_flight: the same client, key and request while in flight, with Retry-After', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': `"${k}"`, 'Content-Type': 'application/json', 'Content-Length': '17' };
    expect((await auth(g.url, 'POST', '/api/orders?src=web', h)).status).toBe(200);
    const a = await auth(g.url, 'POST', '/api/orders?src=web', h);
    expect(a.status).toBe(409);
    const retryAfter = Number(a.header('retry-after'));
    expect(retryAfter >= 1 && retryAfter <= 30).toBe(true);
    expect(problem(a)).toMatchObject({ status: 409, code: 'idempotency_in_flight', retryAfter });
  });

  test.each<[string, Record<string, string>, string]>([
    ['another query', {}, '/api/orders?src=app'],
    ['another Content-Type', { 'Content-Type': 'text/plain' }, '/api/orders?src=web'],
    ['another Content-Length', { 'Content-Length': '18' }, '/api/orders?src=web'],
  ])('422 idempotency_key_reused: the same key with %s', async (_n, change, uri) => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': `"${k}"`, 'Content-Type': 'application/json', 'Content-Length': '17' };
    expect((await auth(g.url, 'POST', '/api/orders?src=web', h)).status).toBe(200);
    const a = await auth(g.url, 'POST', uri, { ...h, ...change });
    expect(a.status).toBe(422);
    expect(problem(a)).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
  });

  test('422 also once the first request is done: the key stays bound to it for ttl', async () => {
    const k = newKey();
    expect((await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': k })).status).toBe(200);
    expect((await admin(g, 'POST', '/idempotency/end', { client: 'alice', key: k })).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders?other', { ...alice, 'Idempotency-Key': k })).status).toBe(422);
  });

  test('after the upstream ends the in-flight state (admin API), a retry of the same request passes', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': `"${k}"` };
    expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(409);
    const end = await admin(g, 'POST', '/idempotency/end', { client: 'alice', key: k });
    expect(end.status).toBe(200);
    expect(await end.json()).toEqual({ ended: true, forgotten: false });
    const retry = await auth(g.url, 'POST', '/api/orders', h);
    expect(retry.status).toBe(200);
    expect(retry.header('x-idempotency-key')).toBe(k);
    expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(200); // and again, for ttl
    expect(await (await admin(g, 'POST', '/idempotency/end', { client: 'alice', key: k })).json()).toEqual({ ended: false, forgotten: false });
  });

  test.each(['redis', 'admin API'])('the client library ends the in-flight state too (via %s)', async (via) => {
    const pub =
      via === 'redis' ? new VersionPublisher({ redis: { url: SHARED_REDIS_URL, keyPrefix: prefix } }) : new VersionPublisher({ admin: { url: g.adminUrl, token: 'conflict-tests-admin-token' } });
    try {
      const k = newKey();
      const h = { ...bob, 'Idempotency-Key': k };
      expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(200);
      expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(409);
      expect(await pub.endIdempotency({ client: 'bob' }, k)).toBe('ended');
      expect((await auth(g.url, 'POST', '/api/orders', h)).status).toBe(200);
      expect(await pub.endIdempotency({ client: 'bob' }, k)).toBe('already_ended');
      expect(await pub.endIdempotency({ client: 'bob' }, `${k}-never-used`)).toBe('missing');
      // forget: the upstream stored nothing; the key is free for another request
      expect(await pub.endIdempotency({ client: 'bob' }, k, { forget: true })).toBe('already_ended');
      expect((await auth(g.url, 'POST', '/api/orders?different', h)).status).toBe(200);
    } finally {
      await pub.close();
    }
  });

  test('in flight ends by itself after inFlight; the record is gone after ttl', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k };
    expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(409);
    // (times of a second or more: each 409 below must come within inFlight of its 200, on a loaded machine too)
    await sleep(1200);
    expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(200);
    // Nobody ended it, so that retry now holds the key in flight in its turn: two never run at once.
    expect((await auth(g.url, 'POST', '/api/payments', h)).status).toBe(409);
    expect((await auth(g.url, 'POST', '/api/payments?x', h)).status).toBe(422);
    await sleep(2000); // 3.2 s after the first: past the record's ttl (a re-arm keeps it)
    expect((await auth(g.url, 'POST', '/api/payments?x', h)).status).toBe(200);
  });

  test('a rule without require lets a request with no key through, X-Idempotency-Key empty', async () => {
    const a = await auth(g.url, 'POST', '/api/payments', alice);
    expect(a.status).toBe(200);
    expect(a.header('x-idempotency-key')).toBe('');
  });

  test('X-Idempotency-Key is on every allow, empty when no rule applied, never the client\'s own', async () => {
    for (const [m, u] of [['GET', '/api/orders'], ['POST', '/api/unruled'], ['DELETE', '/api/orders']]) {
      const a = await auth(g.url, m!, u!, { ...alice, 'Idempotency-Key': 'k1', 'X-Idempotency-Key': 'spoofed' });
      expect(a.status).toBe(200);
      expect(a.headers['x-idempotency-key']).toBe('');
    }
  });

  test('a 5xx never: the admin end route refuses bad bodies with 400, and needs the admin token', async () => {
    for (const body of [{}, { client: 'a' }, { key: 'k' }, { client: 'a', ip: '1.2.3.4', key: 'k' }, { client: 'a', key: '' }, { client: 'a', key: 'k', forget: 'yes' }, { client: 'a', key: 'k', extra: 1 }, []]) {
      expect((await admin(g, 'POST', '/idempotency/end', body)).status).toBe(400);
    }
    expect((await admin(g, 'POST', '/idempotency/end', { client: 'nobody', key: 'k' })).status).toBe(404);
    expect((await admin(g, 'POST', '/idempotency/end', { client: 'a', key: 'k' }, 'wrong')).status).toBe(401);
  });
});

describe('keys are per client', () => {
  test('two clients with the same key and different requests never collide', async () => {
    const k = newKey();
    expect((await auth(g.url, 'POST', '/api/orders?who=alice', { ...alice, 'Idempotency-Key': k })).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders?who=bob', { ...bob, 'Idempotency-Key': k })).status).toBe(200);
    // and each one's own retry is still judged against its own first request
    expect((await auth(g.url, 'POST', '/api/orders?who=alice', { ...alice, 'Idempotency-Key': k })).status).toBe(409);
    expect((await auth(g.url, 'POST', '/api/orders?who=alice', { ...bob, 'Idempotency-Key': k })).status).toBe(422);
  });

  test('on a public route the client is its IP', async () => {
    const k = newKey();
    const ip = (a: string) => ({ 'X-Forwarded-For': a, 'Idempotency-Key': k });
    expect((await auth(g.url, 'POST', '/public/signup?a', ip('198.51.100.1'))).status).toBe(200);
    expect((await auth(g.url, 'POST', '/public/signup?b', ip('198.51.100.2'))).status).toBe(200);
    expect((await auth(g.url, 'POST', '/public/signup?b', ip('198.51.100.1'))).status).toBe(422);
    expect((await admin(g, 'POST', '/idempotency/end', { ip: '198.51.100.2', key: k })).status).toBe(200);
    expect((await auth(g.url, 'POST', '/public/signup?b', ip('198.51.100.2'))).status).toBe(200);
  });

  test('20 concurrent requests with one key: 1 allowed, 19 × 409 idempotency_in_flight with Retry-After', async () => {
    const k = newKey();
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': k })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const a of answers.filter((x) => x.status === 409)) {
      expect(Number(a.header('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(a.json()).toMatchObject({ code: 'idempotency_in_flight' });
    }
  });
});

describe('the body fingerprint', () => {
  const json = (s: string) => ({ 'Content-Type': 'application/json', body: s });

  test('a body sent to /auth as Traefik forwardBody does: a different body with the same length is 422, the same body 409', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'Content-Type': 'application/json' };
    const a = json('{"qty":1}');
    const b = json('{"qty":2}');
    expect((await auth(g.url, 'POST', '/api/orders', h, a.body)).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders', h, a.body)).status).toBe(409);
    const other = await auth(g.url, 'POST', '/api/orders', h, b.body);
    expect(other.status).toBe(422);
    expect(other.json()).toMatchObject({ code: 'idempotency_key_reused' });
  });

  test('a call marked as an nginx replay (a client behind Traefik can send the marker) is fingerprinted with its body too, and records nothing', async () => {
    const replay = (id: string) => ({ 'X-Request-Id': id, 'X-Auth-Replay': '500' });
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'Content-Type': 'application/json' };
    expect((await auth(g.url, 'POST', '/api/orders', h, '{"qty":1}')).status).toBe(200);
    // As without the marker: another body under the same key is 422, not 409 (Content-Type and length alike).
    const other = await auth(g.url, 'POST', '/api/orders', { ...h, ...replay(`idem-replay-${k}`) }, '{"qty":2}');
    expect(other.status).toBe(422);
    expect(other.json()).toMatchObject({ code: 'idempotency_key_reused' });
    // Such a replay cannot reach the API (nginx answers the client with it): an allow is 503, and
    // the key is not left in flight, so the client's retry is the first.
    const k2 = newKey();
    const lost = await auth(g.url, 'POST', '/api/orders', { ...h, 'Idempotency-Key': k2, ...replay(`idem-replay-${k2}`) }, '{"qty":1}');
    expect(lost.status).toBe(503);
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Idempotency-Key': k2 }, '{"qty":1}')).status).toBe(200);
  });

  test('the body wins over Content-Digest when both requests were forwarded with one', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k };
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Content-Digest': 'sha-256=:AAAA:' }, '{"a":1}')).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Content-Digest': 'sha-256=:BBBB:' }, '{"a":1}')).status).toBe(409);
  });

  test('without a forwarded body, a different Content-Digest is 422 and the same one 409', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'Content-Type': 'application/json', 'Content-Length': '9' };
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Content-Digest': 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:' })).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Content-Digest': 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:' })).status).toBe(409);
    const other = await auth(g.url, 'POST', '/api/orders', { ...h, 'Content-Digest': 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:' });
    expect(other.status).toBe(422);
    // Repr-Digest counts the same way
    const k2 = newKey();
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Idempotency-Key': k2, 'Repr-Digest': 'sha-256=:AA==:' })).status).toBe(200);
    expect((await auth(g.url, 'POST', '/api/orders', { ...h, 'Idempotency-Key': k2, 'Repr-Digest': 'sha-256=:AB==:' })).status).toBe(422);
  });

  test('a body larger than idempotencyBody.maxBytes is not read: the fingerprint falls back, the answer is not an error', async () => {
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'Content-Type': 'application/json' };
    expect((await auth(g.url, 'POST', '/api/orders', h, 'a'.repeat(2000))).status).toBe(200);
    // Same type and length, unread body: the same request as far as the gate can tell.
    expect((await auth(g.url, 'POST', '/api/orders', h, 'b'.repeat(2000))).status).toBe(409);
  });

  /** A raw HTTP/1.x call that announces a body and sends none, as nginx's auth_request subrequest does. */
  function announcedNoBody(version: '1.0' | '1.1', key: string, token: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port: g.port });
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
        if (/\r\n\r\n/.test(got)) {
          s.destroy();
          resolve(got.split('\r\n')[0]!);
        }
      });
      s.on('error', reject);
      s.write(
        [`GET /auth HTTP/${version}`, 'Host: gate', 'X-Forwarded-Method: POST', 'X-Forwarded-Uri: /api/orders', `Authorization: ${token}`, `Idempotency-Key: ${key}`, 'Content-Type: application/json', 'Content-Length: 9', '', ''].join('\r\n'),
      );
    });
  }

  test('nginx: Content-Length with no bytes is never waited on (HTTP/1.0 at once; HTTP/1.1 up to idempotencyBody.timeout)', async () => {
    for (const v of ['1.0', '1.1'] as const) {
      const line = await announcedNoBody(v, newKey(), alice.Authorization!);
      expect(line).toMatch(/^HTTP\/1\.[01] 200/);
    }
  });
});

describe('order with the preconditions (PUT /api/orders/:id, cached version 3)', () => {
  beforeAll(async () => {
    await f.raw.set(`${prefix}ver:{orders:7}`, '3');
  });

  test('a first request refused by a precondition leaves no record: the key is free for the corrected request', async () => {
    const k = newKey();
    const stale = await auth(g.url, 'PUT', '/api/orders/7?attempt=1', { ...alice, 'Idempotency-Key': k, 'If-Match': '"2"' });
    expect(stale.status).toBe(412);
    // Had it been recorded, this (another query) would be 422, and the same request 409.
    expect((await auth(g.url, 'PUT', '/api/orders/7?attempt=2', { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' })).status).toBe(200);
  });

  test('a 428 leaves no record either', async () => {
    const k = newKey();
    expect((await auth(g.url, 'PUT', '/api/orders/7?x=1', { ...alice, 'Idempotency-Key': k })).status).toBe(428);
    expect((await auth(g.url, 'PUT', '/api/orders/7?x=2', { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' })).status).toBe(200);
  });

  test('a finished request retried after its own write moved the version on passes, not 412', async () => {
    await f.raw.set(`${prefix}ver:{orders:8}`, '3');
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' };
    expect((await auth(g.url, 'PUT', '/api/orders/8', h)).status).toBe(200);
    // The upstream applied it, published 4 and ended the in-flight state; the answer was lost.
    expect((await admin(g, 'PUT', '/versions/orders:8', { version: '4' })).status).toBe(200);
    expect((await admin(g, 'POST', '/idempotency/end', { client: 'alice', key: k })).status).toBe(200);
    const retry = await auth(g.url, 'PUT', '/api/orders/8', h);
    expect(retry.status).toBe(200);
    expect(retry.header('x-resource-version')).toBe('4');
    expect(retry.header('x-idempotency-key')).toBe(k);
    // Without the key (or with a new one) the same stale write is refused as ever.
    expect((await auth(g.url, 'PUT', '/api/orders/8', { ...alice, 'If-Match': '"3"' })).status).toBe(412);
    expect((await auth(g.url, 'PUT', '/api/orders/8', { ...alice, 'Idempotency-Key': newKey(), 'If-Match': '"3"' })).status).toBe(412);
  });

  test('a retry after the in-flight time ran out, never ended by the upstream, meets the preconditions again', async () => {
    // The gate cannot know whether the first attempt reached the upstream: only an end says so.
    await f.raw.set(`${prefix}ver:{items:1}`, '3');
    const k = newKey();
    const h = { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' };
    expect((await auth(g.url, 'PUT', '/api/items/1', h)).status).toBe(200);
    expect((await admin(g, 'PUT', '/versions/items:1', { version: '4' })).status).toBe(200);
    await sleep(400);
    const expired = await auth(g.url, 'PUT', '/api/items/1', h);
    expect(expired.status).toBe(412);
    // Refused, it gave the key back out of flight, and the record stayed: once the upstream ends
    // it, the same retry passes, for the upstream to answer from what it stored.
    expect((await auth(g.url, 'PUT', '/api/items/1?other', h)).status).toBe(422);
    expect((await admin(g, 'POST', '/idempotency/end', { client: 'alice', key: k })).status).toBe(200);
    expect((await auth(g.url, 'PUT', '/api/items/1', h)).status).toBe(200);
  });

  test('a key in flight is 409 before the preconditions are looked at', async () => {
    await f.raw.set(`${prefix}ver:{orders:9}`, '3');
    const k = newKey();
    expect((await auth(g.url, 'PUT', '/api/orders/9', { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' })).status).toBe(200);
    await f.raw.set(`${prefix}ver:{orders:9}`, '4');
    const again = await auth(g.url, 'PUT', '/api/orders/9', { ...alice, 'Idempotency-Key': k, 'If-Match': '"3"' });
    expect(again.status).toBe(409);
    expect(again.json()).toMatchObject({ code: 'idempotency_in_flight' });
  });
});

describe('shadow mode and explain', () => {
  test('a shadowed rule allows and says what it would have denied; the store is written as in enforce', async () => {
    const missing = await auth(g.url, 'POST', '/api/watched', alice);
    expect(missing.status).toBe(200);
    expect(missing.header('x-gate-shadow')).toBe('conflict/idempotency_key_missing');
    const k = newKey();
    const first = await auth(g.url, 'POST', '/api/watched', { ...alice, 'Idempotency-Key': k });
    expect([first.status, first.header('x-gate-shadow'), first.header('x-idempotency-key')]).toEqual([200, '', k]);
    const again = await auth(g.url, 'POST', '/api/watched', { ...alice, 'Idempotency-Key': k });
    expect([again.status, again.header('x-gate-shadow')]).toEqual([200, 'conflict/idempotency_in_flight']);
  });

  test('POST /explain reads the record and writes none', async () => {
    const k = newKey();
    const explainIt = async () => {
      const r = await admin(g, 'POST', '/explain', { method: 'POST', uri: '/api/orders', headers: { ...alice, 'Idempotency-Key': k } });
      expect(r.status).toBe(200);
      return (await r.json()) as { gates: { gate: string; result: string; code?: string; seen?: Record<string, unknown> }[]; answer: { status: number } };
    };
    const before = await explainIt();
    expect(before.answer.status).toBe(200);
    expect(before.gates.find((x) => x.gate === 'conflict')?.seen).toMatchObject({ idempotencyKey: k, record: 'none' });
    expect((await explainIt()).answer.status).toBe(200); // still nothing recorded
    expect((await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': k })).status).toBe(200);
    const after = await explainIt();
    expect(after.answer.status).toBe(409);
    expect(after.gates.find((x) => x.gate === 'conflict')).toMatchObject({ result: 'deny', code: 'idempotency_in_flight' });
    expect((await auth(g.url, 'POST', '/api/orders', { ...alice, 'Idempotency-Key': k })).status).toBe(409);
  });
});

describe('fuzzed keys', () => {
  // An oracle written from the contract, independently of the parser: an sf-string of 1–255
  // (unescaped) printable ASCII characters, or a bare token of 1–255 of A-Za-z0-9._~:+/=-.
  function valid(v: string): boolean {
    const t = v.replace(/^[ \t]+|[ \t]+$/g, '');
    if (/^[A-Za-z0-9._~:+/=-]{1,255}$/.test(t)) return true;
    const m = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/.exec(t);
    return m !== null && m[1]!.replace(/\\(["\\])/g, '$1').length >= 1 && m[1]!.replace(/\\(["\\])/g, '$1').length <= 255;
  }
  function lcg(seed: number) {
    let s = seed >>> 0;
    return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  }

  test('300 fuzzed keys: 400 idempotency_key_malformed exactly when the contract says, 200 otherwise, never a 5xx', async () => {
    const rnd = lcg(9);
    const alphabet = ['a', 'Z', '0', '-', '.', '_', '~', ':', '+', '/', '=', ' ', '\t', '"', '\\', ',', ';', '*', '(', '@', '\u00e9', '\u00ff', '\u0080'];
    const keys: string[] = [];
    for (let i = 0; i < 300; i++) {
      const len = Math.floor(rnd() ** 2 * 300);
      let k = '';
      for (let j = 0; j < len; j++) k += rnd() < 0.7 ? String.fromCharCode(0x20 + Math.floor(rnd() * 95)) : alphabet[Math.floor(rnd() * alphabet.length)]!;
      // Most keys get a unique suffix, so that two valid ones are never the same key.
      if (i % 7 !== 0) k += `-${i}`;
      if (rnd() < 0.4) k = `"${k.replace(/["\\]/g, (c) => (rnd() < 0.8 ? `\\${c}` : c))}"`;
      keys.push(k);
    }
    const counts = { 200: 0, 400: 0 };
    for (let i = 0; i < keys.length; i += 20) {
      const batch = keys.slice(i, i + 20);
      const answers = await Promise.all(batch.map((k, j) => auth(g.url, 'POST', `/api/orders?fuzz=${i + j}`, { ...alice, 'Idempotency-Key': k })));
      answers.forEach((a, j) => {
        const k = batch[j]!;
        expect(a.status, `key ${JSON.stringify(k)}`).toBeLessThan(500);
        if (valid(k)) expect(a.status, `key ${JSON.stringify(k)}`).toBe(200);
        else {
          expect(a.status, `key ${JSON.stringify(k)}`).toBe(400);
          expect(a.json().code).toBe('idempotency_key_malformed');
        }
        counts[a.status as 200 | 400]++;
      });
    }
    // Both outcomes were exercised.
    expect(counts[200]).toBeGreaterThan(20);
    expect(counts[400]).toBeGreaterThan(20);
  });
});
