// The auth gate through the /auth handler (app.request, no socket), with real jose keys.
import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type TestApp } from '../../helpers/app.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, signHs, type TestKey } from '../../helpers/tokens.js';

const base = (source: string) => `
store: { url: memory }
auth:
  ${source}
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [RS256, ES256]
  forwardClaims: { X-Auth-Tenant: tenant, X-Auth-Plan: plan }
  publicRoutes: ["GET /public/*", "/health-check"]
  requireScopes:
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
    - { path: "/api/admin/*", scopes: ["admin", "audit"] }
`;

async function problem(res: Response) {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return (await res.json()) as Record<string, unknown>;
}

describe('auth gate (JWKS file)', () => {
  let app: TestApp;
  let rsa: TestKey;
  let ec: TestKey;
  let stranger: TestKey;

  beforeAll(async () => {
    rsa = await makeKey('RS256');
    ec = await makeKey('ES256');
    stranger = await makeKey('ES256', ec.kid); // same kid, other key: a forged signature
    app = await buildApp(base('jwksFile: jwks.json'), { files: { 'jwks.json': JSON.stringify(jwks(rsa, ec)) } });
  });
  afterAll(() => app.close());

  const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

  test('a valid token is allowed with identity headers, every documented header present', async () => {
    const token = await sign(ec, { scope: 'orders:read orders:write', claims: { tenant: 'acme' } });
    const res = await app.auth('GET', '/api/orders/1', bearer(token));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(res.headers.get('x-auth-subject')).toBe('alice');
    expect(res.headers.get('x-auth-scopes')).toBe('orders:read orders:write');
    expect(res.headers.get('x-auth-tenant')).toBe('acme');
    // A header with no value is present and empty, so a proxy never keeps a client's copy.
    expect(res.headers.get('x-auth-plan')).toBe('');
    expect(res.headers.get('x-resource-key')).toBe('');
    expect(res.headers.get('x-resource-version')).toBe('');
  });

  test('RS256 tokens verify too', async () => {
    expect((await app.auth('GET', '/api/x', bearer(await sign(rsa)))).status).toBe(200);
  });

  test('scp array and scopes claims are read as scopes', async () => {
    const scp = await sign(ec, { claims: { scp: ['orders:write', 'x'] } });
    const r1 = await app.auth('POST', '/api/orders/1', bearer(scp));
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-auth-scopes')).toBe('orders:write x');
  });

  test('client-sent identity headers are ignored', async () => {
    const res = await app.auth('GET', '/api/x', { ...bearer(await sign(ec)), 'X-Auth-Subject': 'root', 'X-Auth-Scopes': 'admin' });
    expect(res.headers.get('x-auth-subject')).toBe('alice');
    expect(res.headers.get('x-auth-scopes')).toBe('');
  });

  const alg = (name: string, payload: object) =>
    `${base64url.encode(JSON.stringify({ alg: name, typ: 'JWT' }))}.${base64url.encode(JSON.stringify(payload))}.`;

  test.each<[string, () => Promise<Record<string, string>>, string, RegExp]>([
    ['missing Authorization', async () => ({}), 'missing_token', /^Bearer realm="conflict-gate"$/],
    ['Basic instead of Bearer', async () => ({ Authorization: 'Basic YTpi' }), 'missing_token', /^Bearer realm="conflict-gate"$/],
    ['garbage token', async () => bearer('not.a.jwt'), 'invalid_token', /error="invalid_token", error_description="malformed token"/],
    ['bad signature (same kid, other key)', async () => bearer(await sign(stranger)), 'invalid_token', /signature verification failed/],
    ['alg none', async () => bearer(alg('none', { sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: 9999999999 })), 'invalid_token', /error="invalid_token"/],
    ['HS256 signed with the RSA public key as secret', async () => bearer(await signHs(rsa.spki)), 'invalid_token', /algorithm not allowed/],
    ['expired', async () => bearer(await sign(ec, { exp: Math.floor(Date.now() / 1000) - 60 })), 'invalid_token', /token expired/],
    ['not yet valid', async () => bearer(await sign(ec, { nbf: Math.floor(Date.now() / 1000) + 600 })), 'invalid_token', /not yet valid/],
    ['wrong issuer', async () => bearer(await sign(ec, { iss: 'https://evil.test' })), 'invalid_token', /unexpected issuer/],
    ['wrong audience', async () => bearer(await sign(ec, { aud: 'other-api' })), 'invalid_token', /unexpected audience/],
    ['unknown kid', async () => bearer(await sign(await makeKey('ES256'))), 'invalid_token', /no signing key/],
    ['issued in the future, beyond clockTolerance (issue 13 item 14)', async () => bearer(await sign(ec, { iat: Math.floor(Date.now() / 1000) + 600 })), 'invalid_token', /error_description="token issued in the future"/],
    ['iat not a number', async () => bearer(await sign(ec, { iat: null, claims: { iat: 'yesterday' as unknown as number } })), 'invalid_token', /error_description="invalid iat claim"/],
    ['a token longer than 16 KiB, refused before parsing', async () => bearer('a'.repeat(16 * 1024 + 1)), 'invalid_token', /error_description="token too large"/],
    ['no sub (the client id claim)', async () => bearer(await sign(ec, { sub: '' })), 'invalid_token', /no sub claim/],
    ['no exp', async () => bearer(await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: ec.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(ec.privateKey)), 'invalid_token', /exp/],
  ])('%s → 401 %s', async (_n, headers, code, wwwAuth) => {
    const h = await headers();
    const res = await app.auth('GET', '/api/orders/1', h);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(wwwAuth);
    const body = await problem(res);
    expect(body).toMatchObject({ status: 401, code, type: expect.stringContaining(code), title: expect.any(String), detail: expect.any(String) });
    // The token never comes back in a body or a header.
    const token = (h.Authorization ?? '').replace(/^\w+ /, '');
    if (token) {
      expect(JSON.stringify(body)).not.toContain(token);
      expect(res.headers.get('www-authenticate')).not.toContain(token);
    }
  });

  test('a token without a required scope is 403 insufficient_scope', async () => {
    const res = await app.auth('PUT', '/api/orders/1', bearer(await sign(ec, { scope: 'orders:read' })));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="conflict-gate", error="insufficient_scope", error_description="missing scope", scope="orders:write"');
    expect(await problem(res)).toMatchObject({ status: 403, code: 'insufficient_scope' });
  });

  test('scope rules are method-specific: a read needs no write scope', async () => {
    expect((await app.auth('GET', '/api/orders/1', bearer(await sign(ec, { scope: 'orders:read' })))).status).toBe(200);
  });

  test('every scope of a rule is required', async () => {
    expect((await app.auth('GET', '/api/admin/users', bearer(await sign(ec, { scope: 'admin' })))).status).toBe(403);
    expect((await app.auth('GET', '/api/admin/users', bearer(await sign(ec, { scope: 'audit admin' })))).status).toBe(200);
  });

  test.each(['/api/x/../orders/1', '//api/orders/1', '/api//orders/1', '/api/orders/1/', '/api/%6frders/1'])(
    'a path that normalises into a scoped route is scoped: %s',
    async (uri) => {
      const res = await app.auth('DELETE', uri, bearer(await sign(ec, { scope: 'orders:read' })));
      expect(res.status).toBe(403);
    },
  );

  test('public routes skip auth: no token needed, a bad token ignored, identity headers empty', async () => {
    const r1 = await app.auth('GET', '/public/docs');
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-auth-subject')).toBe('');
    expect(r1.headers.get('x-auth-tenant')).toBe('');
    const r2 = await app.auth('GET', '/public/docs', { ...bearer('garbage'), 'X-Auth-Subject': 'root' });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-auth-subject')).toBe('');
    expect((await app.auth('POST', '/public/docs')).status).toBe(401); // GET only
    expect((await app.auth('DELETE', '/health-check')).status).toBe(200); // any method
  });

  test('iat within clockTolerance (5 s) of now is accepted', async () => {
    expect((await app.auth('GET', '/api/x', bearer(await sign(ec, { iat: Math.floor(Date.now() / 1000) + 2 })))).status).toBe(200);
  });

  test('a verified token is cached: 20 requests with one token cost 1 signature check', async () => {
    const token = await sign(ec, { sub: 'cache-me' });
    const before = app.deps.verifier.stats();
    for (let i = 0; i < 20; i++) expect((await app.auth('GET', '/api/x', bearer(token))).status).toBe(200);
    const after = app.deps.verifier.stats();
    expect(after.verifications - before.verifications).toBe(1);
    expect(after.cacheMisses - before.cacheMisses).toBe(1);
    expect(after.cacheHits - before.cacheHits).toBe(19);
  });

  test('20 concurrent first requests with one token share 1 signature check', async () => {
    const token = await sign(ec, { sub: 'together' });
    const before = app.deps.verifier.stats().verifications;
    const res = await Promise.all(Array.from({ length: 20 }, () => app.auth('GET', '/api/x', bearer(token))));
    expect(res.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(app.deps.verifier.stats().verifications - before).toBe(1);
  });

  test('a refused token is not cached: each request checks it again', async () => {
    const token = await sign(stranger, { sub: 'forged' });
    const before = app.deps.verifier.stats().verifications;
    for (let i = 0; i < 3; i++) expect((await app.auth('GET', '/api/x', bearer(token))).status).toBe(401);
    expect(app.deps.verifier.stats().verifications - before).toBe(3);
  });

  test('stats for a JWKS file: its keys, loaded at start, no refreshes', () => {
    const s = app.deps.verifier.stats();
    expect(s.keys).toBe(2);
    expect(s.lastSuccessAt).toBeGreaterThan(Date.now() - 600_000);
    expect(s.refreshes).toEqual({ ok: 0, error: 0 });
  });

  test.each<[string, Record<string, unknown>, Record<string, string>]>([
    ['sub "é"', { sub: 'é' }, { 'x-auth-subject': '%C3%A9' }],
    ['sub "%C3%A9" (literal)', { sub: '%C3%A9' }, { 'x-auth-subject': '%25C3%25A9' }],
    ['tenant ["a","b"]', { tenant: ['a', 'b'] }, { 'x-auth-tenant': 'a b' }],
    ['tenant "a b"', { tenant: 'a b' }, { 'x-auth-tenant': 'a%20b' }],
    ['scp entry with a space', { scp: ['orders:read admin', 'x'] }, { 'x-auth-scopes': 'orders:read%20admin x' }],
    ['plan as an object', { plan: { tier: 'free', seats: 3 } }, { 'x-auth-plan': '{"tier":"free","seats":3}' }],
    ['CR LF in a claim', { tenant: 'a\r\nX-Admin: 1' }, { 'x-auth-tenant': 'a%0D%0AX-Admin:%201' }],
  ])('identity header encoding through /auth: %s', async (_n, claims, headers) => {
    const res = await app.auth('GET', '/api/x', bearer(await sign(ec, { ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}), claims })));
    expect(res.status).toBe(200);
    for (const [name, value] of Object.entries(headers)) expect(res.headers.get(name)).toBe(value);
  });

  test('an scp entry "orders:read admin" does not satisfy the scope admin', async () => {
    const res = await app.auth('GET', '/api/admin/users', bearer(await sign(ec, { claims: { scp: ['orders:read admin', 'audit'] } })));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('scope="admin audit"');
  });

  test('denials are logged with gate and code, never with the token', async () => {
    const token = await sign(ec, { exp: Math.floor(Date.now() / 1000) - 60 });
    await app.auth('GET', '/api/orders/1?access_token=secret-in-query', bearer(token));
    const line = app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).findLast((l) => l.code === 'invalid_token');
    expect(line).toMatchObject({ gate: 'auth', code: 'invalid_token', status: 401, path: '/api/orders/1' });
    const all = app.logs.join('\n');
    expect(all).not.toContain(token);
    expect(all).not.toContain('secret-in-query');
  });
});

describe('auth gate: token cache is bounded and expires at exp', () => {
  test('the cache holds at most tokenCacheSize tokens; an expired entry is verified again (and fails)', async () => {
    const key = await makeKey('ES256');
    let now = Date.now();
    const app = await buildApp(
      `store: { url: memory }\nauth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], tokenCacheSize: 3, clockTolerance: 0s }`,
      { files: { 'jwks.json': JSON.stringify(jwks(key)) }, now: () => now },
    );
    // iat from the test's clock: signing after a second boundary would otherwise issue the tokens
    // "in the future" of `now`, which clockTolerance 0s refuses
    const tokens = await Promise.all([1, 2, 3, 4, 5].map((i) => sign(key, { sub: `u${i}`, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 60 })));
    for (const t of tokens) expect((await app.auth('GET', '/x', { Authorization: `Bearer ${t}` })).status).toBe(200);
    expect(app.deps.verifier.cachedTokens).toBe(3);
    now += 61_000;
    const res = await app.auth('GET', '/x', { Authorization: `Bearer ${tokens[4]}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('token expired');
    await app.close();
  });
});

describe('auth gate (remote JWKS with rotation)', () => {
  let server: JwksServer;
  let app: TestApp;
  let k1: TestKey;

  beforeAll(async () => {
    k1 = await makeKey('ES256');
    server = await startJwksServer([k1.jwk]);
    app = await buildApp(
      `store: { url: memory }\nauth: { jwksUrl: "${server.url}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], jwksCooldown: 0s }`,
    );
    app.deps.verifier.start();
    for (let i = 0; i < 100 && !app.deps.verifier.ready; i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    await app.close();
    await server.close();
  });

  test('keys load at start: /readyz turns 200', async () => {
    expect(app.deps.verifier.ready).toBe(true);
    const res = await app.gate.request('/readyz');
    expect(res.status).toBe(200);
  });

  test('a rotated-in key (unknown kid) is fetched and accepted without a restart', async () => {
    const k2 = await makeKey('ES256');
    server.setKeys([k1.jwk, k2.jwk]);
    const res = await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(k2)}` });
    expect(res.status).toBe(200);
  });

  test('the JWKS server going down keeps the loaded keys working', async () => {
    server.setDown(true);
    const hitsBefore = server.hits();
    const res = await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(k1, { sub: 'bob' })}` });
    expect(res.status).toBe(200);
    // an unknown kid while down is still a plain 401, and the gate stays up
    const unknown = await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(await makeKey('ES256'))}` });
    expect(unknown.status).toBe(401);
    expect(server.hits()).toBeGreaterThan(hitsBefore);
    server.setDown(false);
  });
});

describe('auth gate: a key withdrawn from the JWKS', () => {
  test('takes its cached tokens with it at the next refresh', async () => {
    const key = await makeKey('ES256');
    const server = await startJwksServer([key.jwk]);
    const app = await buildApp(`store: { url: memory }\nauth: { jwksUrl: "${server.url}", algorithms: [ES256], jwksMaxAge: 1s }`);
    app.deps.verifier.start();
    for (let i = 0; i < 100 && !app.deps.verifier.ready; i++) await new Promise((r) => setTimeout(r, 20));
    const token = { Authorization: `Bearer ${await sign(key)}` };
    expect((await app.auth('GET', '/x', token)).status).toBe(200);
    expect(app.deps.verifier.cachedTokens).toBe(1);
    server.setKeys([]);
    // The next refresh (jwksMaxAge 1s after the first fetch) loads the empty set; waited for, not timed.
    for (let i = 0; i < 250 && app.deps.verifier.stats().keys !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(app.deps.verifier.stats().keys).toBe(0);
    const res = await app.auth('GET', '/x', token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('no signing key');
    await app.close();
    await server.close();
  });
});

describe('auth gate: JWKS unreachable at boot', () => {
  test('/readyz is 503 until the keys load, then 200 without a restart', async () => {
    const key = await makeKey('ES256');
    const server = await startJwksServer([key.jwk]);
    server.setDown(true);
    const app = await buildApp(`store: { url: memory }\nauth: { jwksUrl: "${server.url}", algorithms: [ES256], jwksMaxAge: 10m }`);
    app.deps.verifier.start();
    await new Promise((r) => setTimeout(r, 100));
    expect((await app.gate.request('/readyz')).status).toBe(503);
    expect(await (await app.gate.request('/readyz')).json()).toMatchObject({ status: 'not_ready', checks: { store: true, keys: false } });
    server.setDown(false);
    for (let i = 0; i < 60 && !app.deps.verifier.ready; i++) await new Promise((r) => setTimeout(r, 100)); // retried every 2 s
    expect((await app.gate.request('/readyz')).status).toBe(200);
    await app.close();
    await server.close();
  });
});

describe('auth gate (HS secret and PEM public key)', () => {
  test('HS256 with a secret', async () => {
    const secret = 's'.repeat(40);
    const app = await buildApp(`store: { url: memory }\nauth: { secret: "${secret}", issuer: ${ISSUER}, audience: ${AUDIENCE} }`);
    expect((await app.auth('GET', '/x', { Authorization: `Bearer ${await signHs(secret)}` })).status).toBe(200);
    expect((await app.auth('GET', '/x', { Authorization: `Bearer ${await signHs('t'.repeat(40))}` })).status).toBe(401);
    expect((await app.auth('GET', '/x', { Authorization: `Bearer ${await signHs(secret, {}, 'HS512')}` })).status).toBe(401);
    await app.close();
  });

  test('PEM public key file', async () => {
    const key = await makeKey('RS256');
    const app = await buildApp(`store: { url: memory }\nauth: { publicKeyFile: key.pem, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [RS256, PS256] }`, { files: { 'key.pem': key.spki } });
    expect((await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(key)}` })).status).toBe(200);
    expect((await app.auth('GET', '/x', { Authorization: `Bearer ${await sign(await makeKey('RS256'))}` })).status).toBe(401);
    await app.close();
  });
});
