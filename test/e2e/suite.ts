// The end-to-end checks every proxy must pass: the shipped example config of that proxy in front of
// the real gate (examples/gate.yaml, real Redis) and a recording upstream.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { makeKey, sign, type TestKey } from '../helpers/tokens.js';
import {
  allStarted,
  CADDY_BIN,
  NGINX_BIN,
  metrics,
  proxyVersion,
  removeTempDirs,
  send,
  startCaddy,
  startExampleGate,
  startNginx,
  startUpstream,
  sum,
  type Reply,
  type RunningProxy,
  type Upstream,
  type UpstreamCall,
} from './proxies.js';

export type ProxyKind = 'nginx' | 'caddy';

/** Every header the gate documents for an allow, plus examples/gate.yaml's forwardClaims. */
export const ALLOW_HEADERS = ['x-auth-subject', 'x-auth-scopes', 'x-auth-tenant', 'x-resource-key', 'x-resource-version', 'x-gate-shadow', 'x-idempotency-key'] as const;

/** What the example config says about the `writes` rule (test/e2e reads it from examples/gate.yaml). */
const WRITES_LIMIT = 5;
const WRITES_WINDOW_S = 60;

export interface E2E {
  kind: ProxyKind;
  key: TestKey;
  redis: Redis;
  upstream: Upstream;
  /** examples/gate.yaml as shipped (claim mode off) and its proxy. */
  prefix: string;
  gate: RunningGate;
  proxy: RunningProxy;
  /** The same config with conflict.claim.enabled, and its own proxy. */
  claimPrefix: string;
  claimGate: RunningGate;
  claimProxy: RunningProxy;
}

const loud = (lines: string[]) => `\n${'!'.repeat(90)}\n${lines.map((l) => `!!! ${l}`).join('\n')}\n${'!'.repeat(90)}\n`;

/**
 * Registers the suite for one proxy. A proxy missing here skips its group with a loud message, or
 * fails when CI=true. `extra` adds proxy-specific tests that share the running setup.
 */
export function proxySuite(kind: ProxyKind, extra?: (env: E2E, t: Helpers) => void): void {
  const bin = kind === 'nginx' ? NGINX_BIN : CADDY_BIN;
  if (!bin) {
    const why = `${kind} is not installed (looked on PATH and the usual places): the end-to-end tests through ${kind} cannot run.`;
    if (process.env.CI === 'true') {
      test(`${kind} is installed (required when CI=true)`, () => {
        throw new Error(`${why} Install it (apt-get install ${kind === 'nginx' ? 'nginx-light' : 'caddy'}).`);
      });
    } else {
      console.warn(loud([why, `SKIPPING the ${kind} group. Install ${kind === 'nginx' ? 'nginx-light' : 'caddy'} to run it; with CI=true this is a failure.`]));
      describe.skip(`through ${kind} (not installed)`, () => {
        test('skipped', () => undefined);
      });
    }
    return;
  }
  const version = kind === 'nginx' ? proxyVersion(bin, ['-v']) : proxyVersion(bin, ['version']);

  describe(`through ${kind} (${version.split('\n')[0]})`, () => {
    const env = { kind } as E2E;
    let n = 0;
    const uid = (tag: string) => `${tag}-${kind}-${++n}-${Math.random().toString(36).slice(2, 6)}`;

    beforeAll(async () => {
      env.key = await makeKey('ES256');
      env.redis = new Redis(SHARED_REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });
      env.prefix = uniquePrefix(`e2e-${kind}`);
      env.claimPrefix = uniquePrefix(`e2e-${kind}-claim`);
      env.upstream = await startUpstream();
      // Whatever did start is kept in env, so afterAll stops it even when something else failed.
      await allStarted<[RunningGate, RunningGate]>(
        [startExampleGate({ prefix: env.prefix, key: env.key }), startExampleGate({ prefix: env.claimPrefix, key: env.key, claim: true })],
        ([g, c]) => Object.assign(env, { gate: g, claimGate: c }),
      );
      const start = kind === 'nginx' ? startNginx : startCaddy;
      await allStarted<[RunningProxy, RunningProxy]>(
        [start({ gatePort: env.gate.port, appPort: env.upstream.port }), start({ gatePort: env.claimGate.port, appPort: env.upstream.port })],
        ([p, c]) => Object.assign(env, { proxy: p, claimProxy: c }),
      );
    });

    afterAll(async () => {
      // Each step on its own: one failing must not leave the others running.
      await Promise.allSettled([env.proxy?.stop(), env.claimProxy?.stop()]);
      await Promise.allSettled([env.gate?.stop(), env.claimGate?.stop(), env.upstream?.close()]);
      if (env.redis) {
        await Promise.allSettled([flushPrefix(env.redis, env.prefix), flushPrefix(env.redis, env.claimPrefix)]);
        env.redis.disconnect();
      }
      await removeTempDirs();
    });

    afterEach((ctx) => {
      if (ctx.task.result?.state !== 'fail') return;
      const tail = (s: string | undefined) => (s ?? '').split('\n').slice(-25).join('\n');
      console.error(`--- ${kind} output (tail) ---\n${tail(env.proxy?.output())}\n--- gate output (tail) ---\n${tail(env.gate?.output())}\n--- claim gate output (tail) ---\n${tail(env.claimGate?.output())}`);
    });

    const h = helpers(env);

    test('an allowed write reaches the API with the gate\'s identity and version headers, never the client\'s', async () => {
      const sub = uid('alice');
      await env.redis.set(`${env.prefix}ver:{orders:42}`, '7');
      const token = await h.token(sub, { scope: 'orders:read orders:write', tenant: 'acme' });
      const before = env.upstream.calls.length;
      const body = JSON.stringify({ status: 'shipped' });
      const r = await send(env.proxy.url, 'PUT', '/api/orders/42?notify=1', {
        Authorization: `Bearer ${token}`,
        'If-Match': '"7"',
        'Content-Type': 'application/json',
        // Spoofed: none of these may reach the API.
        'X-Auth-Subject': 'mallory',
        'X-Auth-Scopes': 'admin',
        'X-Auth-Tenant': 'evil-corp',
        'X-Resource-Key': 'orders:1',
        'X-Resource-Version': '999',
        // Underscore spellings, which PHP, CGI and WSGI backends read as the dash ones.
        X_Auth_Subject: 'mallory',
        X_Auth_Scopes: 'admin',
        X_Auth_Tenant: 'evil-corp',
        // The client's own budget, which an API echoing the pair would hand back as the gate's.
        RateLimit: '"spoof";r=999;t=1',
        'RateLimit-Policy': '"spoof";q=999;w=1',
      }, body);
      expect(r.status, r.body).toBe(200);
      expect(r.header('x-upstream')).toBe('echo');
      expect(env.upstream.calls.length).toBe(before + 1);
      const call = env.upstream.calls.at(-1)!;
      expect(call.method).toBe('PUT');
      expect(call.url).toBe('/api/orders/42?notify=1');
      expect(call.body).toBe(body);
      expect(call.headers['x-auth-subject']).toEqual([sub]);
      expect(call.headers['x-auth-scopes']).toEqual(['orders:read orders:write']);
      expect(call.headers['x-auth-tenant']).toEqual(['acme']);
      expect(call.headers['x-resource-key']).toEqual(['orders:42']);
      expect(call.headers['x-resource-version']).toEqual(['7']);
      expect(call.headers.authorization).toEqual([`Bearer ${token}`]);
      for (const spoofed of ['x_auth_subject', 'x_auth_scopes', 'x_auth_tenant', 'ratelimit', 'ratelimit-policy']) expect(call.headers[spoofed]).toBeUndefined();
      if (kind === 'nginx') {
        // Only nginx can pass the rule's budget to the client on an allow.
        expect(r.header('ratelimit')).toMatch(new RegExp(`^"writes";r=${WRITES_LIMIT - 1};t=\\d+$`));
        expect(r.header('ratelimit-policy')).toBe(`"writes";q=${WRITES_LIMIT};w=${WRITES_WINDOW_S}`);
      }

      // A read of the same resource is not a gated write: the resource headers are empty.
      const read = await send(env.proxy.url, 'GET', '/api/orders/42', { Authorization: `Bearer ${token}`, 'X-Resource-Version': '999' });
      expect(read.status, read.body).toBe(200);
      const readCall = env.upstream.calls.at(-1)!;
      expect(readCall.method).toBe('GET');
      expect(readCall.headers['x-auth-subject']).toEqual([sub]);
      h.expectEmptyOrAbsent(readCall, ['x-resource-key', 'x-resource-version']);
    });

    test('a token with 500 scopes (a 5.5 KB X-Auth-Scopes on the allow) reaches the API', async () => {
      const scopes = Array.from({ length: 500 }, (_, i) => `scope:${String(i).padStart(4, '0')}`).join(' ');
      const token = await h.token(uid('many-scopes'), { scope: scopes, tenant: 'acme' });
      const r = await send(env.proxy.url, 'GET', '/api/orders/42', { Authorization: `Bearer ${token}` });
      expect(r.status, r.body).toBe(200);
      expect(env.upstream.calls.at(-1)!.headers['x-auth-scopes']).toEqual([scopes]);
    });

    test('a public route: the client\'s identity headers never reach the API, and a token there is ignored', async () => {
      const token = await h.token(uid('tokenholder'), { scope: 'orders:write', tenant: 'acme' });
      const before = env.upstream.calls.length;
      const r = await send(env.proxy.url, 'GET', '/public/info?x=1', {
        Authorization: `Bearer ${token}`,
        'X-Gate-Shadow': 'spoofed',
        'X-Idempotency-Key': 'spoofed',
        'X-Auth-Subject': 'mallory',
        'X-Auth-Scopes': 'admin',
        'X-Auth-Tenant': 'evil-corp',
        'X-Resource-Key': 'orders:1',
        'X-Resource-Version': '999',
      });
      expect(r.status, r.body).toBe(200);
      expect(env.upstream.calls.length).toBe(before + 1);
      const call = env.upstream.calls.at(-1)!;
      expect(call.url).toBe('/public/info?x=1');
      h.expectEmptyOrAbsent(call, ALLOW_HEADERS);
    });

    test('401 missing_token: status, problem+json and one WWW-Authenticate reach the client; the API is not called', async () => {
      const { reply } = await h.denied(env.proxy, env.gate, 'GET', '/api/orders/42', {}, 401, 'missing_token');
      expect(reply.header('www-authenticate')).toBe('Bearer realm="conflict-gate"');
    });

    test('401 invalid_token (expired): the gate\'s error description reaches the client once', async () => {
      const expired = await sign(env.key, { sub: uid('late'), exp: Math.floor(Date.now() / 1000) - 3600, scope: 'orders:write' });
      const { reply } = await h.denied(env.proxy, env.gate, 'GET', '/api/orders/42', { Authorization: `Bearer ${expired}` }, 401, 'invalid_token');
      const www = reply.header('www-authenticate');
      expect(www).toMatch(/^Bearer realm="conflict-gate", error="invalid_token", error_description="[^"]*"$/);
      expect(reply.body).not.toContain(expired);
    });

    test('403 insufficient_scope with its WWW-Authenticate (once); the API is not called', async () => {
      const token = await h.token(uid('reader'), { scope: 'orders:read', tenant: 'acme' });
      await env.redis.set(`${env.prefix}ver:{orders:43}`, '7');
      const { reply } = await h.denied(env.proxy, env.gate, 'PUT', '/api/orders/43', { Authorization: `Bearer ${token}`, 'If-Match': '"7"' }, 403, 'insufficient_scope', '{}');
      expect(reply.header('www-authenticate')).toMatch(/^Bearer realm="conflict-gate", error="insufficient_scope".*scope="orders:write"/);
    });

    test('409 stale_client_version: ETag and currentVersion reach the client; the API is not called', async () => {
      const token = await h.token(uid('bob'));
      await env.redis.set(`${env.prefix}ver:{orders:44}`, '7');
      const { reply, problem } = await h.denied(env.proxy, env.gate, 'PATCH', '/api/orders/44', { Authorization: `Bearer ${token}`, 'If-Match': '"7"', 'Client-Version': '6' }, 409, 'stale_client_version', '{"qty":2}');
      expect(reply.header('etag')).toBe('"7"');
      expect(problem.currentVersion).toBe('7');
    });

    test('412 precondition_failed (stale If-Match): ETag and currentVersion reach the client; the API is not called', async () => {
      const token = await h.token(uid('carol'));
      await env.redis.set(`${env.prefix}ver:{orders:45}`, '8');
      const { reply, problem } = await h.denied(env.proxy, env.gate, 'PUT', '/api/orders/45', { Authorization: `Bearer ${token}`, 'If-Match': '"7"' }, 412, 'precondition_failed', '{}');
      expect(reply.header('etag')).toBe('"8"');
      expect(problem.currentVersion).toBe('8');
    });

    test('428 precondition_required (no If-Match); the API is not called', async () => {
      const token = await h.token(uid('dave'));
      await env.redis.set(`${env.prefix}ver:{orders:46}`, '3');
      const { problem } = await h.denied(env.proxy, env.gate, 'DELETE', '/api/orders/46', { Authorization: `Bearer ${token}` }, 428, 'precondition_required');
      expect(String(problem.detail)).toContain('If-Match');
    });

    test(`429 rate_limited after the writes rule's ${WRITES_LIMIT} points: Retry-After, RateLimit, RateLimit-Policy; each request costs one point`, async () => {
      const token = await h.token(uid('eve'));
      const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
      const m0 = await metrics(env.gate.adminUrl);
      for (let i = 0; i < WRITES_LIMIT; i++) {
        const r = await send(env.proxy.url, 'POST', '/api/orders', auth, `{"n":${i}}`);
        expect(r.status, `write ${i + 1}: ${r.body}`).toBe(200);
        if (kind === 'nginx') expect(r.header('ratelimit')).toMatch(new RegExp(`^"writes";r=${WRITES_LIMIT - 1 - i};t=\\d+$`));
      }
      const m1 = await metrics(env.gate.adminUrl);
      expect(sum(m1, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome: 'allowed' }) - sum(m0, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome: 'allowed' })).toBe(WRITES_LIMIT);

      const { reply, problem } = await h.denied(env.proxy, env.gate, 'POST', '/api/orders', auth, 429, 'rate_limited', '{"n":99}');
      const retryAfter = reply.header('retry-after');
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(WRITES_WINDOW_S);
      expect(problem.retryAfter).toBe(Number(retryAfter));
      expect(reply.header('ratelimit')).toMatch(/^"writes";r=0;t=\d+$/);
      expect(reply.header('ratelimit-policy')).toBe(`"writes";q=${WRITES_LIMIT};w=${WRITES_WINDOW_S}`);
      // The replay (nginx) is served from the kept denial: the limiter ran once for this request.
      const m2 = await metrics(env.gate.adminUrl);
      expect(sum(m2, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes' }) - sum(m1, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes' })).toBe(1);
    });

    test('a denied write costs one rate-limit point, not two (the nginx replay is free)', async () => {
      const token = await h.token(uid('frank'));
      const auth = { Authorization: `Bearer ${token}` };
      await env.redis.set(`${env.prefix}ver:{orders:47}`, '1');
      for (let i = 0; i < WRITES_LIMIT - 2; i++) expect((await send(env.proxy.url, 'POST', '/api/orders', auth, '{}')).status).toBe(200);
      // Point WRITES_LIMIT-1: a 428, decided after the rate limit; a replay that paid again would spend the last point.
      await h.denied(env.proxy, env.gate, 'PUT', '/api/orders/47', auth, 428, 'precondition_required', '{}');
      const last = await send(env.proxy.url, 'POST', '/api/orders', auth, '{}');
      expect(last.status, `the last point of ${WRITES_LIMIT} must still be there: ${last.body}`).toBe(200);
      if (kind === 'nginx') expect(last.header('ratelimit')).toMatch(/^"writes";r=0;t=\d+$/);
      await h.denied(env.proxy, env.gate, 'POST', '/api/orders', auth, 429, 'rate_limited', '{}');
    });

    test('a client sending X-Auth-Replay and its own X-Request-Id cannot skip its limits', async () => {
      const token = await h.token(uid('mallory'));
      const spoof = { Authorization: `Bearer ${token}`, 'X-Auth-Replay': '428', 'X-Request-Id': 'client-chosen-request-id-0001' };
      await env.redis.set(`${env.prefix}ver:{orders:48}`, '1');
      // A denial kept by the gate (under the proxy's own id, whatever the client says).
      await h.denied(env.proxy, env.gate, 'PUT', '/api/orders/48', spoof, 428, 'precondition_required', '{}');
      const m0 = await metrics(env.gate.adminUrl);
      for (let i = 1; i < WRITES_LIMIT; i++) {
        const before = env.upstream.calls.length;
        const r = await send(env.proxy.url, 'POST', '/api/orders', spoof, '{}');
        expect(r.status, `write ${i + 1} with a replay marker: ${r.body}`).toBe(200);
        expect(env.upstream.calls.length).toBe(before + 1);
      }
      const m1 = await metrics(env.gate.adminUrl);
      expect(sum(m1, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome: 'allowed' }) - sum(m0, 'conflict_gate_ratelimit_decisions_total', { rule: 'writes', outcome: 'allowed' })).toBe(WRITES_LIMIT - 1);
      // Over the limit: 429 (not the kept 428, not an allow).
      await h.denied(env.proxy, env.gate, 'POST', '/api/orders', spoof, 429, 'rate_limited', '{}');
    });

    test('a client over its limit stays limited: every further write in the window is 429, none reaches the API', async () => {
      const token = await h.token(uid('greedy'));
      const auth = { Authorization: `Bearer ${token}` };
      for (let i = 0; i < WRITES_LIMIT; i++) expect((await send(env.proxy.url, 'POST', '/api/orders', auth, '{}')).status).toBe(200);
      const before = env.upstream.calls.length;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await send(env.proxy.url, 'POST', '/api/orders', auth, '{}')).status);
      expect(statuses, 'statuses of the writes after the limit').toEqual([429, 429, 429, 429]);
      expect(env.upstream.calls.length, 'writes over the limit that reached the API').toBe(before);
    });

    test('409 write_in_progress in claim mode: Retry-After reaches the client, the API is not called, no lease is taken for the denial', async () => {
      const id = 900 + n;
      const verKey = `${env.claimPrefix}ver:{orders:${id}}`;
      const claimKey = `${env.claimPrefix}claim:{orders:${id}}`;
      await env.redis.set(verKey, '3');
      const first = await send(env.claimProxy.url, 'PUT', `/api/orders/${id}`, { Authorization: `Bearer ${await h.token(uid('w1'))}`, 'If-Match': '"3"' }, '{}');
      expect(first.status, first.body).toBe(200);
      expect(env.upstream.calls.at(-1)!.headers['x-resource-version']).toEqual(['3']);
      const lease = await env.redis.get(claimKey);
      const ttl = await env.redis.pttl(claimKey);
      expect(lease, 'the allowed write holds the lease').not.toBeNull();
      expect(ttl).toBeGreaterThan(0);

      const { reply, problem } = await h.denied(env.claimProxy, env.claimGate, 'PUT', `/api/orders/${id}`, { Authorization: `Bearer ${await h.token(uid('w2'))}`, 'If-Match': '"3"' }, 409, 'write_in_progress', '{}');
      const retryAfter = Number(reply.header('retry-after'));
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(5);
      expect(problem.retryAfter).toBe(retryAfter);
      // The lease is the first write's, untouched by the denial and its replay.
      expect(await env.redis.get(claimKey)).toBe(lease);
      expect(await env.redis.pttl(claimKey)).toBeLessThanOrEqual(ttl);

      // Publishing a new version voids the lease: the next write goes through.
      await env.redis.set(verKey, '4');
      const next = await send(env.claimProxy.url, 'PUT', `/api/orders/${id}`, { Authorization: `Bearer ${await h.token(uid('w3'))}`, 'If-Match': '"4"' }, '{}');
      expect(next.status, next.body).toBe(200);
    });

    test('under concurrent load no auth call reaches the API and no request without a token gets through', async () => {
      const subs = [uid('c1'), uid('c2'), uid('c3'), uid('c4')];
      const tokens = await Promise.all(subs.map((s) => h.token(s)));
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < 48; i++) {
        const j = i % subs.length;
        if (i % 2 === 0) {
          jobs.push(
            send(env.proxy.url, 'GET', `/api/orders/${i}`, { Authorization: `Bearer ${tokens[j]}` }).then((r) => {
              expect(r.status, r.body).toBe(200);
              const echoed = r.json() as unknown as UpstreamCall;
              expect(echoed.url).toBe(`/api/orders/${i}`);
              expect(echoed.headers['x-auth-subject']).toEqual([subs[j]]);
            }),
          );
        } else {
          jobs.push(
            send(env.proxy.url, 'GET', `/api/orders/${i}`, { 'X-Auth-Subject': 'mallory' }).then((r) => {
              expect(r.status, r.body).toBe(401);
              expect(r.json().code).toBe('missing_token');
            }),
          );
        }
      }
      await Promise.all(jobs);
      expect(env.upstream.callsTo('/auth'), 'auth calls misrouted to the API').toEqual([]);
    });

    test('replay keys: only a marked first call keeps a denial, and an auth denial never reaches the store', async () => {
      const replayKeys = async () => (await env.redis.keys(`${env.prefix}replay:*`)).length;
      const k0 = await replayKeys();
      for (let i = 0; i < 3; i++) expect((await send(env.proxy.url, 'GET', `/api/orders/${i}`, {})).status).toBe(401);
      expect(await replayKeys(), 'a 401 keeps nothing in the store').toBe(k0);
      const token = await h.token(uid('keeper'));
      await env.redis.set(`${env.prefix}ver:{orders:49}`, '2');
      expect((await send(env.proxy.url, 'PUT', '/api/orders/49', { Authorization: `Bearer ${token}`, 'If-Match': '"1"' }, '{}')).status).toBe(412);
      // nginx marks its first call: the 412 is kept for the replay. Caddy sends X-Request-Id on every
      // call but never the marker: nothing is written.
      expect(await replayKeys()).toBe(k0 + (kind === 'nginx' ? 1 : 0));
    });

    if (kind === 'nginx') {
      test("nginx's error log has no [error] line for the expected denials of this run", () => {
        expect(env.proxy.output()).not.toMatch(/auth request unexpected status/);
        expect(env.proxy.output()).not.toMatch(/\[error\]/);
      });
    }

    extra?.(env, h);

    test('no auth call was ever sent to the API during the whole run', () => {
      expect(env.upstream.callsTo('/auth')).toEqual([]);
      expect(env.upstream.calls.length).toBeGreaterThan(0);
    });
  });
}

export interface Helpers {
  token(sub: string, o?: { scope?: string; tenant?: string }): Promise<string>;
  expectEmptyOrAbsent(call: UpstreamCall, names: readonly string[]): void;
  /**
   * Sends a request that the gate must deny, and checks what the client got: the gate's status,
   * an application/problem+json body with that `code`, the API not called, and the gate having
   * decided and logged it once (through nginx: once, plus one replay served from the kept denial).
   */
  denied(proxy: RunningProxy, gate: RunningGate, method: string, path: string, headers: Record<string, string>, status: number, code: string, body?: string): Promise<{ reply: Reply; problem: Record<string, unknown> }>;
}

/** The gate's denial log lines with this code, so far. */
function denialLinesNow(gate: RunningGate, code: string): Record<string, unknown>[] {
  return gate
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"code":"${code}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'denied');
}

/**
 * The denial lines written since `before` were counted. Lines are flushed every 250 ms: wait until
 * the new one is there, then one flush more, so that a second line for the same request would show.
 */
async function denialLines(gate: RunningGate, code: string, before: number): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 100 && denialLinesNow(gate, code).length <= before; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  return denialLinesNow(gate, code).slice(before);
}

function helpers(env: E2E): Helpers {
  return {
    token: (sub, o = {}) => sign(env.key, { sub, scope: o.scope ?? 'orders:read orders:write', claims: { tenant: o.tenant ?? 'acme' } }),

    expectEmptyOrAbsent(call, names) {
      for (const name of names) {
        const v = call.headers[name];
        // nginx drops a header set to an empty value; Caddy passes it empty. Never the client's
        // value, never Caddy 2.6.2's literal "{http.reverse_proxy.header.…}" placeholder.
        expect(v === undefined || (v.length === 1 && v[0] === ''), `${name} reached the API as ${JSON.stringify(v)}`).toBe(true);
      }
    },

    async denied(proxy, gate, method, path, headers, status, code, body) {
      const before = env.upstream.calls.length;
      const linesBefore = denialLinesNow(gate, code).length;
      const m0 = await metrics(gate.adminUrl);
      const reply = await send(proxy.url, method, path, headers, body);
      expect(reply.status, reply.body).toBe(status);
      expect(reply.header('content-type')).toMatch(/^application\/problem\+json/);
      const problem = reply.json();
      expect(problem.code).toBe(code);
      expect(problem.status).toBe(status);
      expect(typeof problem.type).toBe('string');
      expect(typeof problem.title).toBe('string');
      expect(typeof problem.detail).toBe('string');
      expect(env.upstream.calls.length, 'the API must not be called on a denial').toBe(before);
      const m1 = await metrics(gate.adminUrl);
      const delta = (name: string, labels: Record<string, string>) => sum(m1, name, labels) - sum(m0, name, labels);
      // One client request, one decision, one log line: nginx's replay is served from the answer the
      // gate kept for the marked first call (any code), and Caddy never replays.
      const replays = proxy.kind === 'nginx' ? 1 : 0;
      expect(delta('conflict_gate_decisions_total', { outcome: 'deny', code }), `the gate decided ${code} once for this request`).toBe(1);
      expect(delta('conflict_gate_decisions_total', {}), 'decisions for this request').toBe(1);
      expect(delta('conflict_gate_replays_total', { result: 'served' }), 'replays served from the kept denial').toBe(replays);
      expect(delta('conflict_gate_replays_total', { result: 'evaluated' }), 'replays decided again').toBe(0);
      const lines = await denialLines(gate, code, linesBefore);
      expect(lines.length, `log lines for this ${code}`).toBe(1);
      expect(lines[0]).toMatchObject({ level: 'info', msg: 'denied', outcome: 'deny', code, status, reason: problem.detail });
      expect(typeof lines[0]!.requestId, 'the proxy\'s request id is in the line').toBe('string');
      return { reply, problem };
    },
  };
}
