// What a gate decides: allow (with headers for the upstream) or a denial with a contract code.

/** Machine-readable denial codes: the `code` member of every problem+json body. */
export type DenyCode =
  | 'bad_forward_request'
  | 'missing_token'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'untrusted_source'
  | 'rate_limited'
  | 'precondition_failed'
  | 'stale_client_version'
  | 'write_in_progress'
  | 'precondition_required'
  | 'idempotency_key_missing'
  | 'idempotency_key_malformed'
  | 'idempotency_in_flight'
  | 'idempotency_key_reused'
  | 'store_unavailable';

/** Status and title per code; adding a code without an entry here fails to compile. */
export const DENY = {
  bad_forward_request: { status: 400, title: 'Bad forwarded request' },
  missing_token: { status: 401, title: 'Missing bearer token' },
  invalid_token: { status: 401, title: 'Invalid bearer token' },
  insufficient_scope: { status: 403, title: 'Insufficient scope' },
  untrusted_source: { status: 403, title: 'Untrusted source' },
  rate_limited: { status: 429, title: 'Too many requests' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  stale_client_version: { status: 409, title: 'Stale client version' },
  write_in_progress: { status: 409, title: 'Write in progress' },
  precondition_required: { status: 428, title: 'Precondition required' },
  idempotency_key_missing: { status: 400, title: 'Idempotency-Key missing' },
  idempotency_key_malformed: { status: 400, title: 'Idempotency-Key malformed' },
  idempotency_in_flight: { status: 409, title: 'Request in flight' },
  idempotency_key_reused: { status: 422, title: 'Idempotency-Key reused' },
  store_unavailable: { status: 503, title: 'Store unavailable' },
} as const satisfies Record<DenyCode, { status: number; title: string }>;

/** Retry-After (seconds) when the store is down and a gate's fail mode is deny: it usually returns fast. */
export const STORE_RETRY_AFTER_S = 1;

export type Gate = 'forward' | 'auth' | 'ratelimit' | 'conflict';

/** Response headers, by canonical name. */
export type Headers = Record<string, string>;

export interface Deny {
  kind: 'deny';
  gate: Gate;
  code: DenyCode;
  /** Human-readable, safe to show: never a token, secret or stack. */
  detail: string;
  /** Overrides DENY[code].status (conflict.ifMatchStatus: 409). */
  status?: number;
  headers?: Headers;
  /** Extra problem+json members (`retryAfter`, `currentVersion`). */
  members?: Record<string, string | number>;
}

export interface Allow {
  kind: 'allow';
  headers: Headers;
}

export type Decision = Allow | Deny;

export function deny(gate: Gate, code: DenyCode, detail: string, extra: Partial<Omit<Deny, 'kind' | 'gate' | 'code' | 'detail'>> = {}): Deny {
  return { kind: 'deny', gate, code, detail, ...extra };
}
