// What a large or many-token caller can cost the verifier: token length and token-cache bytes are bounded.
import { describe, expect, test } from 'vitest';
import { MAX_TOKEN_LENGTH, TOKEN_CACHE_BYTES } from '../../../src/gates/auth/verify.js';
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
    expect(app.deps.verifier.cachedTokens).toBeGreaterThan(fit - 20);
    // The newest are the ones kept: the last token is a cache hit, the first one is verified again.
    const before = app.deps.verifier.stats();
    await app.auth('GET', '/x', { Authorization: `Bearer ${tokens.at(-1)!}` });
    expect(app.deps.verifier.stats().verifications).toBe(before.verifications);
    await app.auth('GET', '/x', { Authorization: `Bearer ${tokens[0]!}` });
    expect(app.deps.verifier.stats().verifications).toBe(before.verifications + 1);
    await app.close();
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
