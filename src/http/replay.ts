// The nginx replay protocol: a marked first call's denial, kept for the proxy's second call, which gets the same answer at no cost.
import { createHash } from 'node:crypto';
import { makeRoom } from '../core/bounded.js';
import { deny, STORE_RETRY_AFTER_S } from '../core/decision.js';
import { R } from '../core/http.js';
import { isFieldValue } from '../core/percent.js';
import type { HeaderSource } from '../core/forwarded.js';
import type { ProblemResponse } from '../core/problem.js';
import type { VersionStore } from '../store/port.js';

/**
 * `X-Auth-Replay: first` marks a proxy's first call of the protocol; any other value marks its
 * replay (the shipped nginx config sends the first call's status). Without the marker a call is
 * not part of the protocol, whatever `X-Request-Id` it carries (Caddy's example sends one on
 * every call, and those must not make the gate keep anything).
 */
export const FIRST_CALL = 'first';

interface Kept {
  fingerprint: string;
  res: ProblemResponse;
  untilMs: number;
}

/**
 * nginx's auth_request passes only 2xx/401/403, so the shipped nginx config replays a denial to
 * /auth a second time to hand its status, headers and body to the client (FORWARDAUTH.md §6).
 * Both calls carry the same `X-Request-Id`; the first says `X-Auth-Replay: first`, the replay
 * `X-Auth-Replay: <status>`. The first call's denial is kept here for `replayTtl` and the replay
 * is answered from it: one evaluation, one log line and one count per client request, and no
 * second rate-limit point or lease.
 *
 * Every denial of a first call is kept in this replica's memory (bounded, oldest first). Denials
 * whose second evaluation would cost something (a rate-limit point, a lease) are kept in the
 * store as well, for a replay that reaches another replica; an auth or forwarded-request denial
 * is not, so unauthenticated callers cannot make the gate write to the store. (nginx sends both
 * calls to the same replica with `hash $request_id consistent;` in its upstream block, which
 * `proxy-config --for nginx` prints.)
 *
 * The marker grants nothing: a replay with no kept denial for that id and request is evaluated
 * like any other request, so a client that sends `X-Auth-Replay` itself still pays for it.
 */
export class ReplayCache {
  private readonly local = new Map<string, Kept>();

  constructor(
    private readonly store: VersionStore,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxLocal = 10_000,
  ) {}

  static readonly ID_RE = /^[A-Za-z0-9._:-]{8,128}$/;

  /** Keeps a denial; resolves once it is in the store too when `shared`, else at once (undefined). */
  remember(requestId: string, fingerprint: string, res: ProblemResponse, shared: boolean): Promise<void> | undefined {
    this.local.delete(requestId);
    makeRoom(this.local, this.maxLocal);
    this.local.set(requestId, { fingerprint, res, untilMs: this.now() + this.ttlMs });
    if (!shared) return undefined;
    const value = JSON.stringify({ f: fingerprint, s: res.status, h: res.headers, b: res.body });
    // Kept in the store too: the replay may reach another replica.
    return this.store.remember(requestId, value, this.ttlMs).catch(() => undefined);
  }

  async recall(requestId: string, fingerprint: string): Promise<ProblemResponse | null> {
    const hit = this.local.get(requestId);
    if (hit && hit.untilMs > this.now()) return hit.fingerprint === fingerprint ? hit.res : null;
    const value = await this.store.recall(requestId).catch(() => null);
    const kept = value === null ? null : keptAnswer(value);
    return kept !== null && kept.f === fingerprint ? { status: kept.s, headers: kept.h, body: kept.b } : null;
  }

  /** Denials held in this replica's memory (tests, metrics). */
  get size(): number {
    return this.local.size;
  }
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A kept denial as read back from the store, or null when it is not one this gate wrote: a record
 * anyone with access to the store could have left (a status that is no denial, a header Node would
 * refuse to send) is treated as nothing kept, so the request is evaluated, never left unanswered.
 */
function keptAnswer(value: string): { f: string; s: number; h: Record<string, string>; b: string } | null {
  let kept: unknown;
  try {
    kept = JSON.parse(value);
  } catch {
    return null;
  }
  if (typeof kept !== 'object' || kept === null) return null;
  const { f, s, h, b } = kept as Record<string, unknown>;
  if (typeof f !== 'string' || typeof b !== 'string' || !Number.isInteger(s) || (s as number) < 400 || (s as number) > 599) return null;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return null;
  for (const [name, v] of Object.entries(h)) if (!TOKEN_RE.test(name) || typeof v !== 'string' || !isFieldValue(v)) return null;
  return { f, s: s as number, h: h as Record<string, string>, b };
}

/**
 * Gates whose denials are also kept in the store: their second evaluation would cost a rate-limit
 * point or a lease, or could answer differently. An auth or forwarded-request denial is answered
 * again for free and identically.
 */
const SHARED_GATES: ReadonlySet<string> = new Set(['ratelimit', 'conflict']);

/** What the protocol says of one /auth call. */
export type ReplayPlan =
  /** Not part of the protocol: evaluate, keep nothing. */
  | { kind: 'none' }
  /** A marked first call: evaluate, and keep a denial under this id. */
  | { kind: 'first'; id: string; fingerprint: string }
  /** A replay: serve the kept denial, or else evaluate like any request (and keep nothing). */
  | { kind: 'replay'; id: string; fingerprint: string };

/** The original request a call describes, hashed: a kept denial is only served for the same one. */
function fingerprintOf(h: HeaderSource): string {
  const method = h.get(R.forwardedMethod) ?? h.get(R.originalMethod) ?? '';
  const uri = h.get(R.forwardedUri) ?? h.get(R.originalUri) ?? '';
  return createHash('sha256').update(method).update('\0').update(uri).digest('base64url');
}

/** Reads the protocol's headers: `X-Auth-Replay` (first, or a replay) with a valid `X-Request-Id`. */
export function replayPlan(h: HeaderSource): ReplayPlan {
  const marker = h.get(R.replay);
  if (marker === undefined || marker === '') return { kind: 'none' };
  const id = h.get(R.requestId);
  if (id === undefined || !ReplayCache.ID_RE.test(id)) return { kind: 'none' };
  return marker === FIRST_CALL ? { kind: 'first', id, fingerprint: fingerprintOf(h) } : { kind: 'replay', id, fingerprint: fingerprintOf(h) };
}

/** The kept answer for a replay, or null (evaluate it). */
export function servedReplay(cache: ReplayCache, plan: ReplayPlan): Promise<ProblemResponse | null> | null {
  return plan.kind === 'replay' ? cache.recall(plan.id, plan.fingerprint) : null;
}

/**
 * Whether an allow of this call lets the request through to the API: not for a replay with nothing
 * kept for it, which is evaluated, and which nginx answers the client with itself, never proxying
 * the request. Such a call takes nothing it would hold for the write (pipeline.ts `reachesApi`),
 * and an allow of it is answered LOST_FIRST_CALL (/auth and explain alike).
 */
export function reachesApi(plan: ReplayPlan): boolean {
  return plan.kind !== 'replay';
}

/**
 * A replay evaluated to an allow: nginx answers the client with the replay and does not proxy it, so
 * a 2xx would be a success for a request the API never saw (the first call timed out, or its kept
 * denial was lost). Answered as this instead, for the client to retry.
 */
export const LOST_FIRST_CALL = deny('forward', 'store_unavailable', "The first call's answer was not kept (it timed out, or the store lost it), so this replay cannot give it; the request did not reach the API. Retry it.", {
  headers: { 'Retry-After': String(STORE_RETRY_AFTER_S) },
  members: { retryAfter: STORE_RETRY_AFTER_S },
});

/** Keeps a first call's denial for its replay; resolves once kept where a replica can read it. */
export function keepForReplay(cache: ReplayCache, plan: ReplayPlan, gate: string, res: ProblemResponse): Promise<void> | undefined {
  if (plan.kind !== 'first') return undefined;
  return cache.remember(plan.id, plan.fingerprint, res, SHARED_GATES.has(gate));
}

/**
 * What a marked first call answers for a denial: 401 as it is (auth_request copies its
 * WWW-Authenticate to the client), every other status as 403. auth_request turns any status but
 * 2xx, 401 and 403 into a 500 and writes an `[error] auth request unexpected status` line; a 403
 * goes to the same error_page without one, so nginx's error log keeps only real errors (the gate
 * down, a timeout). The replay then answers with the real status, headers and body.
 */
export function firstCallAnswer(plan: ReplayPlan, res: ProblemResponse): ProblemResponse {
  return plan.kind === 'first' && res.status !== 401 && res.status !== 403 ? { ...res, status: 403 } : res;
}
