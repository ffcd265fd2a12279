// `conflict`: resource rules (path → key, required preconditions), claim leases, fail modes, Idempotency-Key rules.
import { z } from 'zod';
import { durationMs } from '../../core/durations.js';
import { UNSAFE_METHODS } from '../../core/http.js';
import { compileRoute, type Route, type RouteOptions } from '../../core/routes.js';
import { mode, pathPattern, positiveDuration, WITH_FIELD_PROBLEMS, type Mode } from '../primitives.js';

/** What a path parameter may hold; see CompiledResource.key. */
export const ID_FORMS = ['any', 'integer', 'uuid'] as const;
export type IdForm = (typeof ID_FORMS)[number];

const resource = z.strictObject({
  path: pathPattern(),
  key: z.string().min(1),
  require: z.enum(['none', 'if-match', 'client-version', 'any'], { message: 'expected none, if-match, client-version or any' }).default('none'),
  methods: z.array(z.enum(UNSAFE_METHODS, { message: 'expected POST, PUT, PATCH or DELETE' })).optional(),
  /** The form of each `:param` (`{ id: integer }`): canonicalised, or the write is refused with 400. */
  params: z.record(z.string(), z.enum(ID_FORMS, { message: `expected one of ${ID_FORMS.join(', ')}` })).default({}),
  mode: mode.optional(),
}).superRefine(
  (r, ctx) => {
    if (typeof r.path !== 'string') return;
    const params = new Set(r.path.split('/').filter((s) => s.startsWith(':')).map((s) => s.slice(1)));
    for (const m of typeof r.key === 'string' ? r.key.matchAll(/\{([^}]*)\}/g) : []) {
      if (!params.has(m[1]!)) ctx.addIssue({ code: 'custom', path: ['key'], message: `{${m[1]}} is not a parameter of the path ${r.path}` });
    }
    for (const p of typeof r.params === 'object' && r.params !== null ? Object.keys(r.params) : []) {
      if (!params.has(p)) ctx.addIssue({ code: 'custom', path: ['params', p], message: `${p} is not a parameter of the path ${r.path}` });
    }
  },
  WITH_FIELD_PROBLEMS,
);

const DURATION_RE = /^\d+(ms|s|m|h)$/;

/** An Idempotency-Key rule (IETF draft-ietf-httpapi-idempotency-key-header): which writes it applies to and for how long. */
const idempotencyRule = z
  .strictObject({
    path: pathPattern(),
    methods: z.array(z.enum(UNSAFE_METHODS, { message: 'expected POST, PUT, PATCH or DELETE' })).min(1).optional(),
    /** A matching write without Idempotency-Key is a 400 idempotency_key_missing. */
    require: z.boolean().default(false),
    /** How long the first request holds the key before a retry is let through (unless the upstream ends it first). */
    inFlight: positiveDuration().default('30s'),
    /** How long the key stays bound to its first request (a different request with it is a 422). */
    ttl: positiveDuration().default('24h'),
    mode: mode.optional(),
  })
  .superRefine(
    (r, ctx) => {
      if (typeof r.inFlight === 'string' && typeof r.ttl === 'string' && DURATION_RE.test(r.inFlight) && DURATION_RE.test(r.ttl) && durationMs(r.inFlight) > durationMs(r.ttl)) {
        ctx.addIssue({ code: 'custom', path: ['ttl'], message: `expected at least inFlight (${r.inFlight})` });
      }
    },
    WITH_FIELD_PROBLEMS,
  );

export const conflictSchema = z.strictObject({
  ifMatchStatus: z.union([z.literal(412), z.literal(409)], { message: 'expected 412 or 409' }).default(412),
  unknownResource: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  onStoreError: z.enum(['allow', 'deny'], { message: 'expected allow or deny' }).default('allow'),
  mode: mode.default('enforce'),
  claim: z.strictObject({ enabled: z.boolean().default(false), lease: positiveDuration().default('5s') }).prefault({}),
  /** A version published through the admin API or the client library expires unless published again within it. */
  versionTtl: positiveDuration().optional(),
  /** Give the rate-limit point back when this gate refuses a write (412, 409, 428). */
  refundRateLimit: z.boolean().default(false),
  resources: z.array(resource).default([]),
  idempotency: z.array(idempotencyRule).default([]),
  /** Reading a body the proxy forwards to /auth (Traefik forwardBody), for Idempotency-Key fingerprints. */
  idempotencyBody: z
    .strictObject({
      maxBytes: z.number({ message: 'expected a number of bytes' }).int({ message: 'expected a whole number of bytes' }).min(0, { message: 'expected 0 or more' }).max(64 * 1024 * 1024, { message: 'expected at most 67108864 (64 MiB)' }).default(1024 * 1024),
      timeout: positiveDuration().default('1s'),
    })
    .prefault({}),
});

export type ConflictConfig = z.output<typeof conflictSchema>;

/** A path parameter that is not of its declared form. */
export class BadParam {
  constructor(
    readonly param: string,
    readonly form: IdForm,
  ) {}
}

export interface CompiledResource extends Route {
  pattern: string;
  /**
   * The resource key from the path's `:name` captures, or BadParam when one is not of its declared
   * form. Each value is canonicalised by its form (`integer`: `042` → `42`; `uuid`: lower case) and
   * then escaped (`%` → `%25`, `:` → `%3A`, braces), so two different captures never give one key.
   */
  key: (params: Record<string, string>) => string | BadParam;
  require: 'none' | 'if-match' | 'client-version' | 'any';
  mode: Mode;
}

export interface CompiledIdempotencyRule extends Route {
  pattern: string;
  require: boolean;
  inFlightMs: number;
  ttlMs: number;
  mode: Mode;
}

export interface CompiledConflict {
  ifMatchStatus: 412 | 409;
  unknownResource: 'allow' | 'deny';
  onStoreError: 'allow' | 'deny';
  mode: Mode;
  claim: { enabled: boolean; leaseMs: number };
  /** conflict.versionTtl in ms; undefined: published versions never expire. */
  versionTtlMs: number | undefined;
  refundRateLimit: boolean;
  resources: readonly CompiledResource[];
  idempotency: readonly CompiledIdempotencyRule[];
  idempotencyBody: { maxBytes: number; timeoutMs: number };
}

export function compileConflict(c: ConflictConfig, routes: RouteOptions): CompiledConflict {
  return {
    ifMatchStatus: c.ifMatchStatus,
    unknownResource: c.unknownResource,
    onStoreError: c.onStoreError,
    mode: c.mode,
    claim: { enabled: c.claim.enabled, leaseMs: durationMs(c.claim.lease) },
    versionTtlMs: c.versionTtl === undefined ? undefined : durationMs(c.versionTtl),
    refundRateLimit: c.refundRateLimit,
    resources: c.resources.map((r) => ({
      ...compileRoute(r.methods ?? UNSAFE_METHODS, r.path, routes),
      pattern: r.path,
      key: keyTemplate(r.key, r.params),
      require: r.require,
      mode: r.mode ?? c.mode,
    })),
    idempotency: c.idempotency.map((r) => ({
      ...compileRoute(r.methods ?? UNSAFE_METHODS, r.path, routes),
      pattern: r.path,
      require: r.require,
      inFlightMs: durationMs(r.inFlight),
      ttlMs: durationMs(r.ttl),
      mode: r.mode ?? c.mode,
    })),
    idempotencyBody: { maxBytes: c.idempotencyBody.maxBytes, timeoutMs: durationMs(c.idempotencyBody.timeout) },
  };
}

const INTEGER_RE = /^\d{1,64}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The canonical spelling of a captured value, or null when it is not of the form. */
export function canonicalParam(value: string, form: IdForm): string | null {
  switch (form) {
    case 'integer':
      return INTEGER_RE.test(value) ? value.replace(/^0+(?=\d)/, '') : null;
    case 'uuid':
      return UUID_RE.test(value) ? value.toLowerCase() : null;
    default:
      return value;
  }
}

/** Escapes what the key template itself uses, so the substitution is injective. */
export function escapeKeyPart(value: string): string {
  return /[%:{}]/.test(value) ? value.replace(/[%:{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : value;
}

function keyTemplate(template: string, forms: Record<string, IdForm>): CompiledResource['key'] {
  const parts = template.split(/(\{[^}]*\})/);
  return (params) => {
    let out = '';
    for (const p of parts) {
      if (!(p.startsWith('{') && p.endsWith('}'))) {
        out += p;
        continue;
      }
      const name = p.slice(1, -1);
      const form = forms[name] ?? 'any';
      const value = canonicalParam(params[name] ?? '', form);
      if (value === null) return new BadParam(name, form);
      out += escapeKeyPart(value);
    }
    return out;
  };
}
