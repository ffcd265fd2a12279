// The conflict gate through /auth on a real socket (the CLI as a child process) and real Redis.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../../helpers/tokens.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefixes: string[] = [];
let key: TestKey;
let bearer: Record<string, string>;

beforeAll(async () => {
  key = await makeKey('ES256');
  bearer = { Authorization: `Bearer ${await sign(key, { scope: 'orders:write' })}` };
});
afterAll(async () => {
  for (const p of prefixes) await flushPrefix(raw, p);
  raw.disconnect();
});

async function gate(conflict: string): Promise<{ g: RunningGate; prefix: string }> {
  const prefix = uniquePrefix('conflict');
  prefixes.push(prefix);
  const g = await startGate({
    yaml: `
store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}", commandTimeout: 2s }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
conflict:
${conflict}`,
    files: { 'jwks.json': JSON.stringify(jwks(key)) },
  });
  for (let i = 0; i < 50 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  return { g, prefix };
}

describe('preconditions against the version cache', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await gate(`
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/carts/:id", key: "carts:{id}", require: client-version }
    - { path: "/api/notes/:id", key: "notes:{id}", require: any }
    - { path: "/api/docs/:id", key: "docs:{id}" }
`));
    await raw.set(`${prefix}ver:{orders:42}`, '8');
    await raw.set(`${prefix}ver:{carts:7}`, '2.4.1');
    await raw.set(`${prefix}ver:{notes:1}`, '3');
    await raw.set(`${prefix}ver:{docs:1}`, 'abc');
  });
  afterAll(() => g.stop());

  test.each<[string, string, string, Record<string, string>, number, string | null]>([
    ['current If-Match', 'PUT', '/api/orders/42', { 'If-Match': '"8"' }, 200, null],
    ['stale If-Match', 'PATCH', '/api/orders/42', { 'If-Match': '"7"' }, 412, 'precondition_failed'],
    ['weak If-Match', 'DELETE', '/api/orders/42', { 'If-Match': 'W/"8"' }, 412, 'precondition_failed'],
    ['If-None-Match * on an existing resource', 'POST', '/api/docs/1', { 'If-None-Match': '*' }, 412, 'precondition_failed'],
    ['If-Match absent where required', 'PUT', '/api/orders/42', {}, 428, 'precondition_required'],
    ['a trailing slash is the same resource', 'PUT', '/api/orders/42/', {}, 428, 'precondition_required'],
    ['doubled slashes are the same resource', 'PUT', '//api//orders/42', { 'If-Match': '"7"' }, 412, 'precondition_failed'],
    ['If-None-Match * with a passing If-Match on an existing resource', 'PUT', '/api/orders/42', { 'If-Match': '"8"', 'If-None-Match': '*' }, 412, 'precondition_failed'],
    ['Client-Version absent where required', 'PUT', '/api/carts/7', { 'If-Match': '"2.4.1"' }, 428, 'precondition_required'],
    ['stale Client-Version', 'PUT', '/api/carts/7', { 'Client-Version': '2.4.0' }, 409, 'stale_client_version'],
    ['current Client-Version', 'PUT', '/api/carts/7', { 'Client-Version': '2.4.1' }, 200, null],
    ['require any, none sent', 'PUT', '/api/notes/1', {}, 428, 'precondition_required'],
    ['require any, Client-Version sent', 'PUT', '/api/notes/1', { 'Client-Version': '3' }, 200, null],
    ['malformed If-Match', 'PUT', '/api/orders/42', { 'If-Match': '8' }, 400, 'bad_forward_request'],
    ['a read is never gated', 'GET', '/api/orders/42', {}, 200, null],
    ['an unconfigured path is not gated', 'PUT', '/api/other/1', {}, 200, null],
    ['an unknown resource is allowed by default', 'PUT', '/api/orders/999', { 'If-Match': '"1"' }, 200, null],
  ])('%s → %i', async (_n, method, uri, headers, status, code) => {
    const res = await forward(g.url, method, uri, { ...bearer, ...headers });
    expect(res.status).toBe(status);
    if (code === null) {
      expect(await res.text()).toBe('');
      return;
    }
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status, code });
    if (status === 412 || status === 409) {
      expect(res.headers.get('etag')).toMatch(/^"[^"]+"$/);
      expect(body.currentVersion).toBe(JSON.parse(res.headers.get('etag')!));
    }
  });

  test('a stale If-Match carries the exact ETag and currentVersion', async () => {
    const res = await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"7"' });
    expect(res.headers.get('etag')).toBe('"8"');
    expect((await res.json()).currentVersion).toBe('8');
  });

  test('an allowed write carries X-Resource-Key and X-Resource-Version; a read carries them empty', async () => {
    const w = await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"8"' });
    expect(w.headers.get('x-resource-key')).toBe('orders:42');
    expect(w.headers.get('x-resource-version')).toBe('8');
    const r = await forward(g.url, 'GET', '/api/orders/42', { ...bearer, 'X-Resource-Version': '999' });
    expect(r.headers.get('x-resource-key')).toBe('');
    expect(r.headers.get('x-resource-version')).toBe('');
  });

  test('a version or key no header may carry is sent percent-encoded, not left to hang the answer', async () => {
    // An upstream's raw SET can hold anything, and a path segment decodes to any character: a
    // control character or one beyond Latin-1 would make Node refuse the whole header block.
    const cases: [version: string, sent: string][] = [
      ['a\nb', 'a%0Ab'],
      ['v€1', 'v%E2%82%AC1'],
      ['é', '%C3%A9'],
      ['100%\u0001', '100%25%01'],
      ['Wed, 02 Dec 2026 10:00:00 GMT', 'Wed, 02 Dec 2026 10:00:00 GMT'],
      ['50%', '50%'],
    ];
    for (const [i, [version, sent]] of cases.entries()) {
      await raw.set(`${prefix}ver:{docs:v${i}}`, version);
      const res = await forward(g.url, 'PUT', `/api/docs/v${i}`, bearer, { signal: AbortSignal.timeout(3000) });
      expect([version, res.status]).toEqual([version, 200]);
      expect(res.headers.get('x-resource-version')).toBe(sent);
    }
    for (const [segment, key] of [['%E2%82%AC', 'docs:%E2%82%AC'], ['caf%C3%A9', 'docs:caf%C3%A9']]) {
      const res = await forward(g.url, 'PUT', `/api/docs/${segment}`, bearer, { signal: AbortSignal.timeout(3000) });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-resource-key')).toBe(key);
    }
  });

  test('a path sent as raw UTF-8 bytes is refused, not read as another resource', async () => {
    // nginx passes a client's raw bytes on; Node reads the header as Latin-1 (`é` → `Ã©`), while an
    // upstream reading UTF-8 writes `café`: the stale If-Match below must not pass as a write to an
    // unknown resource.
    await raw.set(`${prefix}ver:{docs:café}`, '5');
    expect((await forward(g.url, 'PUT', '/api/docs/caf%C3%A9', { ...bearer, 'If-Match': '"4"' })).status).toBe(412);
    const res = await forward(g.url, 'PUT', '/api/docs/caf\u00c3\u00a9', { ...bearer, 'If-Match': '"4"' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'bad_forward_request' });
  });

  test('an upstream SET is seen on the next write', async () => {
    await raw.set(`${prefix}ver:{orders:42}`, '9');
    expect((await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"8"' })).status).toBe(412);
    expect((await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"9"' })).status).toBe(200);
  });

  test('reads touch no version key (no Redis command for a GET)', async () => {
    // MONITOR, filtered by this gate's key prefix: the shared Redis serves other test files meanwhile.
    const monitor = await raw.duplicate().monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.includes(`${prefix}ver:`) || a.includes(`${prefix}claim:`))) seen.push(args.join(' '));
    });
    for (let i = 0; i < 5; i++) await forward(g.url, 'GET', '/api/orders/42', bearer);
    await forward(g.url, 'PUT', '/api/orders/42', { ...bearer, 'If-Match': '"8"' });
    await new Promise((r) => setTimeout(r, 100));
    monitor.disconnect();
    // the one write read its version; the five reads touched none
    expect(seen.length).toBe(1);
  });
});

describe('policy switches', () => {
  test('ifMatchStatus 409 and unknownResource deny', async () => {
    const { g, prefix } = await gate(`
  ifMatchStatus: 409
  unknownResource: deny
  resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]
`);
    await raw.set(`${prefix}ver:{orders:1}`, '4');
    const stale = await forward(g.url, 'PUT', '/api/orders/1', { ...bearer, 'If-Match': '"3"' });
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ code: 'precondition_failed', status: 409, currentVersion: '4' });
    const unknown = await forward(g.url, 'PUT', '/api/orders/2', { ...bearer, 'If-Match': '"1"' });
    expect(unknown.status).toBe(409); // If-Match denial, switched
    expect((await forward(g.url, 'PUT', '/api/orders/2', bearer)).status).toBe(412);
    expect((await forward(g.url, 'POST', '/api/orders/2', { ...bearer, 'If-None-Match': '*' })).status).toBe(200);
    await g.stop();
  });

  test('onStoreError deny: Redis unreachable gives 503 store_unavailable; allow lets writes through', async () => {
    for (const mode of ['deny', 'allow']) {
      const g = await startGate({
        yaml: `
store: { url: "redis://127.0.0.1:1/0", commandTimeout: 100ms }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
conflict:
  onStoreError: ${mode}
  resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]`,
        files: { 'jwks.json': JSON.stringify(jwks(key)) },
      });
      const res = await forward(g.url, 'PUT', '/api/orders/1', { ...bearer, 'If-Match': '"1"' });
      if (mode === 'deny') {
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(await res.json()).toMatchObject({ code: 'store_unavailable' });
      } else {
        expect(res.status).toBe(200);
        expect(res.headers.get('x-resource-version')).toBe('');
      }
      // Readiness follows the fail mode: deny is not ready, allow (rateLimit's default memory too) degraded.
      expect((await fetch(`${g.url}/readyz`)).status).toBe(mode === 'deny' ? 503 : 200);
      expect((await fetch(`${g.url}/readyz?strict=1`)).status).toBe(503);
      await g.stop();
    }
  });
});

describe('claim mode', () => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    ({ g, prefix } = await gate(`
  claim: { enabled: true, lease: 3s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`));
  });
  afterAll(() => g.stop());

  test('20 concurrent writes with the same If-Match: exactly one allowed, 19 get 409 write_in_progress', async () => {
    await raw.set(`${prefix}ver:{orders:1}`, '5');
    const results = await Promise.all(Array.from({ length: 20 }, () => forward(g.url, 'PUT', '/api/orders/1', { ...bearer, 'If-Match': '"5"' })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const denied = results.find((r) => r.status === 409)!;
    const retryAfter = Number(denied.headers.get('retry-after'));
    expect(retryAfter >= 1 && retryAfter <= 3).toBe(true);
    expect(await denied.json()).toMatchObject({ code: 'write_in_progress', retryAfter });
    expect(await raw.get(`${prefix}claim:{orders:1}`)).toMatch(/:5$/);
  });

  test('a claim key with no expiry (not a lease a gate took) blocks nothing and is replaced by a lease', async () => {
    await raw.set(`${prefix}ver:{orders:9}`, '5');
    await raw.set(`${prefix}claim:{orders:9}`, 'someone:5');
    expect((await forward(g.url, 'PUT', '/api/orders/9', { ...bearer, 'If-Match': '"5"' })).status).toBe(200);
    const ttl = await raw.pttl(`${prefix}claim:{orders:9}`);
    expect(ttl > 0 && ttl <= 3000).toBe(true);
    expect((await forward(g.url, 'PUT', '/api/orders/9', { ...bearer, 'If-Match': '"5"' })).status).toBe(409);
  });

  test('after the version changes (a direct SET), the next write is allowed', async () => {
    await raw.set(`${prefix}ver:{orders:1}`, '6');
    expect((await forward(g.url, 'PUT', '/api/orders/1', { ...bearer, 'If-Match': '"5"' })).status).toBe(412);
    expect((await forward(g.url, 'PUT', '/api/orders/1', { ...bearer, 'If-Match': '"6"' })).status).toBe(200);
  });

  test('a stale write does not keep the lease it briefly took', async () => {
    await raw.set(`${prefix}ver:{orders:2}`, '1');
    expect((await forward(g.url, 'PUT', '/api/orders/2', { ...bearer, 'If-Match': '"0"' })).status).toBe(412);
    await new Promise((r) => setTimeout(r, 50));
    expect((await forward(g.url, 'PUT', '/api/orders/2', { ...bearer, 'If-Match': '"1"' })).status).toBe(200);
  });

  test('the lease ends at expiry', async () => {
    const { g: short, prefix: p2 } = await gate(`
  claim: { enabled: true, lease: 1s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}" }]
`);
    await raw.set(`${p2}ver:{orders:1}`, '1');
    expect((await forward(short.url, 'PUT', '/api/orders/1', bearer)).status).toBe(200);
    // (the 409 must come within the lease: a second leaves room on a loaded machine)
    expect((await forward(short.url, 'PUT', '/api/orders/1', bearer)).status).toBe(409);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await forward(short.url, 'PUT', '/api/orders/1', bearer)).status).toBe(200);
    await short.stop();
  });
});
