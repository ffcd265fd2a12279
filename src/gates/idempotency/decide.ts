// Idempotency-Key at the edge (IETF draft-ietf-httpapi-idempotency-key-header): key syntax, "same request", the verdict. Pure.
import { deny, STORE_RETRY_AFTER_S, type Deny } from '../../core/decision.js';

/** What the request's Idempotency-Key field holds. */
export type KeyParse = { kind: 'absent' } | { kind: 'key'; key: string } | { kind: 'malformed' };

const TOKEN_RE = /^[A-Za-z0-9._~:+/=-]{1,255}$/;
const MAX_KEY = 255;

/**
 * The key, from a structured-field string (RFC 8941 §3.3.3: `"…"` of printable ASCII, `\"` and
 * `\\` escaped) or, as many clients send it, a bare token of 1–255 of `A-Za-z0-9._~:+/=-`. Both
 * spellings of the same characters are the same key. An empty string, parameters, a list (two
 * fields, which arrive joined by ", ") or more than 255 characters are malformed.
 */
export function parseIdempotencyKey(raw: string | undefined): KeyParse {
  if (raw === undefined) return { kind: 'absent' };
  const v = raw.replace(/^[ \t]+|[ \t]+$/g, '');
  if (v === '') return { kind: 'malformed' };
  if (v.charCodeAt(0) !== 0x22) return TOKEN_RE.test(v) ? { kind: 'key', key: v } : { kind: 'malformed' };
  let key = '';
  for (let i = 1; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x5c) {
      const next = v.charCodeAt(++i);
      if (next !== 0x22 && next !== 0x5c) return { kind: 'malformed' };
      key += v[i];
    } else if (c === 0x22) {
      // The closing quote must end the field: no parameters, no second member.
      return i === v.length - 1 && key.length > 0 && key.length <= MAX_KEY ? { kind: 'key', key } : { kind: 'malformed' };
    } else if (c < 0x20 || c > 0x7e) {
      return { kind: 'malformed' };
    } else {
      key += v[i];
    }
  }
  return { kind: 'malformed' };
}

/**
 * What makes two requests "the same request", each part a hash ('' when absent):
 * `request` = method, normalised path and query; `body` = the body the proxy forwarded (Traefik
 * forwardBody); `digest` = Content-Digest / Repr-Digest as sent; `meta` = Content-Type + Content-Length.
 */
export interface Fingerprint {
  request: string;
  body: string;
  digest: string;
  meta: string;
}

/** `<request>.<body>.<digest>.<meta>` (the parts are base64url, which has no "."). */
export function encodeFingerprint(f: Fingerprint): string {
  return `${f.request}.${f.body}.${f.digest}.${f.meta}`;
}

export function decodeFingerprint(s: string): Fingerprint | null {
  const p = s.split('.');
  return p.length === 4 ? { request: p[0]!, body: p[1]!, digest: p[2]!, meta: p[3]! } : null;
}

/**
 * Same method, path and query, and the same body by the strongest evidence both requests carry:
 * the body's hash when both were forwarded, else their digest fields when both sent one, else
 * Content-Type + Content-Length. Comparing only what both have means a retry whose body could not
 * be read (too large, too slow) is judged by its digest or length, never refused for the lack of it.
 */
export function sameRequest(a: Fingerprint, b: Fingerprint): boolean {
  if (a.request !== b.request) return false;
  if (a.body !== '' && b.body !== '') return a.body === b.body;
  if (a.digest !== '' && b.digest !== '') return a.digest === b.digest;
  return a.meta === b.meta;
}

/** 400 when a rule requires a key and there is none, or the key is malformed; null when it may go on. */
export function checkKey(required: boolean, k: KeyParse): Deny | null {
  if (k.kind === 'malformed') {
    return deny('conflict', 'idempotency_key_malformed', 'Idempotency-Key must be a structured-field string ("…") or 1 to 255 of A-Za-z0-9._~:+/=-.');
  }
  if (k.kind === 'absent' && required) return deny('conflict', 'idempotency_key_missing', 'Requests to this resource need an Idempotency-Key header.');
  return null;
}

/** What the store said of the key: this request recorded it, another request had, or the store failed. */
export type RecordOutcome = { kind: 'recorded' } | { kind: 'exists'; fingerprint: string; inFlightMs: number; ended: boolean } | { kind: 'store_error' };

export type Verdict =
  /** This request is the key's first: it goes on to the preconditions, holding the key in flight. */
  | { kind: 'first' }
  /** A retry of a request the upstream ended: through, for the upstream to answer from what it stored. */
  | { kind: 'retry' }
  /**
   * A retry of a request whose in-flight time ran out without the upstream ending it: the gate does
   * not know whether the first attempt ever reached the upstream, so this one is handled as a first
   * request (it holds the key in flight again, and the preconditions and the lease apply).
   */
  | { kind: 'expired' }
  /** The store failed and `onStoreError: allow`: through, unprotected. */
  | { kind: 'unprotected' }
  | { kind: 'deny'; deny: Deny };

/**
 * The draft's table: the same client's key with a different request is 422 whatever its state
 * (the key is bound to its first request for `ttl`); with the same request it is 409 while in
 * flight (Retry-After: the time left, whole seconds ≥ 1) and a retry afterwards: `retry` when the
 * upstream ended the in-flight state (it has the answer), `expired` when the time merely ran out.
 */
export function decideIdempotency(mine: Fingerprint, o: RecordOutcome, onStoreError: 'allow' | 'deny'): Verdict {
  if (o.kind === 'recorded') return { kind: 'first' };
  if (o.kind === 'store_error') {
    if (onStoreError === 'allow') return { kind: 'unprotected' };
    return {
      kind: 'deny',
      deny: deny('conflict', 'store_unavailable', 'The idempotency store is unavailable; try again shortly.', { headers: { 'Retry-After': String(STORE_RETRY_AFTER_S) }, members: { retryAfter: STORE_RETRY_AFTER_S } }),
    };
  }
  const theirs = decodeFingerprint(o.fingerprint);
  if (theirs === null || !sameRequest(mine, theirs)) {
    return { kind: 'deny', deny: deny('conflict', 'idempotency_key_reused', 'This Idempotency-Key was used for a different request.') };
  }
  if (o.inFlightMs > 0) {
    const retryAfter = Math.max(1, Math.ceil(o.inFlightMs / 1000));
    return {
      kind: 'deny',
      deny: deny('conflict', 'idempotency_in_flight', 'A request with this Idempotency-Key is still being processed.', { headers: { 'Retry-After': String(retryAfter) }, members: { retryAfter } }),
    };
  }
  return o.ended ? { kind: 'retry' } : { kind: 'expired' };
}
