// The config file's shape: zod schema, strict at every level, and the single home of defaults.
import { z } from 'zod';

const DURATION_RE = /^\d+(ms|s|m|h)$/;
const duration = () => z.string().regex(DURATION_RE, { message: 'expected a duration like "60s"' });

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

const PATH_RE = /^\/[^\s?#]*$/;
const pathPattern = () => z.string().regex(PATH_RE, { message: 'expected a path pattern starting with "/", like "/api/orders/:id"' });
const ROUTE_RE = /^(?:[A-Z]+ )?\/[^\s?#]*$/;
const route = z.string().regex(ROUTE_RE, { message: 'expected "METHOD /pattern" or "/pattern"' });
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'expected an HTTP header name' });

export const DEFAULT_TRUSTED_PROXIES = [
  '127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7',
];

const server = z.strictObject({
  trustedProxies: z.array(z.string()).default(DEFAULT_TRUSTED_PROXIES),
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
});

const claimName = /^claim:[A-Za-z0-9_.:-]+$/;
const rateRule = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, "_", "." or "-"' }),
  methods: z.array(method).optional(),
  path: pathPattern().optional(),
  limit: z.number().int().min(1),
  window: duration(),
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
  rules: z.array(rateRule).default([]),
});

const resource = z.strictObject({
  path: pathPattern(),
  key: z.string().min(1),
  require: z.enum(['none', 'if-match', 'client-version', 'any'], { message: 'expected none, if-match, client-version or any' }).default('none'),
  methods: z.array(z.enum(['POST', 'PUT', 'PATCH', 'DELETE'], { message: 'expected POST, PUT, PATCH or DELETE' })).optional(),
});

const conflict = z.strictObject({
  ifMatchStatus: z.union([z.literal(412), z.literal(409)], { message: 'expected 412 or 409' }).default(412),
  unknownResource: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  onStoreError: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  claim: z.strictObject({ enabled: z.boolean().default(false), lease: duration().default('5s') }).prefault({}),
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
