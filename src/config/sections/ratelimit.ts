// `rateLimit`: named rules, first match wins, shared through the store; the fail mode while it is down.
import { z } from 'zod';
import { compileRoute, type Route, type RouteOptions } from '../../core/routes.js';
import { method, mode, pathPattern, windowDuration, type Mode } from '../primitives.js';
import { durationMs } from '../../core/durations.js';

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
  mode: mode.optional(),
});

export const rateLimitSchema = z.strictObject({
  onStoreError: z.enum(['memory', 'allow', 'deny'], { message: 'expected memory, allow or deny' }).default('memory'),
  mode: mode.default('enforce'),
  /**
   * IP-keyed buckets group IPv6 clients by this prefix length (as Traefik's ipv6Subnet does): one
   * host usually holds a whole /64, so a bucket per address lets it mint fresh addresses at will.
   */
  ipv6Subnet: z.number().int().min(1).max(128).default(64),
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

export type RateLimitConfig = z.output<typeof rateLimitSchema>;

export interface CompiledRateRule extends Route {
  name: string;
  /** The path pattern as written (`/*` when the rule names none), for traces and the console. */
  pattern: string;
  limit: number;
  windowS: number;
  by: { kind: 'client' } | { kind: 'ip' } | { kind: 'claim'; claim: string };
  overrides: readonly { claim: string; value: string; limit: number }[];
  /** The rule's own mode, else the gate's. */
  mode: Mode;
}

export interface CompiledRateLimit {
  onStoreError: 'memory' | 'allow' | 'deny';
  mode: Mode;
  ipv6Subnet: number;
  rules: readonly CompiledRateRule[];
}

export function compileRateLimit(r: RateLimitConfig, routes: RouteOptions): CompiledRateLimit {
  return {
    onStoreError: r.onStoreError,
    mode: r.mode,
    ipv6Subnet: r.ipv6Subnet,
    rules: r.rules.map((rule) => ({
      ...compileRoute(rule.methods, rule.path, routes),
      name: rule.name,
      pattern: rule.path ?? '/*',
      limit: rule.limit,
      windowS: durationMs(rule.window) / 1000,
      by: rule.by === 'client' ? { kind: 'client' } : rule.by === 'ip' ? { kind: 'ip' } : { kind: 'claim', claim: rule.by.slice('claim:'.length) },
      overrides: rule.overrides,
      mode: rule.mode ?? r.mode,
    })),
  };
}
