// The headers the gate documents: one list, used by the code, the deploy files' tests and the docs.

/** Identity headers on every allow (empty when there is no value); never taken from the client. */
export const ALLOW_HEADERS = ['X-Auth-Subject', 'X-Auth-Scopes', 'X-Resource-Key', 'X-Resource-Version'] as const;

/** Rate-limit headers on an allow when a rule applied (IETF httpapi ratelimit-headers draft). */
export const RATE_LIMIT_HEADERS = ['RateLimit', 'RateLimit-Policy'] as const;

/** Every header a proxy should copy from an allow to the upstream, given the configured forwardClaims. */
export function upstreamHeaders(forwardClaims: readonly string[] = []): string[] {
  return [...ALLOW_HEADERS, ...forwardClaims];
}

/** Headers the nginx replay protocol uses (see http/replay.ts). */
export const REQUEST_ID_HEADER = 'x-request-id';
export const REPLAY_HEADER = 'x-auth-replay';
