// The auth gate's decision: (verify outcome, route's required scopes, policy) → identity or denial. Pure.
import { deny, type Deny, type Headers } from '../../core/decision.js';
import { percentEncode } from '../../core/percent.js';

export type Claims = Record<string, unknown>;

/** What verification concluded; `reason` is safe to show (RFC 6750 error_description). */
export type VerifyOutcome = { kind: 'valid'; claims: Claims } | { kind: 'invalid'; reason: string };

export interface AuthPolicy {
  realm: string;
  clientIdClaim: string;
  /** [header name, claim name] pairs from auth.forwardClaims. */
  forwardClaims: readonly (readonly [string, string])[];
}

/** Who the caller is, for the later gates. */
export interface Identity {
  /** The rate-limit key: the clientIdClaim value, or the client IP on public routes. */
  clientId: string;
  claims: Claims;
}

export type AuthResult = { kind: 'allow'; identity: Identity; headers: Headers } | Deny;

const BEARER_RE = /^Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i;

/** The token of an `Authorization: Bearer <token>` field (RFC 6750 §2.1), else null. */
export function bearerToken(authorization: string | undefined): string | null {
  if (authorization === undefined) return null;
  const m = BEARER_RE.exec(authorization);
  return m ? m[1]! : null;
}

/**
 * Scopes from `scope` (a space-separated string, RFC 6749 §3.3 / RFC 8693 §4.2) or `scp` / `scopes`
 * (an array of strings, or a string read like `scope`). An array entry is one scope even when it
 * contains a space: `["orders:write admin"]` is not the scope `admin`.
 */
export function scopesOf(claims: Claims): string[] {
  for (const name of ['scope', 'scp', 'scopes']) {
    const v = claims[name];
    if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
    if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string' && s !== '');
  }
  return [];
}

/** Printable ASCII except `%`: an item made only of these is sent as it is. */
const PLAIN_ITEM_RE = /^[\x21-\x24\x26-\x7e]*$/;
const visible = (c: number) => c >= 0x21 && c <= 0x7e;

/**
 * One header item: every byte of its UTF-8 form outside printable ASCII `\x21-\x7e`, space and `%`
 * itself percent-encoded (`é` → `%C3%A9`, the literal `%C3%A9` → `%25C3%25A9`, `a b` → `a%20b`;
 * core/percent.ts).
 */
export function encodeHeaderItem(s: string): string {
  return PLAIN_ITEM_RE.test(s) ? s : percentEncode(s, visible);
}

/** One claim value (or array element) as an item, or null when it carries no value. */
function itemOf(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? null;
}

/**
 * The items a claim value stands for: a string is one item, an array is one item per element
 * (an element that is itself an object or array is one item, as JSON), numbers and booleans are
 * `String(v)`, objects JSON. Absent, null, `""` and `[]` have no item (an empty header), and
 * so have null and `""` elements of an array.
 */
export function claimItems(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(itemOf).filter((x): x is string => x !== null);
  const one = itemOf(v);
  return one === null ? [] : [one];
}

/**
 * A list of items as a header value: each item encoded by encodeHeaderItem, joined by single
 * spaces. Injective on lists of non-empty strings: an upstream splits on spaces and
 * percent-decodes each item to get exactly the list back (`["a","b"]` → `a b`, `"a b"` → `a%20b`).
 */
export function headerList(items: readonly string[]): string {
  return items.map(encodeHeaderItem).join(' ');
}

/** A claim as a header value: claimItems, then headerList (X-Auth-Subject and every forwardClaims header). */
export function claimHeaderValue(v: unknown): string {
  return headerList(claimItems(v));
}

const quoted = (s: string) => s.replace(/["\\]/g, '');

/** The headers an allowed but anonymous (public-route) request carries: every identity header, empty. */
export function anonymousHeaders(policy: AuthPolicy): Headers {
  const h: Headers = { 'X-Auth-Subject': '', 'X-Auth-Scopes': '' };
  for (const [header] of policy.forwardClaims) h[header] = '';
  return h;
}

export function missingToken(policy: AuthPolicy): Deny {
  return deny('auth', 'missing_token', 'This route needs an Authorization: Bearer token.', {
    headers: { 'WWW-Authenticate': `Bearer realm="${policy.realm}"` },
  });
}

/**
 * 401 for a token that is absent or fails verification, 403 for a valid token without a required
 * scope: the caller is known but not permitted (RFC 6750 §3.1, as oauth2-proxy separates them).
 */
export function decideAuth(outcome: VerifyOutcome, requiredScopes: readonly string[], policy: AuthPolicy): AuthResult {
  if (outcome.kind === 'invalid') {
    return deny('auth', 'invalid_token', `The bearer token was rejected: ${outcome.reason}.`, {
      headers: {
        'WWW-Authenticate': `Bearer realm="${policy.realm}", error="invalid_token", error_description="${quoted(outcome.reason)}"`,
      },
    });
  }
  const claims = outcome.claims;
  const clientId = clientIdOf(claims, policy);
  if (clientId === null) {
    const reason = `token has no ${policy.clientIdClaim} claim`;
    return deny('auth', 'invalid_token', `The bearer token was rejected: ${reason}.`, {
      headers: { 'WWW-Authenticate': `Bearer realm="${policy.realm}", error="invalid_token", error_description="${quoted(reason)}"` },
    });
  }
  const scopes = scopesOf(claims);
  const missing = requiredScopes.filter((s) => !scopes.includes(s));
  if (missing.length > 0) {
    const need = requiredScopes.join(' ');
    return deny('auth', 'insufficient_scope', `This request needs the scope(s): ${missing.join(' ')}.`, {
      headers: {
        'WWW-Authenticate': `Bearer realm="${policy.realm}", error="insufficient_scope", error_description="missing scope", scope="${quoted(need)}"`,
      },
    });
  }
  const headers: Headers = {
    'X-Auth-Subject': claimHeaderValue(claims.sub),
    'X-Auth-Scopes': headerList(scopes),
  };
  for (const [header, claim] of policy.forwardClaims) headers[header] = claimHeaderValue(claims[claim]);
  return { kind: 'allow', identity: { clientId, claims }, headers };
}

/** The caller's id: the clientIdClaim's value when it is a non-empty string or a number, else null. */
export function clientIdOf(claims: Claims, policy: Pick<AuthPolicy, 'clientIdClaim'>): string | null {
  const raw = claims[policy.clientIdClaim];
  return (typeof raw === 'string' && raw !== '') || typeof raw === 'number' ? String(raw) : null;
}
