// `auth`: key source, claims checks, public routes and scope rules; key files are read and imported here.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, importSPKI, importX509, type JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { durationMs } from '../../core/durations.js';
import { compileRoute, compileRouteEntry, type Route, type RouteOptions } from '../../core/routes.js';
import { duration, headerName, isMapping, method, mode, pathPattern, route, WITH_FIELD_PROBLEMS, type IssueSink, type Mode } from '../primitives.js';

/** Algorithms jose can verify; `none` is deliberately absent. */
export const ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
export const HMAC_ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512']);
const KNOWN_ALGORITHMS: ReadonlySet<string> = new Set(ALGORITHMS);
/** Used when auth.algorithms is not set and the key source is asymmetric. */
export const DEFAULT_ASYMMETRIC_ALGORITHMS: Algorithm[] = ['RS256', 'ES256', 'EdDSA'];
const KEY_SOURCES = ['jwksUrl', 'jwksFile', 'publicKeyFile', 'secret'] as const;
/** Headers the gate sets itself; forwardClaims may not reuse them. */
const GATE_HEADERS: ReadonlySet<string> = new Set([
  'x-auth-subject', 'x-auth-scopes', 'x-resource-key', 'x-resource-version', 'x-gate-shadow', 'x-idempotency-key', 'ratelimit', 'ratelimit-policy',
]);

/**
 * Headers that frame the message, manage the connection, route it or carry credentials: a claim in
 * one of them would break the allow (Transfer-Encoding, Content-*), be dropped or acted on by the
 * proxy (hop-by-hop), or, copied onto the request, replace what the gate and the upstream route and
 * trust by (Host, Authorization, Cookie, the forwarded request fields). Identity headers in the
 * X-Forwarded- namespace (oauth2-proxy's X-Forwarded-User, -Email, -Groups) are claims, and allowed.
 */
const PROTOCOL_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'host', 'authorization', 'proxy-authorization', 'proxy-authenticate', 'www-authenticate', 'cookie', 'set-cookie', 'date',
  'forwarded', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix',
  'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-server', 'x-forwarded-ssl', 'x-original-uri', 'x-original-method', 'x-original-url',
]);

/**
 * A required scope is a scope-token (RFC 6749 §3.3: printable ASCII but space, `"` and `\`): a scope
 * with a space could only ever be met by one `scp` array entry that the upstream would read as two.
 */
const scopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected a scope token: printable ASCII without space, " or \\ (RFC 6749 §3.3)');

const scopeRule = z.strictObject({
  methods: z.array(method).optional(),
  path: pathPattern(),
  scopes: z.array(scopeToken).min(1),
  /** `shadow`: a missing scope is reported in X-Gate-Shadow instead of refused (token validity never is). */
  mode: mode.optional(),
});

export const authSchema = z.strictObject({
  jwksUrl: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional(),
  jwksFile: z.string().min(1).optional(),
  publicKeyFile: z.string().min(1).optional(),
  secret: z.string().min(1).optional(),
  issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  algorithms: z.array(z.enum(ALGORITHMS, { message: `expected one of ${ALGORITHMS.join(', ')} ("none" is never allowed)` })).min(1).optional(),
  clockTolerance: duration().default('5s'),
  /** Tokens without `exp` are refused unless this is false. */
  requireExp: z.boolean().default(true),
  clientIdClaim: z.string().min(1).default('sub'),
  forwardClaims: z.record(headerName, z.string().min(1)).default({}),
  publicRoutes: z.array(route).default([]),
  requireScopes: z.array(scopeRule).default([]),
  /** Verified tokens kept so steady traffic skips the signature check; entries expire at `exp`. */
  tokenCacheSize: z.number().int().min(0).default(10000),
  /** Remote JWKS: minimum time between refetches triggered by an unknown `kid`. */
  jwksCooldown: duration().default('30s'),
  /** Remote JWKS: refetch keys this often even when every `kid` is known (rotation). */
  jwksMaxAge: duration().default('10m'),
  jwksTimeout: duration().default('5s'),
}).superRefine(
  (a, ctx) => {
    // fetch() refuses a URL with credentials: such a JWKS would never load.
    if (typeof a.jwksUrl === 'string' && URL.canParse(a.jwksUrl) && /^https?:\/\/[^/?#]*@/i.test(a.jwksUrl)) {
      ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'a user or password in the URL is not supported' });
    }
    // A source written with nothing (`secret: ~`) is its field's problem: neither none nor a second one.
    const written = KEY_SOURCES.filter((k) => a[k] !== undefined);
    const sources = written.filter((k) => a[k] !== null);
    if (written.length === 0 || sources.length > 1) {
      ctx.addIssue({ code: 'custom', message: `exactly one of ${KEY_SOURCES.join(', ')} is required${sources.length > 1 ? ` (got ${sources.join(', ')})` : ''}` });
    }
    // Which algorithms fit depends on the secret: unknown while it is malformed.
    const hmacSource = typeof a.secret === 'string';
    const algorithms = a.secret === undefined || hmacSource ? a.algorithms : undefined;
    (Array.isArray(algorithms) ? algorithms : []).forEach((alg, i) => {
      if (!KNOWN_ALGORITHMS.has(alg)) return; // its own problem, reported by the field
      if (hmacSource && !HMAC_ALGORITHMS.has(alg)) ctx.addIssue({ code: 'custom', path: ['algorithms', i], message: `${alg} needs a public key, but auth.secret is an HMAC secret` });
      // The key-confusion guard: an HMAC algorithm must never verify with a public key as its secret.
      if (!hmacSource && HMAC_ALGORITHMS.has(alg)) ctx.addIssue({ code: 'custom', path: ['algorithms', i], message: `${alg} is an HMAC algorithm; it is only allowed with auth.secret` });
    });
    const seen = new Set<string>();
    const claims: unknown = a.forwardClaims;
    for (const header of isMapping(claims) ? Object.keys(claims) : []) {
      const lower = header.toLowerCase();
      // Written into proxy configs as it is (a Caddyfile's `#` starts a comment, YAML reads `#Org` as
      // null): letters, digits, `-` and `_` (nginx refuses `_` in its own config: proxy-config says so).
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(header)) ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'expected letters, digits, "-" and "_" (the proxies\' configs name it as it is)' });
      else if (GATE_HEADERS.has(lower)) ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'this header is set by the gate itself' });
      else if (PROTOCOL_HEADERS.has(lower) || lower.startsWith('content-')) {
        ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'an HTTP protocol header (framing, connection, routing or credentials) cannot carry a claim' });
      } else if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'duplicate header name' });
      seen.add(lower);
    }
  },
  // A bad algorithms entry does not hide a second key source until the next run.
  WITH_FIELD_PROBLEMS,
);

export type AuthConfig = z.output<typeof authSchema>;

/** Where signing keys come from, already read and imported. */
export type KeySource =
  | { kind: 'remote'; url: URL }
  | { kind: 'local'; jwks: JSONWebKeySet }
  | { kind: 'static'; byAlg: ReadonlyMap<string, CryptoKey> };

export interface ScopeRule extends Route {
  scopes: readonly string[];
  /** Undefined: not set on the rule (the gate's default applies). */
  mode: Mode | undefined;
  /** The rule as written, for traces (`POST,PUT /api/orders/*`). */
  label: string;
}

export interface CompiledAuth {
  source: KeySource;
  algorithms: readonly Algorithm[];
  issuer?: string | string[];
  audience?: string | string[];
  clockToleranceMs: number;
  requireExp: boolean;
  clientIdClaim: string;
  forwardClaims: readonly (readonly [string, string])[];
  publicRoutes: readonly (Route & { label: string })[];
  requireScopes: readonly ScopeRule[];
  tokenCacheSize: number;
  jwksCooldownMs: number;
  jwksMaxAgeMs: number;
  jwksTimeoutMs: number;
}

/** Reads and imports the key source; undefined (with an issue) when it cannot be used. */
export async function compileAuth(a: AuthConfig, sink: IssueSink, routes: RouteOptions): Promise<CompiledAuth | undefined> {
  const algorithms: Algorithm[] = a.algorithms ?? (a.secret !== undefined ? ['HS256'] : DEFAULT_ASYMMETRIC_ALGORITHMS);
  // The schema made sure exactly one source is set; here the keys are read and imported.
  let source: KeySource | undefined;
  if (a.jwksUrl !== undefined) source = { kind: 'remote', url: new URL(a.jwksUrl) };
  else if (a.jwksFile !== undefined) source = readJwksFile(sink.resolveFile(a.jwksFile), sink);
  else if (a.publicKeyFile !== undefined) source = await readPublicKey(sink.resolveFile(a.publicKeyFile), algorithms, sink);
  else if (a.secret !== undefined) source = await importSecret(a.secret, algorithms, sink);
  if (source === undefined) return undefined;
  return {
    source,
    algorithms,
    issuer: a.issuer,
    audience: a.audience,
    clockToleranceMs: durationMs(a.clockTolerance),
    requireExp: a.requireExp,
    clientIdClaim: a.clientIdClaim,
    forwardClaims: Object.entries(a.forwardClaims),
    publicRoutes: a.publicRoutes.map((r) => ({ ...compileRouteEntry(r, routes), label: r })),
    requireScopes: a.requireScopes.map((r) => ({
      ...compileRoute(r.methods, r.path, routes),
      scopes: r.scopes,
      mode: r.mode,
      label: `${r.methods?.join(',') ?? '*'} ${r.path}`,
    })),
    tokenCacheSize: a.tokenCacheSize,
    jwksCooldownMs: durationMs(a.jwksCooldown),
    jwksMaxAgeMs: durationMs(a.jwksMaxAge),
    jwksTimeoutMs: durationMs(a.jwksTimeout),
  };
}

function readJwksFile(file: string, sink: IssueSink): KeySource | undefined {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet;
    createLocalJWKSet(jwks);
  } catch (err) {
    sink.issue('auth.jwksFile', `${file}: ${fileProblem(err, 'not a JSON Web Key Set')}`);
    return undefined;
  }
  if (jwks.keys.length === 0) {
    // It would load, and then refuse every token.
    sink.issue('auth.jwksFile', `${file}: the key set has no keys`);
    return undefined;
  }
  return { kind: 'local', jwks };
}

async function readPublicKey(file: string, algorithms: readonly Algorithm[], sink: IssueSink): Promise<KeySource | undefined> {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    sink.issue('auth.publicKeyFile', `${file}: ${fileProblem(err, 'cannot be read')}`);
    return undefined;
  }
  const byAlg = new Map<string, CryptoKey>();
  const cert = pem.includes('BEGIN CERTIFICATE');
  for (const alg of algorithms) {
    try {
      byAlg.set(alg, cert ? await importX509(pem, alg) : await importSPKI(pem, alg));
    } catch {
      // The key does not fit this algorithm (an EC key for RS256): that algorithm verifies nothing.
    }
  }
  if (byAlg.size === 0) {
    sink.issue('auth.publicKeyFile', `${file}: not a PEM public key (SPKI or X.509) usable with ${algorithms.join(', ')}`);
    return undefined;
  }
  return { kind: 'static', byAlg };
}

const HMAC_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };

/**
 * A secret shorter than its hash is weaker than the algorithm promises (RFC 7518 §3.2 says MUST
 * NOT): it is reported as a warning on every start and by `check`, not refused, because the
 * secret is usually the identity provider's, not the operator's to choose.
 */
async function importSecret(secret: string, algorithms: readonly Algorithm[], sink: IssueSink): Promise<KeySource | undefined> {
  const bytes = new TextEncoder().encode(secret);
  const byAlg = new Map<string, CryptoKey>();
  for (const alg of algorithms) {
    const min = HMAC_MIN_BYTES[alg];
    if (min === undefined) continue;
    if (bytes.length < min) sink.warn('auth.secret', `shorter than ${min} bytes, weaker than ${alg} should be (RFC 7518 §3.2); use a longer secret`);
    // Imported once as a CryptoKey: jose would re-import a raw secret on every verify.
    byAlg.set(alg, await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']));
  }
  return byAlg.size > 0 ? { kind: 'static', byAlg } : undefined;
}

function fileProblem(err: unknown, fallback: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return fallback;
}
