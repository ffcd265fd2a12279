// Dev mode: in-memory store, an ephemeral ES256 key whose JWKS the gate serves, example rules, curl lines.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

export const DEV_ISSUER = 'conflict-gate-dev';
export const DEV_AUDIENCE = 'dev-api';
export const DEV_SEEDED = { key: 'orders:42', version: '7' };

/** The dev config: YAML like an operator's, so the same loader (and env overrides) apply. */
export function devConfigYaml(jwksFile: string): string {
  return `
store: { url: memory }
auth:
  jwksFile: ${JSON.stringify(jwksFile)}
  issuer: ${DEV_ISSUER}
  audience: ${DEV_AUDIENCE}
  algorithms: [ES256]
  forwardClaims: { X-Auth-Tenant: tenant }
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
rateLimit:
  rules:
    - { name: demo, path: "/api/demo/*", limit: 3, window: 60s }
    - { name: writes, methods: [POST, PUT, PATCH, DELETE], path: "/api/*", limit: 20, window: 60s }
    - { name: default, limit: 100, window: 60s }
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
`;
}

export interface DevKit {
  jwks: { keys: JWK[] };
  jwksFile: string;
  token: string;
  adminToken: string;
  cleanup(): void;
}

/** Makes the ephemeral key, its JWKS file and a ready token (24 h, scopes orders:read orders:write). */
export async function createDevKit(): Promise<DevKit> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `dev-${randomBytes(4).toString('hex')}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const jwks = { keys: [jwk] };
  const dir = mkdtempSync(join(tmpdir(), 'conflict-gate-dev-'));
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwks));
  const token = await new SignJWT({ scope: 'orders:read orders:write', tenant: 'acme' })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject('dev-user')
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(privateKey);
  return {
    jwks,
    jwksFile,
    token,
    adminToken: randomBytes(16).toString('hex'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What dev mode prints: a warning, the token, and curl lines for a 200, a 401, a 429 and a 412. */
export function devBanner(opts: { host: string; port: number; adminPort: number; token: string; adminToken: string }): string {
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? 'localhost' : opts.host;
  const base = `http://${host}:${opts.port}/auth`;
  const fwd = (method: string, uri: string) => `-H "X-Forwarded-Method: ${method}" -H "X-Forwarded-Uri: ${uri}"`;
  return [
    '!!! conflict-gate DEV MODE: in-memory store, throwaway signing key, example rules. Never use in production (pass --config). !!!',
    '',
    `Gate:  ${base}    Admin: http://${host}:${opts.adminPort}/metrics`,
    `JWKS:  http://${host}:${opts.port}/.well-known/jwks.json`,
    '',
    'A token (sub dev-user, scopes orders:read orders:write, 24 h):',
    `  export TOKEN=${opts.token}`,
    `  export GATE_ADMIN_TOKEN=${opts.adminToken}`,
    '',
    '200, allowed (identity headers for the upstream):',
    `  curl -i ${base} ${fwd('GET', '/api/orders/42')} -H "Authorization: Bearer $TOKEN"`,
    '401, no token:',
    `  curl -i ${base} ${fwd('GET', '/api/orders/42')}`,
    '429, the "demo" rule allows 3 requests a minute:',
    `  for i in 1 2 3 4; do curl -s -o /dev/null -w "%{http_code}\\n" ${base} ${fwd('GET', '/api/demo/ping')} -H "Authorization: Bearer $TOKEN"; done`,
    `412, stale If-Match (${DEV_SEEDED.key} is at version ${DEV_SEEDED.version}):`,
    `  curl -i ${base} ${fwd('PUT', '/api/orders/42')} -H 'If-Match: "6"' -H "Authorization: Bearer $TOKEN"`,
    'Publish a new version through the admin API:',
    `  curl -i -X PUT http://${host}:${opts.adminPort}/versions/${DEV_SEEDED.key} -H "Authorization: Bearer $GATE_ADMIN_TOKEN" -H "Content-Type: application/json" -d '{"version":"8"}'`,
    '',
  ].join('\n');
}
