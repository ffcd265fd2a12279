// The auth gate's decision: (verify outcome, route's required scopes, policy) → identity or denial. Pure.
import { deny, type Deny, type Headers } from '../../core/decision.js';

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

/** Scopes from `scope` (space-separated, RFC 8693) or `scp` / `scopes` (array or string). */
export function scopesOf(claims: Claims): string[] {
  for (const name of ['scope', 'scp', 'scopes']) {
    const v = claims[name];
    if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
    if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string' && s !== '');
  }
  return [];
}

const SAFE_VALUE_RE = /^[\x20-\x7e]*$/;

/** A claim as a header value: strings as they are, arrays space-joined, objects as JSON; non-ASCII percent-encoded. */
export function claimHeaderValue(v: unknown): string {
  let s: string;
  if (v === undefined || v === null) s = '';
  else if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
  else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) s = v.join(' ');
  else s = JSON.stringify(v);
  return SAFE_VALUE_RE.test(s) ? s : encodeURIComponent(s);
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
  const rawId = claims[policy.clientIdClaim];
  if ((typeof rawId !== 'string' || rawId === '') && typeof rawId !== 'number') {
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
    'X-Auth-Scopes': claimHeaderValue(scopes.join(' ')),
  };
  for (const [header, claim] of policy.forwardClaims) headers[header] = claimHeaderValue(claims[claim]);
  return { kind: 'allow', identity: { clientId: String(rawId), claims }, headers };
}
