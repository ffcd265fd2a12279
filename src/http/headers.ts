// The headers the gate documents, re-exported for the deploy files' tests and the package surface.
import { ALLOW_HEADERS, R, RATE_LIMIT_HEADERS } from '../core/http.js';

export { ALLOW_HEADERS, RATE_LIMIT_HEADERS };

/** Every header a proxy should copy from an allow to the upstream, given the configured forwardClaims. */
export function upstreamHeaders(forwardClaims: readonly string[] = []): string[] {
  return [...ALLOW_HEADERS, ...forwardClaims];
}

/** Headers the nginx replay protocol uses (see http/replay.ts). */
export const REQUEST_ID_HEADER = R.requestId;
export const REPLAY_HEADER = R.replay;
