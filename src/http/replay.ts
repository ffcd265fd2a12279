// The nginx replay protocol: a denial kept for the proxy's second call, which gets the same answer at no cost.
import { R } from '../core/http.js';
import type { HeaderSource } from '../core/forwarded.js';
import type { ProblemResponse } from '../core/problem.js';
import type { VersionStore } from '../store/port.js';

/**
 * nginx's auth_request passes only 2xx/401/403, so the shipped nginx config replays a denial to
 * /auth a second time to hand its status, headers and body to the client (FORWARDAUTH.md §6).
 * Both calls carry the same `X-Request-Id`; the replay adds `X-Auth-Replay`. The first answer is
 * kept here (store + a local copy, for `replayTtl`) and the replay is served from it, so it takes
 * no second rate-limit point and no second lease.
 *
 * The marker grants nothing: a replay with no kept denial for that id and request is evaluated
 * like any other request, so a client that sends `X-Auth-Replay` itself still pays for it.
 */
export class ReplayCache {
  private readonly local = new Map<string, { value: string; untilMs: number }>();

  constructor(
    private readonly store: VersionStore,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxLocal = 10_000,
  ) {}

  static readonly ID_RE = /^[A-Za-z0-9._:-]{8,128}$/;

  async remember(requestId: string, fingerprint: string, res: ProblemResponse): Promise<void> {
    const value = JSON.stringify({ f: fingerprint, s: res.status, h: res.headers, b: res.body });
    while (this.local.size >= this.maxLocal) {
      const oldest = this.local.keys().next().value;
      if (oldest === undefined) break;
      this.local.delete(oldest);
    }
    this.local.set(requestId, { value, untilMs: this.now() + this.ttlMs });
    // Kept in the store too: the replay may reach another replica.
    await this.store.remember(requestId, value, this.ttlMs).catch(() => undefined);
  }

  async recall(requestId: string, fingerprint: string): Promise<ProblemResponse | null> {
    let value: string | null = null;
    const hit = this.local.get(requestId);
    if (hit && hit.untilMs > this.now()) value = hit.value;
    else value = await this.store.recall(requestId).catch(() => null);
    if (value === null) return null;
    try {
      const kept = JSON.parse(value) as { f: string; s: number; h: Record<string, string>; b: string };
      return kept.f === fingerprint ? { status: kept.s, headers: kept.h, body: kept.b } : null;
    } catch {
      return null;
    }
  }
}

/**
 * Denials kept for a replay: only those whose second evaluation would cost something (a
 * rate-limit point, a lease) or could answer differently. An auth or forwarded-request denial is
 * answered again for free and identically, and keeping it would let any unauthenticated caller
 * write to the store at will.
 */
const KEPT_GATES: ReadonlySet<string> = new Set(['ratelimit', 'conflict']);

/** What the protocol says of one /auth call. */
export type ReplayPlan =
  /** Not part of the protocol: evaluate, keep nothing. */
  | { kind: 'none' }
  /** A first call: evaluate, and keep a costly denial under this id. */
  | { kind: 'first'; id: string; fingerprint: string }
  /** A replay: serve the kept denial, or else evaluate like any request (and keep nothing). */
  | { kind: 'replay'; id: string; fingerprint: string };

/** Reads the protocol's headers: a valid `X-Request-Id`, with or without `X-Auth-Replay`. */
export function replayPlan(h: HeaderSource): ReplayPlan {
  const id = h.get(R.requestId);
  if (id === undefined || !ReplayCache.ID_RE.test(id)) return { kind: 'none' };
  const fingerprint = `${h.get(R.forwardedMethod) ?? h.get(R.originalMethod) ?? ''} ${h.get(R.forwardedUri) ?? h.get(R.originalUri) ?? ''}`;
  return h.get(R.replay) === undefined ? { kind: 'first', id, fingerprint } : { kind: 'replay', id, fingerprint };
}

/** The kept answer for a replay, or null (evaluate it). */
export function servedReplay(cache: ReplayCache, plan: ReplayPlan): Promise<ProblemResponse | null> | null {
  return plan.kind === 'replay' ? cache.recall(plan.id, plan.fingerprint) : null;
}

/** Keeps a first call's denial when a replay of it would cost something; resolves once kept. */
export function keepForReplay(cache: ReplayCache, plan: ReplayPlan, gate: string, res: ProblemResponse): Promise<void> | undefined {
  if (plan.kind !== 'first' || !KEPT_GATES.has(gate)) return undefined;
  return cache.remember(plan.id, plan.fingerprint, res);
}
