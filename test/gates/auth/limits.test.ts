// What a large or many-token caller can cost the verifier: token length and token-cache bytes are bounded.
import { describe, expect, test } from 'vitest';
import { MAX_TOKEN_LENGTH, TOKEN_CACHE_BYTES, TokenVerifier } from '../../../src/gates/auth/verify.js';
import { buildApp } from '../../helpers/app.js';
import { ISSUER, AUDIENCE, jwks, makeKey, sign } from '../../helpers/tokens.js';

describe('verifier bounds', () => {
  test('valid tokens near the length limit fill the cache by bytes, not to tokenCacheSize', async () => {
    const key = await makeKey('ES256');
    const app = await buildApp(`store: { url: memory }\nauth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], tokenCacheSize: 10000 }`, {
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
    });
    // ~15 KB tokens: a valid holder of many such tokens could otherwise pin 10 000 × (token + claims).
    const pad = 'p'.repeat(11_000);
    const tokens = await Promise.all(Array.from({ length: 1200 }, (_, i) => sign(key, { sub: `u${i}`, claims: { pad } })));
    const length = tokens[0]!.length;
    expect(length).toBeGreaterThan(14_000);
    expect(length).toBeLessThan(MAX_TOKEN_LENGTH);
    for (const t of tokens) expect((await app.auth('GET', '/x', { Authorization: `Bearer ${t}` })).status).toBe(200);
    const fit = Math.floor(TOKEN_CACHE_BYTES / (2 * length + 512));
    expect(app.deps.verifier.cachedTokens).toBeLessThanOrEqual(fit);
    // Full, the cache forgets its oldest in chunks of 1/64 (core/bounded.ts).
    expect(app.deps.verifier.cachedTokens).toBeGreaterThanOrEqual(fit - (fit >> 6) - 1);
    // The newest are the ones kept: the last token is a cache hit, the first one is verified again.
    const before = app.deps.verifier.stats();
    await app.auth('GET', '/x', { Authorization: `Bearer ${tokens.at(-1)!}` });
    expect(app.deps.verifier.stats().verifications).toBe(before.verifications);
    await app.auth('GET', '/x', { Authorization: `Bearer ${tokens[0]!}` });
    expect(app.deps.verifier.stats().verifications).toBe(before.verifications + 1);
    await app.close();
  });

  test('the bytes the cache counts stay those of the tokens it holds, through drops by count and expiry', async () => {
    const key = await makeKey('ES256');
    let now = Date.now();
    const verifier = new TokenVerifier({
      source: { kind: 'local', jwks: jwks(key) },
      algorithms: ['ES256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockToleranceMs: 0,
      requireExp: true,
      tokenCacheSize: 4,
      jwksCooldownMs: 30_000,
      jwksMaxAgeMs: 600_000,
      jwksTimeoutMs: 5000,
      now: () => now,
    });
    const cost = (t: string) => 2 * t.length + 512;
    const nowS = Math.floor(now / 1000);
    // Of different lengths, so that a wrong entry's bytes would show; the fourth expires first. Issued
    // at the test's clock (a real-clock iat a second later is "in the future" under tolerance 0).
    const tokens = await Promise.all(Array.from({ length: 6 }, (_, i) => sign(key, { sub: `u${'x'.repeat(i * 7)}`, iat: nowS, exp: i === 3 ? nowS + 60 : nowS + 3600 })));
    for (const t of tokens.slice(0, 4)) expect((await verifier.verify(t)).kind).toBe('valid');
    expect(verifier.cachedBytes).toBe(tokens.slice(0, 4).reduce((n, t) => n + cost(t), 0));
    // Full: the oldest goes for each new one.
    for (const t of tokens.slice(4)) expect((await verifier.verify(t)).kind).toBe('valid');
    expect(verifier.cachedTokens).toBe(4);
    expect(verifier.cachedBytes).toBe(tokens.slice(2).reduce((n, t) => n + cost(t), 0));
    // Expired while cached: forgotten on its next use (and refused), its bytes with it.
    now += 120_000;
    expect((await verifier.verify(tokens[3]!)).kind).toBe('invalid');
    expect(verifier.cachedTokens).toBe(3);
    expect(verifier.cachedBytes).toBe([2, 4, 5].reduce((n, i) => n + cost(tokens[i]!), 0));
    verifier.close();
  });

  test('a token longer than MAX_TOKEN_LENGTH costs no verification', async () => {
    const key = await makeKey('ES256');
    const app = await buildApp(`store: { url: memory }\nauth: { jwksFile: jwks.json, algorithms: [ES256] }`, { files: { 'jwks.json': JSON.stringify(jwks(key)) } });
    const huge = await sign(key, { claims: { pad: 'p'.repeat(MAX_TOKEN_LENGTH) } });
    const res = await app.auth('GET', '/x', { Authorization: `Bearer ${huge}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error_description="token too large"');
    expect(app.deps.verifier.stats()).toMatchObject({ verifications: 0, cacheMisses: 1 });
    await app.close();
  });
});
