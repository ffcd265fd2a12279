// The conflict gate's decision: (preconditions, cached version, lease, policy) → allow or 412/409/428. Pure.
import { deny, STORE_RETRY_AFTER_S, type Decision, type Deny, type Headers } from '../../core/decision.js';
import { H } from '../../core/http.js';
import { parseTagList, strongMatch, weakMatch, type EntityTag, type TagList } from '../../core/preconditions.js';
import { fieldValue } from '../../core/percent.js';
import { compareOrdered, etagOf, isOrdered, isStaleClientVersion } from '../../core/versions.js';

/** The precondition header fields of a write, parsed. */
export interface Preconditions {
  ifMatch: TagList | undefined;
  ifNoneMatch: TagList | undefined;
  clientVersion: string | undefined;
}

export type Requirement = 'none' | 'if-match' | 'client-version' | 'any';

export type VersionOutcome = { kind: 'found'; version: string } | { kind: 'missing' } | { kind: 'store_error' };

/** Claim mode: whether this write holds the lease (`off` when claim mode is disabled). */
export type LeaseOutcome = { kind: 'off' } | { kind: 'taken' } | { kind: 'held'; remainingMs: number };

export interface ConflictPolicy {
  ifMatchStatus: 412 | 409;
  unknownResource: 'allow' | 'deny';
  onStoreError: 'allow' | 'deny';
}


/** Parses the three fields; a malformed If-Match / If-None-Match is a 400, never silently ignored. */
export function parsePreconditions(h: { ifMatch?: string; ifNoneMatch?: string; clientVersion?: string }): Preconditions | Deny {
  let ifMatch: TagList | undefined;
  let ifNoneMatch: TagList | undefined;
  if (h.ifMatch !== undefined) {
    const parsed = parseTagList(h.ifMatch);
    if (parsed === null) return deny('conflict', 'bad_forward_request', 'If-Match is not "*" or a list of entity-tags like "8".');
    ifMatch = parsed;
  }
  if (h.ifNoneMatch !== undefined) {
    const parsed = parseTagList(h.ifNoneMatch);
    if (parsed === null) return deny('conflict', 'bad_forward_request', 'If-None-Match is not "*" or a list of entity-tags like "8".');
    ifNoneMatch = parsed;
  }
  const cv = h.clientVersion?.trim();
  return { ifMatch, ifNoneMatch, clientVersion: cv === '' ? undefined : cv };
}

/** 428 when the resource rule demands a precondition the write does not carry (RFC 6585 §3). */
export function checkRequirement(req: Requirement, p: Preconditions): Deny | null {
  const missing =
    (req === 'if-match' && p.ifMatch === undefined) ||
    (req === 'client-version' && p.clientVersion === undefined) ||
    (req === 'any' && p.ifMatch === undefined && p.ifNoneMatch === undefined && p.clientVersion === undefined);
  if (!missing) return null;
  const what = req === 'if-match' ? 'an If-Match header' : req === 'client-version' ? 'a Client-Version header' : 'If-Match, If-None-Match or Client-Version';
  return deny('conflict', 'precondition_required', `Writes to this resource need ${what}.`);
}

/** A strong If-Match tag naming an ordered version above the cached ordered version. */
function aheadOf(tags: EntityTag[], current: string): boolean {
  return tags.some((t) => !t.weak && isOrdered(t.opaque) && compareOrdered(t.opaque, current) > 0);
}

/**
 * The cache is behind the upstream: the write's If-Match (a strong tag) or Client-Version names an
 * ordered version newer than the cached ordered one. Versions only move forward, so such a client
 * has seen a version the gate was never told of (a lost publish, a raw SET out of order, Redis
 * down between commit and publish). The gate cannot know that version to be stale, so it lets the
 * write through for the upstream's own conditional write to decide; it refuses only what it knows
 * to be stale, a version below the cached one. Opaque versions have no order: they still match
 * exactly. See the README, "Versions that heal".
 */
export function cacheBehind(p: Preconditions, current: string): boolean {
  if (!isOrdered(current)) return false;
  if (p.ifMatch !== undefined && p.ifMatch !== '*' && aheadOf(p.ifMatch, current)) return true;
  return p.clientVersion !== undefined && isOrdered(p.clientVersion) && compareOrdered(p.clientVersion, current) > 0;
}

function stale(code: 'precondition_failed' | 'stale_client_version', detail: string, version: string, status?: number): Deny {
  return deny('conflict', code, detail, {
    ...(status !== undefined ? { status } : {}),
    headers: { ETag: etagOf(version) },
    members: { currentVersion: version },
  });
}

/**
 * What an allowed write tells the upstream: its resource key and the cached version (empty when
 * none), each as a header can carry it (core/percent.ts#fieldValue: an upstream's raw SET can
 * hold a newline, and a key built from a decoded path any character).
 */
export function resourceHeaders(key: string, version: string | null): Headers {
  return { [H.resourceKey]: fieldValue(key), [H.resourceVersion]: fieldValue(version ?? '') };
}

/**
 * Evaluates a write's preconditions against the cached version, in RFC 9110 §13.2.2 order:
 * If-Match (strong comparison, §13.1.1), then If-None-Match (weak, §13.1.2: for an unsafe method
 * a match is 412), then Client-Version (ordered versions compare, others must be equal). An If-Match
 * naming an ordered version newer than the cached one passes: the cache is behind (cacheBehind).
 *
 * The gate is a cache in front of the upstream, so an unknown resource is the upstream's call
 * under `unknownResource: allow`; under `deny` it is a 412, except a create guarded by
 * `If-None-Match: *`, whose precondition is genuinely true.
 *
 * Claim mode: a write whose preconditions pass but whose resource is leased to another write gets
 * 409 write_in_progress. A write that fails its preconditions gets the 412/409 instead: it would
 * fail after the lease too.
 */
export function decideConflict(resourceKey: string, p: Preconditions, v: VersionOutcome, lease: LeaseOutcome, policy: ConflictPolicy): Decision {
  if (v.kind === 'store_error') {
    if (policy.onStoreError === 'deny') {
      return deny('conflict', 'store_unavailable', 'The version store is unavailable; try again shortly.', {
        headers: { 'Retry-After': String(STORE_RETRY_AFTER_S) },
        members: { retryAfter: STORE_RETRY_AFTER_S },
      });
    }
    return { kind: 'allow', headers: resourceHeaders(resourceKey, null) };
  }
  const current = v.kind === 'found' ? v.version : null;

  if (current === null) {
    const creating = p.ifMatch === undefined && p.ifNoneMatch === '*';
    if (policy.unknownResource === 'deny' && !creating) {
      return deny('conflict', 'precondition_failed', 'The resource has no known version.', {
        ...(p.ifMatch !== undefined ? { status: policy.ifMatchStatus } : {}),
      });
    }
  } else {
    if (p.ifMatch !== undefined && p.ifMatch !== '*' && !strongMatch(p.ifMatch, current) && !aheadOf(p.ifMatch, current)) {
      return stale('precondition_failed', `If-Match does not match the current version ${etagOf(current)}.`, current, policy.ifMatchStatus);
    }
    // §13.2.2 step 3: If-None-Match is evaluated whether or not If-Match was present (only
    // If-Unmodified-Since depends on If-Match being absent).
    if (p.ifNoneMatch !== undefined && (p.ifNoneMatch === '*' || weakMatch(p.ifNoneMatch, current))) {
      return stale('precondition_failed', p.ifNoneMatch === '*' ? 'The resource already exists (If-None-Match: *).' : 'If-None-Match matches the current version.', current);
    }
  }
  if (current !== null && p.clientVersion !== undefined && isStaleClientVersion(p.clientVersion, current)) {
    return stale('stale_client_version', `Client-Version ${p.clientVersion} is behind the current version ${current}.`, current);
  }

  if (lease.kind === 'held') {
    const retryAfter = Math.max(1, Math.ceil(lease.remainingMs / 1000));
    return deny('conflict', 'write_in_progress', 'Another write to this resource is in progress.', {
      headers: { 'Retry-After': String(retryAfter) },
      members: { retryAfter },
    });
  }
  return { kind: 'allow', headers: resourceHeaders(resourceKey, current) };
}
