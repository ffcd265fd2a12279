// The config file's shape: zod schema, strict at every level, and the single home of defaults.
import { isIP } from 'node:net';
import { z } from 'zod';
import { durationMs } from '../core/durations.js';
import { patternProblem } from '../core/paths.js';

const DURATION_RE = /^\d+(ms|s|m|h)$/;
const DURATION_MSG = 'expected a duration like "60s"';
/** Node timers overflow past 2^31-1 ms (and then fire after 1 ms): no duration may be longer. */
const MAX_DURATION_MS = 576 * 3_600_000;
const duration = () =>
  z
    .string({ message: DURATION_MSG })
    .regex(DURATION_RE, { message: DURATION_MSG })
    .refine((d) => !DURATION_RE.test(d) || durationMs(d) <= MAX_DURATION_MS, { message: 'expected a duration of at most 576h (24 days)' });
/** A rate-limit window: whole seconds (rate-limiter-flexible counts in seconds). */
const windowDuration = () =>
  duration().refine((d) => /^\d+(s|m|h)$/.test(d) && !/^0+[smh]$/.test(d), { message: 'expected whole seconds, at least "1s"' });
const positiveDuration = () => duration().refine((d) => !/^0+(ms|s|m|h)$/.test(d), { message: 'expected a duration above 0' });

export const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'CONNECT'] as const;
const method = z.enum(METHODS, { message: `expected one of ${METHODS.join(', ')}` });

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
/** Used when auth.algorithms is not set and the key source is asymmetric. */
export const DEFAULT_ASYMMETRIC_ALGORITHMS: Algorithm[] = ['RS256', 'ES256', 'EdDSA'];
const KEY_SOURCES = ['jwksUrl', 'jwksFile', 'publicKeyFile', 'secret'] as const;
/** Headers the gate sets itself; forwardClaims may not reuse them. */
const GATE_HEADERS: ReadonlySet<string> = new Set(['x-auth-subject', 'x-auth-scopes', 'x-resource-key', 'x-resource-version', 'ratelimit', 'ratelimit-policy']);

const PATH_RE = /^\/[^\s?#]*$/;
const PATH_MSG = 'expected a path pattern starting with "/", like "/api/orders/:id"';
const pathPattern = () =>
  z
    .string({ message: PATH_MSG })
    .regex(PATH_RE, { message: PATH_MSG })
    .superRefine((p, ctx) => {
      const problem = patternProblem(p);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
const ROUTE_RE = new RegExp(`^(?:(?:${METHODS.join('|')}) )?\\/[^\\s?#]*$`);
const ROUTE_MSG = `expected "METHOD /pattern" or "/pattern" (METHOD one of ${METHODS.join(', ')})`;
const route = z
  .string({ message: ROUTE_MSG })
  .regex(ROUTE_RE, { message: ROUTE_MSG })
  .superRefine((r, ctx) => {
    const problem = patternProblem(r.slice(r.indexOf('/')));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const cidr = z.string().refine((c) => parseCidr(c) !== null, { message: 'expected an IP address or CIDR like "10.0.0.0/8"' });
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'expected an HTTP header name' });

/** `10.0.0.0/8`, `::1/128` or a bare address; null when malformed. */
export function parseCidr(text: string): { ip: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [ip, prefixText, extra] = text.trim().split('/');
  if (ip === undefined || extra !== undefined) return null;
  const v = isIP(ip);
  if (v === 0) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { ip, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

export const DEFAULT_TRUSTED_PROXIES = [
  '127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7',
];

const server = z.strictObject({
  trustedProxies: z.array(cidr).default(DEFAULT_TRUSTED_PROXIES),
  port: z.number().int().min(0).max(65535).default(8080),
  adminPort: z.number().int().min(0).max(65535).default(9090),
  host: z.string().default('0.0.0.0'),
  /** How long a denial is kept for a proxy's replay (nginx auth_request), see http/replay.ts. */
  replayTtl: duration().default('10s'),
});

const store = z.strictObject({
  /** `redis://…`, `rediss://…` or `memory`. */
  url: z.string().regex(/^(memory|rediss?:\/\/.+)$/, { message: 'expected "memory" or a redis:// URL' }).default('redis://127.0.0.1:6379/0'),
  keyPrefix: z.string().default('cg:'),
  /** Upper bound on one Redis command; past it the gate applies its fail mode. */
  commandTimeout: duration().default('250ms'),
  connectTimeout: duration().default('2s'),
});

const scopeRule = z.strictObject({
  methods: z.array(method).optional(),
  path: pathPattern(),
  scopes: z.array(z.string().min(1)).min(1),
});

const auth = z.strictObject({
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
}).superRefine((a, ctx) => {
  const sources = KEY_SOURCES.filter((k) => a[k] !== undefined);
  if (sources.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `exactly one of ${KEY_SOURCES.join(', ')} is required${sources.length > 1 ? ` (got ${sources.join(', ')})` : ''}` });
  }
  const hmacSource = a.secret !== undefined;
  a.algorithms?.forEach((alg, i) => {
    if (hmacSource && !HMAC_ALGORITHMS.has(alg)) ctx.addIssue({ code: 'custom', path: ['algorithms', i], message: `${alg} needs a public key, but auth.secret is an HMAC secret` });
    // The key-confusion guard: an HMAC algorithm must never verify with a public key as its secret.
    if (!hmacSource && HMAC_ALGORITHMS.has(alg)) ctx.addIssue({ code: 'custom', path: ['algorithms', i], message: `${alg} is an HMAC algorithm; it is only allowed with auth.secret` });
  });
  const seen = new Set<string>();
  for (const header of Object.keys(a.forwardClaims)) {
    const lower = header.toLowerCase();
    if (GATE_HEADERS.has(lower)) ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'this header is set by the gate itself' });
    else if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: ['forwardClaims', header], message: 'duplicate header name' });
    seen.add(lower);
  }
});

const claimName = /^claim:[A-Za-z0-9_.:-]+$/;
const rateRule = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, "_", "." or "-"' }),
  methods: z.array(method).optional(),
  path: pathPattern().optional(),
  limit: z.number().int().min(1),
  window: windowDuration(),
  /** What identifies a client: `client` (auth.clientIdClaim; the IP on public routes), `ip`, or `claim:<name>`. */
  by: z.union([z.literal('client'), z.literal('ip'), z.string().regex(claimName, { message: 'expected "client", "ip" or "claim:<name>"' })]).default('client'),
  /** Per-claim-value limits, first match wins: `{ claim: plan, value: pro, limit: 1000 }`. */
  overrides: z.array(z.strictObject({
    claim: z.string().min(1),
    value: z.string(),
    limit: z.number().int().min(1),
  })).default([]),
});

const rateLimit = z.strictObject({
  onStoreError: z.enum(['memory', 'allow', 'deny'], { message: 'expected memory, allow or deny' }).default('memory'),
  rules: z
    .array(rateRule)
    .default([])
    .superRefine(
      (rules, ctx) => {
        const seen = new Set<unknown>();
        rules.forEach((r, i) => {
          const name = (r as { name?: unknown } | undefined)?.name;
          if (typeof name !== 'string') return;
          if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${name}"` });
          seen.add(name);
        });
      },
      // Run even when a rule has other problems, so every problem is reported in one go.
      { when: (payload) => Array.isArray(payload.value) },
    ),
});

const resource = z.strictObject({
  path: pathPattern(),
  key: z.string().min(1),
  require: z.enum(['none', 'if-match', 'client-version', 'any'], { message: 'expected none, if-match, client-version or any' }).default('none'),
  methods: z.array(z.enum(['POST', 'PUT', 'PATCH', 'DELETE'], { message: 'expected POST, PUT, PATCH or DELETE' })).optional(),
}).superRefine((r, ctx) => {
  const params = new Set(r.path.split('/').filter((s) => s.startsWith(':')).map((s) => s.slice(1)));
  for (const m of r.key.matchAll(/\{([^}]*)\}/g)) {
    if (!params.has(m[1]!)) ctx.addIssue({ code: 'custom', path: ['key'], message: `{${m[1]}} is not a parameter of the path ${r.path}` });
  }
});

const conflict = z.strictObject({
  ifMatchStatus: z.union([z.literal(412), z.literal(409)], { message: 'expected 412 or 409' }).default(412),
  unknownResource: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  onStoreError: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  claim: z.strictObject({ enabled: z.boolean().default(false), lease: positiveDuration().default('5s') }).prefault({}),
  resources: z.array(resource).default([]),
});

export const configSchema = z.strictObject({
  server: server.prefault({}),
  store: store.prefault({}),
  auth: auth,
  rateLimit: rateLimit.prefault({}),
  conflict: conflict.prefault({}),
});

/** The validated config, with every default filled in. */
export type Config = z.output<typeof configSchema>;
/** What a YAML file may say. */
export type ConfigInput = z.input<typeof configSchema>;

/** JSON Schema of the config file, for editors (`conflict-gate schema`, config.schema.json). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://github.com/conflict-gate/conflict-gate/config.schema.json',
    title: 'conflict-gate configuration',
  };
}
