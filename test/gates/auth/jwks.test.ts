// The remote JWKS against a real HTTP endpoint that goes down, hangs and rotates: fetch counts, waits, close().
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, test } from 'vitest';
import { readConfigText } from '../../../src/config/read.js';
import { MAX_JWKS_WAITERS, TokenVerifier } from '../../../src/gates/auth/verify.js';
import { buildApp, type TestApp } from '../../helpers/app.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';
import { freePort } from '../../helpers/net.js';
import { AUDIENCE, ISSUER, makeKey, sign, type TestKey } from '../../helpers/tokens.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

const opened: { app?: TestApp; server?: JwksServer }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.app?.close();
    await o.server?.close();
  }
});

/** A gate on a remote JWKS with a clock the test moves; keys loaded unless `wait` is false. */
async function gateOn(server: JwksServer, auth: string, o: { now?: () => number; wait?: boolean } = {}): Promise<TestApp> {
  const app = await buildApp(`store: { url: memory }\nauth: { jwksUrl: "${server.url}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], ${auth} }`, { now: o.now });
  opened.push({ app });
  app.deps.verifier.start();
  if (o.wait !== false) await until(() => app.deps.verifier.ready, 'the keys to load');
  return app;
}

async function jwksServer(...keys: TestKey[]): Promise<JwksServer> {
  const server = await startJwksServer(keys.map((k) => k.jwk));
  opened.push({ server });
  return server;
}

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
/** Distinct tokens signed by a key the JWKS does not have. */
const strangers = async (n: number) => {
  const key = await makeKey('ES256');
  return Promise.all(Array.from({ length: n }, (_, i) => sign(key, { sub: `u${i}` })));
};
const statuses = (rs: Response[]) => [...new Set(rs.map((r) => r.status))];

describe('JWKS down (issue 13 item 6): one fetch per cooldown, not one per unknown kid', () => {
  test('an outage longer than the cooldown: 450 unknown-kid tokens cost the IdP 2 fetches; known tokens keep working', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s, jwksMaxAge: 10m', { now: () => now });
    const known = bearer(await sign(k1));
    const tokens = await strangers(450);
    server.setDown(true);
    const hits0 = server.hits();

    // Within the cooldown of the start fetch: nothing is fetched at all.
    for (const t of tokens.slice(0, 50)) expect((await app.auth('GET', '/x', bearer(t))).headers.get('www-authenticate')).toContain('no signing key matches the token');
    expect(server.hits()).toBe(hits0);

    // The outage outlasts the cooldown (where jose fetched for every token): one fetch, then none.
    now += 30_000;
    const second = [];
    for (const t of tokens.slice(50, 250)) second.push(await app.auth('GET', '/x', bearer(t)));
    expect(statuses(second)).toEqual([401]);
    await until(() => app.deps.verifier.stats().refreshes.error === 1, 'the failed fetch');
    expect(server.hits()).toBe(hits0 + 1);
    expect((await app.auth('GET', '/x', known)).status).toBe(200);

    now += 30_000;
    const third = [];
    for (const t of tokens.slice(250)) third.push(await app.auth('GET', '/x', bearer(t)));
    expect(statuses(third)).toEqual([401]);
    await until(() => app.deps.verifier.stats().refreshes.error === 2, 'the second failed fetch');
    expect(server.hits()).toBe(hits0 + 2);
    expect((await app.auth('GET', '/x', known)).status).toBe(200);
    expect(app.deps.verifier.stats()).toMatchObject({ keys: 1, refreshes: { ok: 1, error: 2 } });
    expect(app.logs.filter((l) => l.includes('"reason":"HTTP 503"'))).toHaveLength(2);
  });

  test('once the IdP answers again, a rotated-in key is accepted after the next cooldown', async () => {
    const k1 = await makeKey('ES256');
    const k2 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s', { now: () => now });
    server.setDown(true);
    now += 30_000;
    const rotated = bearer(await sign(k2));
    expect((await app.auth('GET', '/x', rotated)).status).toBe(401);
    await until(() => app.deps.verifier.stats().refreshes.error === 1, 'the failed fetch');
    server.setKeys([k1.jwk, k2.jwk]);
    server.setDown(false);
    // Still cooling down: refused at once, nothing fetched.
    expect((await app.auth('GET', '/x', rotated)).status).toBe(401);
    expect(server.hits()).toBe(2);
    now += 30_000;
    // The IdP was failing, so this request does not wait; its background fetch loads k2.
    await app.auth('GET', '/x', rotated);
    await until(() => app.deps.verifier.stats().refreshes.ok === 2, 'the recovering fetch');
    expect((await app.auth('GET', '/x', rotated)).status).toBe(200);
    expect(app.deps.verifier.stats().keys).toBe(2);
  });
});

describe('JWKS hanging: only the request that finds the outage waits', () => {
  test('after the first fetch times out, unknown-kid requests are answered without waiting jwksTimeout', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s, jwksTimeout: 4s', { now: () => now });
    const tokens = await strangers(50);
    server.setHanging(true);
    now += 30_000;
    const hits0 = server.hits();

    // The first requests cannot know yet: they share one fetch and its timeout.
    const first = await Promise.all(tokens.slice(0, 10).map((t) => app.auth('GET', '/x', bearer(t))));
    expect(statuses(first)).toEqual([401]);
    expect(server.hits()).toBe(hits0 + 1);
    expect(app.logs.some((l) => l.includes('"reason":"timed out after 4000 ms"'))).toBe(true);

    // From now on: no request waits for the hanging IdP (bound: half of jwksTimeout, for slack).
    const t0 = performance.now();
    const later = [];
    for (const t of tokens.slice(10, 40)) later.push(await app.auth('GET', '/x', bearer(t)));
    expect(statuses(later)).toEqual([401]);
    expect(performance.now() - t0).toBeLessThan(2000);

    // A new cooldown starts one background fetch, which hangs; the request itself does not wait.
    now += 30_000;
    const t1 = performance.now();
    const res = await Promise.all(tokens.slice(40).map((t) => app.auth('GET', '/x', bearer(t))));
    expect(statuses(res)).toEqual([401]);
    expect(performance.now() - t1).toBeLessThan(2000);
    await until(() => server.hits() === hits0 + 2, 'the background fetch to reach the IdP');
    await until(() => server.hanging() === 1, 'the first fetch to be given up');
    // The keys already loaded still verify, at once.
    const t2 = performance.now();
    expect((await app.auth('GET', '/x', bearer(await sign(k1)))).status).toBe(200);
    expect(performance.now() - t2).toBeLessThan(2000);
  });

  test(`at most ${MAX_JWKS_WAITERS} requests wait on one fetch; the rest of a flood is answered at once`, async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s, jwksTimeout: 60s', { now: () => now });
    const extra = 100;
    const tokens = await strangers(MAX_JWKS_WAITERS + extra);
    server.setHanging(true);
    now += 30_000;
    let answered = 0;
    const all = tokens.map((t) => app.auth('GET', '/x', bearer(t)).then((r) => (answered++, r)));
    // Long before the 60 s timeout, while the one fetch still hangs, the overflow has its answer.
    await until(() => answered >= extra, `${extra} answers`);
    await until(() => server.hanging() === 1, 'the fetch to reach the IdP');
    expect(server.hits()).toBe(2);
    expect(answered).toBe(extra);
    // close() ends the fetch: the waiters get their 401 too.
    await app.close();
    expect(statuses(await Promise.all(all))).toEqual([401]);
  });
});

describe('JWKS rotation and the token cache', () => {
  test('an unknown kid within the cooldown is refused without a fetch; after it, fetched once and accepted', async () => {
    const k1 = await makeKey('ES256');
    const k2 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s', { now: () => now });
    server.setKeys([k1.jwk, k2.jwk]);
    const rotated = bearer(await sign(k2));
    expect((await app.auth('GET', '/x', rotated)).status).toBe(401);
    expect(server.hits()).toBe(1);
    now += 30_000;
    const res = await Promise.all([1, 2, 3].map(() => app.auth('GET', '/x', rotated)));
    expect(statuses(res)).toEqual([200]);
    expect(server.hits()).toBe(2);
  });

  test('a refetch for an unknown kid that drops a key empties the token cache (not only the scheduled refresh)', async () => {
    const k1 = await makeKey('ES256');
    const k2 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s, jwksMaxAge: 10m', { now: () => now });
    const old = bearer(await sign(k1));
    expect((await app.auth('GET', '/x', old)).status).toBe(200);
    expect(app.deps.verifier.cachedTokens).toBe(1);
    server.setKeys([k2.jwk]); // k1 withdrawn
    now += 30_000;
    expect((await app.auth('GET', '/x', bearer(await sign(k2)))).status).toBe(200);
    const res = await app.auth('GET', '/x', old);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('no signing key');
  });
});

describe('JWKS at boot, empty and oversized sets', () => {
  test('down at boot: tokens are refused at once with "signing keys are not available", retried every 2 s', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    server.setDown(true);
    const app = await gateOn(server, 'jwksCooldown: 30s, jwksTimeout: 10s', { wait: false });
    await until(() => app.deps.verifier.stats().refreshes.error === 1, 'the failed boot fetch');
    const t0 = performance.now();
    const res = await app.auth('GET', '/x', bearer(await sign(k1)));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('signing keys are not available');
    expect(performance.now() - t0).toBeLessThan(5000);
    server.setDown(false);
    await until(() => app.deps.verifier.ready, 'the retry', 6000);
    expect((await app.auth('GET', '/x', bearer(await sign(k1)))).status).toBe(200);
    expect(app.deps.verifier.stats()).toMatchObject({ keys: 1, refreshes: { ok: 1 } });
  });

  test('nothing listening: the log line says why', async () => {
    const port = await freePort();
    const app = await buildApp(`store: { url: memory }\nauth: { jwksUrl: "http://127.0.0.1:${port}/jwks", algorithms: [ES256] }`);
    opened.push({ app });
    app.deps.verifier.start();
    await until(() => app.deps.verifier.stats().refreshes.error === 1, 'the failed fetch');
    const line = app.logs.find((l) => l.includes('JWKS fetch failed'));
    expect(JSON.parse(line!)).toMatchObject({ level: 'warn', reason: 'unreachable (ECONNREFUSED)' });
  });

  test('an empty key set is not ready: /readyz 503 until a set with keys loads (issue 11)', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer();
    const app = await gateOn(server, 'jwksCooldown: 30s', { wait: false });
    await until(() => app.deps.verifier.stats().refreshes.ok === 1, 'the first fetch');
    expect(app.deps.verifier.ready).toBe(false);
    expect(app.deps.verifier.stats().keys).toBe(0);
    expect((await app.gate.request('/readyz')).status).toBe(503);
    server.setKeys([k1.jwk]);
    await until(() => app.deps.verifier.ready, 'the retry', 6000);
    expect((await app.gate.request('/readyz')).status).toBe(200);
  });

  test('a JWKS larger than 1 MiB is refused and the keys held are kept', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    let now = Date.now();
    const app = await gateOn(server, 'jwksCooldown: 30s', { now: () => now });
    server.setKeys([k1.jwk, ...Array.from({ length: 12_000 }, (_, i) => ({ kty: 'oct', kid: `junk-${i}`, k: 'x'.repeat(80) }))]);
    now += 30_000;
    await app.auth('GET', '/x', bearer((await strangers(1))[0]!));
    await until(() => app.deps.verifier.stats().refreshes.error === 1, 'the refused fetch');
    expect(app.logs.some((l) => l.includes('"reason":"larger than 1048576 bytes"'))).toBe(true);
    expect(app.deps.verifier.stats().keys).toBe(1);
    expect((await app.auth('GET', '/x', bearer(await sign(k1)))).status).toBe(200);
  });
});

describe('close() and reload: no timer or fetch outlives a verifier', () => {
  test('close() aborts a JWKS fetch in flight', async () => {
    const server = await jwksServer(await makeKey('ES256'));
    server.setHanging(true);
    const app = await gateOn(server, 'jwksTimeout: 60s', { wait: false });
    await until(() => server.hanging() === 1, 'the boot fetch to reach the IdP');
    await app.close();
    // The IdP sees the connection go long before the 60 s timeout.
    await until(() => server.hanging() === 0, 'the fetch to be aborted');
    expect(app.deps.verifier.stats().refreshes).toEqual({ ok: 0, error: 0 });
  });

  test('a closed verifier fetches nothing more: the 2 s boot retry is gone, unknown kids fetch nothing', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    server.setDown(true);
    const app = await gateOn(server, 'jwksCooldown: 0s', { wait: false });
    await until(() => server.hits() === 1, 'the boot fetch');
    await app.close();
    expect((await app.auth('GET', '/x', bearer(await sign(k1)))).status).toBe(401);
    await sleep(2500);
    expect(server.hits()).toBe(1);
  });

  test('a verifier built for a reloaded config takes over the keys of the one it replaces', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    const compiled = await readConfigText(`store: { url: memory }\nauth: { jwksUrl: "${server.url}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }`, {}, { baseDir: '.' });
    if (!compiled.ok) throw new Error('config');
    const auth = compiled.compiled.auth;
    const old = new TokenVerifier({ ...auth, now: Date.now });
    old.start();
    await until(() => old.ready, 'the keys to load');
    server.setHanging(true);
    const next = new TokenVerifier({ ...auth, now: Date.now, previous: old });
    old.close();
    expect(next.ready).toBe(true);
    expect(next.stats()).toMatchObject({ keys: 1, lastSuccessAt: old.stats().lastSuccessAt });
    expect(await next.verify(await sign(k1))).toMatchObject({ kind: 'valid' });
    next.start();
    await until(() => server.hanging() === 1, 'the new verifier fetch');
    next.close();
    await until(() => server.hanging() === 0, 'the fetch to be aborted');
    // Other URL: nothing taken over.
    const elsewhere = new TokenVerifier({ ...auth, source: { kind: 'remote', url: new URL(server.url + '?other') }, now: Date.now, previous: old });
    expect(elsewhere.ready).toBe(false);
    elsewhere.close();
  });

  test('a verifier does not keep the one it replaced alive (reload after reload, a watched ConfigMap)', async () => {
    const k1 = await makeKey('ES256');
    const server = await jwksServer(k1);
    const compiled = await readConfigText(`store: { url: memory }\nauth: { jwksUrl: "${server.url}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }`, {}, { baseDir: '.' });
    if (!compiled.ok) throw new Error('config');
    const auth = compiled.compiled.auth;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let old: TokenVerifier | undefined = new TokenVerifier({ ...auth, now: Date.now });
    old.start();
    await until(() => old!.ready, 'the keys to load');
    const gone = new WeakRef(old);
    const next = new TokenVerifier({ ...auth, now: Date.now, previous: old });
    old.close();
    old = undefined;
    for (let i = 0; i < 10 && gone.deref() !== undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
    }
    expect(gone.deref()).toBeUndefined();
    expect(next.ready).toBe(true);
    next.close();
  });
});
