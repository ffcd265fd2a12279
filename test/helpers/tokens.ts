// Test signing keys and tokens (jose), and a JWKS the tests write to files or serve.
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload } from 'jose';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'orders-api';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
  spki: string;
}

export async function makeKey(alg: 'ES256' | 'RS256' | 'EdDSA' | 'PS256' = 'ES256', kid = `k-${alg}-${Math.random().toString(36).slice(2, 8)}`): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk, spki: await exportSPKI(publicKey) };
}

export function jwks(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.jwk) };
}

export interface TokenOptions {
  sub?: string;
  iss?: string;
  aud?: string | string[];
  exp?: number | string;
  nbf?: number | string;
  /** Issued-at (epoch s); default now; null: not set by the helper (claims may carry one). */
  iat?: number | null;
  scope?: string;
  claims?: JWTPayload;
  kid?: string | null;
}

/** Signs a token: sub `alice`, the test issuer and audience, 1 h, unless told otherwise. */
export async function sign(key: TestKey, o: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT({ ...(o.scope !== undefined ? { scope: o.scope } : {}), ...o.claims })
    .setProtectedHeader({ alg: key.alg, ...(o.kid === null ? {} : { kid: o.kid ?? key.kid }) })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setExpirationTime(o.exp ?? '1h');
  if (o.iat !== null) jwt.setIssuedAt(o.iat);
  if (o.sub !== '') jwt.setSubject(o.sub ?? 'alice');
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(key.privateKey);
}

/** Signs with an HMAC secret (HS256). */
export async function signHs(secret: string | Uint8Array, o: TokenOptions = {}, alg = 'HS256'): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  const jwt = new SignJWT({ ...(o.scope !== undefined ? { scope: o.scope } : {}), ...o.claims })
    .setProtectedHeader({ alg })
    .setIssuedAt()
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setSubject(o.sub ?? 'alice')
    .setExpirationTime(o.exp ?? '1h');
  return jwt.sign(key);
}
