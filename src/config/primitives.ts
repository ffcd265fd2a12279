// Building blocks the config sections share: durations, methods, path patterns, routes, CIDRs, modes.
import { isIP } from 'node:net';
import { z } from 'zod';
import { durationMs } from '../core/durations.js';
import { METHODS } from '../core/http.js';
import { patternProblem } from '../core/paths.js';

export { METHODS };

const DURATION_RE = /^\d+(ms|s|m|h)$/;
export const DURATION_MSG = 'expected a duration like "60s"';
/** Node timers overflow past 2^31-1 ms (and then fire after 1 ms): no duration may be longer. */
const MAX_DURATION_MS = 576 * 3_600_000;

export const duration = () =>
  z
    .string({ message: DURATION_MSG })
    .regex(DURATION_RE, { message: DURATION_MSG })
    .refine((d) => !DURATION_RE.test(d) || durationMs(d) <= MAX_DURATION_MS, { message: 'expected a duration of at most 576h (24 days)' });

/** A rate-limit window: whole seconds (rate-limiter-flexible counts in seconds). */
export const windowDuration = () =>
  duration().refine((d) => !DURATION_RE.test(d) || (/^\d+(s|m|h)$/.test(d) && !/^0+[smh]$/.test(d)), { message: 'expected whole seconds, at least "1s"' });

export const positiveDuration = () => duration().refine((d) => !DURATION_RE.test(d) || !/^0+(ms|s|m|h)$/.test(d), { message: 'expected a duration above 0' });

export const method = z.enum(METHODS, { message: `expected one of ${METHODS.join(', ')}` });

/** `enforce` answers with the denial; `shadow` allows, and says in X-Gate-Shadow what it would have denied. */
export const mode = z.enum(['enforce', 'shadow'], { message: 'expected enforce or shadow' });

/** A YAML mapping: an object, not a list or null. */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Options for a mapping's cross-field refinement: run it even when one of the mapping's fields
 * failed (zod skips a refinement after an aborting issue), so one `check` run tells every problem.
 * Such a refinement reads only the values that are well-formed.
 */
export const WITH_FIELD_PROBLEMS = { when: (payload: { value: unknown }) => isMapping(payload.value) };
export type Mode = z.output<typeof mode>;

const PATH_RE = /^\/[^\s?#]*$/;
const PATH_MSG = 'expected a path pattern starting with "/", like "/api/orders/:id"';
export const pathPattern = () =>
  z
    .string({ message: PATH_MSG })
    .regex(PATH_RE, { message: PATH_MSG })
    .superRefine((p, ctx) => {
      const problem = patternProblem(p);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

const ROUTE_RE = new RegExp(`^(?:(?:${METHODS.join('|')}) )?\\/[^\\s?#]*$`);
const ROUTE_MSG = `expected "METHOD /pattern" or "/pattern" (METHOD one of ${METHODS.join(', ')})`;
export const route = z
  .string({ message: ROUTE_MSG })
  .regex(ROUTE_RE, { message: ROUTE_MSG })
  .superRefine((r, ctx) => {
    const problem = patternProblem(r.slice(r.indexOf('/')));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const cidr = z.string().refine((c) => parseCidr(c) !== null, { message: 'expected an IP address or CIDR like "10.0.0.0/8"' });
export const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: 'expected an HTTP header name' });

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

/** One problem with a config, named by its field path (`rateLimit.rules[1].window`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** What a section's compile step reports into: problems (fatal) and warnings (weaker than it should be). */
export interface IssueSink {
  issue(path: string, message: string): void;
  warn(path: string, message: string): void;
  /** A path relative to the config file's folder. */
  resolveFile(file: string): string;
}
