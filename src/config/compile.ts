// Config → Compiled: matchers, milliseconds, CIDR sets and imported keys, checked and frozen once.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { importSPKI, importX509, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { compilePattern, type PathMatcher, type Segments } from '../core/paths.js';
import type { IpClassifier } from '../core/forwarded.js';
import { durationMs } from '../core/durations.js';
import type { KeySource } from '../gates/auth/verify.js';
import type { ConfigIssue } from './load.js';
import { DEFAULT_ASYMMETRIC_ALGORITHMS, parseCidr, type Algorithm, type Config } from './schema.js';

/** A method set (null = any method) plus a path matcher. */
export interface Route {
  methods: ReadonlySet<string> | null;
  match: PathMatcher;
}

export interface CompiledRateRule extends Route {
  name: string;
  limit: number;
  windowS: number;
  by: { kind: 'client' } | { kind: 'ip' } | { kind: 'claim'; claim: string };
  overrides: readonly { claim: string; value: string; limit: number }[];
}

export interface CompiledResource extends Route {
  pattern: string;
  /** Builds the resource key from the path's `:name` captures. */
  key: (params: Record<string, string>) => string;
  require: 'none' | 'if-match' | 'client-version' | 'any';
}

export interface Compiled {
  server: { port: number; adminPort: number; host: string; classifyIp: IpClassifier; replayTtlMs: number };
  store: { url: string; keyPrefix: string; commandTimeoutMs: number; connectTimeoutMs: number };
  auth: {
    source: KeySource;
    algorithms: readonly Algorithm[];
    issuer?: string | string[];
    audience?: string | string[];
    clockToleranceMs: number;
    requireExp: boolean;
    clientIdClaim: string;
    forwardClaims: readonly (readonly [string, string])[];
    publicRoutes: readonly Route[];
    requireScopes: readonly (Route & { scopes: readonly string[] })[];
    tokenCacheSize: number;
    jwksCooldownMs: number;
    jwksMaxAgeMs: number;
    jwksTimeoutMs: number;
  };
  rateLimit: { onStoreError: 'memory' | 'allow' | 'deny'; rules: readonly CompiledRateRule[] };
  conflict: {
    ifMatchStatus: 412 | 409;
    unknownResource: 'allow' | 'deny';
    onStoreError: 'allow' | 'deny';
    claim: { enabled: boolean; leaseMs: number };
    resources: readonly CompiledResource[];
  };
}

/** `warnings`: choices that work but are weaker than they should be (a short HMAC secret). */
export type CompileResult = { ok: true; compiled: Compiled; warnings: ConfigIssue[] } | { ok: false; issues: ConfigIssue[] };


/** Does the route apply to this method and path? */
export function routeMatches(r: Route, method: string, segments: Segments): Record<string, string> | null {
  if (r.methods !== null && !r.methods.has(method)) return null;
  return r.match(segments);
}

function route(methods: readonly string[] | undefined, pattern: string | undefined): Route {
  return { methods: methods && methods.length > 0 ? new Set(methods) : null, match: compilePattern(pattern ?? '/*') };
}

/** Compiles a validated config. Reads key files; collects every problem. */
export async function compileConfig(config: Config, opts: { baseDir?: string } = {}): Promise<CompileResult> {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path, message });
  const warn = (path: string, message: string) => warnings.push({ path, message });
  const resolveFile = (f: string) => (opts.baseDir && !f.startsWith('/') ? `${opts.baseDir}/${f}` : f);

  // server
  const blocks = new BlockList();
  for (const cidr of config.server.trustedProxies) {
    const parsed = parseCidr(cidr)!;
    blocks.addSubnet(parsed.ip, parsed.prefix, parsed.family);
  }

  // auth
  const a = config.auth;
  const algorithms: Algorithm[] = a.algorithms ?? (a.secret !== undefined ? ['HS256'] : DEFAULT_ASYMMETRIC_ALGORITHMS);
  // The schema made sure exactly one source is set; here the keys are read and imported.
  let source: KeySource | undefined;
  if (a.jwksUrl !== undefined) source = { kind: 'remote', url: new URL(a.jwksUrl) };
  else if (a.jwksFile !== undefined) source = readJwksFile(resolveFile(a.jwksFile), issue);
  else if (a.publicKeyFile !== undefined) source = await readPublicKey(resolveFile(a.publicKeyFile), algorithms, issue);
  else if (a.secret !== undefined) source = await importSecret(a.secret, algorithms, warn);
  const leaseMs = durationMs(config.conflict.claim.lease);
  if (issues.length > 0 || source === undefined) return { ok: false, issues };

  const compiled: Compiled = {
    server: {
      port: config.server.port,
      adminPort: config.server.adminPort,
      host: config.server.host,
      classifyIp: ipClassifier(blocks),
      replayTtlMs: durationMs(config.server.replayTtl),
    },
    store: {
      url: config.store.url,
      keyPrefix: config.store.keyPrefix,
      commandTimeoutMs: durationMs(config.store.commandTimeout),
      connectTimeoutMs: durationMs(config.store.connectTimeout),
    },
    auth: {
      source,
      algorithms,
      issuer: a.issuer,
      audience: a.audience,
      clockToleranceMs: durationMs(a.clockTolerance),
      requireExp: a.requireExp,
      clientIdClaim: a.clientIdClaim,
      forwardClaims: Object.entries(a.forwardClaims),
      publicRoutes: a.publicRoutes.map((r) => {
        const sp = r.indexOf(' ');
        return sp === -1 ? route(undefined, r) : route([r.slice(0, sp)], r.slice(sp + 1));
      }),
      requireScopes: a.requireScopes.map((r) => ({ ...route(r.methods, r.path), scopes: r.scopes })),
      tokenCacheSize: a.tokenCacheSize,
      jwksCooldownMs: durationMs(a.jwksCooldown),
      jwksMaxAgeMs: durationMs(a.jwksMaxAge),
      jwksTimeoutMs: durationMs(a.jwksTimeout),
    },
    rateLimit: {
      onStoreError: config.rateLimit.onStoreError,
      rules: config.rateLimit.rules.map((r) => ({
        ...route(r.methods, r.path),
        name: r.name,
        limit: r.limit,
        windowS: durationMs(r.window) / 1000,
        by: r.by === 'client' ? { kind: 'client' } : r.by === 'ip' ? { kind: 'ip' } : { kind: 'claim', claim: r.by.slice('claim:'.length) },
        overrides: r.overrides,
      })),
    },
    conflict: {
      ifMatchStatus: config.conflict.ifMatchStatus,
      unknownResource: config.conflict.unknownResource,
      onStoreError: config.conflict.onStoreError,
      claim: { enabled: config.conflict.claim.enabled, leaseMs },
      resources: config.conflict.resources.map((r) => ({
        ...route(r.methods ?? ['POST', 'PUT', 'PATCH', 'DELETE'], r.path),
        pattern: r.path,
        key: keyTemplate(r.key),
        require: r.require,
      })),
    },
  };
  return { ok: true, compiled: deepFreeze(compiled), warnings };
}

function keyTemplate(template: string): (params: Record<string, string>) => string {
  const parts = template.split(/(\{[^}]*\})/);
  return (params) => {
    let out = '';
    for (const p of parts) out += p.startsWith('{') && p.endsWith('}') ? (params[p.slice(1, -1)] ?? '') : p;
    return out;
  };
}

/** Strips a port or brackets and unmaps `::ffff:a.b.c.d`; null when what is left is no IP address. */
export function normalizeIp(raw: string): string | null {
  let s = raw;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end === -1) return null;
    s = s.slice(1, end);
  } else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(s)) {
    s = s.slice(0, s.lastIndexOf(':'));
  }
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(s)) s = s.slice(7);
  return isIP(s) === 0 ? null : s;
}

function ipClassifier(blocks: BlockList): IpClassifier {
  const memo = new Map<string, { ip: string; trusted: boolean } | null>();
  return (raw) => {
    const hit = memo.get(raw);
    if (hit !== undefined) return hit;
    const ip = normalizeIp(raw);
    const result = ip === null ? null : { ip, trusted: blocks.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6') };
    if (memo.size >= 4096) memo.clear();
    memo.set(raw, result);
    return result;
  };
}

function readJwksFile(file: string, issue: (p: string, m: string) => void): KeySource | undefined {
  try {
    const jwks = JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet;
    createLocalJWKSet(jwks);
    return { kind: 'local', jwks };
  } catch (err) {
    issue('auth.jwksFile', `${file}: ${fileProblem(err, 'not a JSON Web Key Set')}`);
    return undefined;
  }
}

async function readPublicKey(file: string, algorithms: readonly Algorithm[], issue: (p: string, m: string) => void): Promise<KeySource | undefined> {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    issue('auth.publicKeyFile', `${file}: ${fileProblem(err, 'cannot be read')}`);
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
    issue('auth.publicKeyFile', `${file}: not a PEM public key (SPKI or X.509) usable with ${algorithms.join(', ')}`);
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
async function importSecret(secret: string, algorithms: readonly Algorithm[], warn: (p: string, m: string) => void): Promise<KeySource | undefined> {
  const bytes = new TextEncoder().encode(secret);
  const byAlg = new Map<string, CryptoKey>();
  for (const alg of algorithms) {
    const min = HMAC_MIN_BYTES[alg];
    if (min === undefined) continue;
    if (bytes.length < min) warn('auth.secret', `shorter than ${min} bytes, weaker than ${alg} should be (RFC 7518 §3.2); use a longer secret`);
    // Imported once as a CryptoKey: jose would re-import a raw secret on every verify.
    byAlg.set(alg, await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']));
  }
  return byAlg.size > 0 ? { kind: 'static', byAlg } : undefined;
}

function fileProblem(err: unknown, fallback: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  return fallback;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof Map) && !(o instanceof Set) && !(o instanceof URL) && !(o instanceof BlockList)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
