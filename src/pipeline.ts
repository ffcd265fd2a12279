// runPipeline: auth → rate limit → conflict; the first enforced denial wins, allows add up their headers.
import type { Decision, Deny } from './core/decision.js';
import type { RequestFacts } from './core/forwarded.js';
import { H } from './core/http.js';
import type { Caller, RunMode, Step } from './core/step.js';
import type { AuthGate } from './gates/auth/gate.js';
import type { ConflictGate } from './gates/conflict/gate.js';
import type { BodyStream } from './gates/idempotency/body.js';
import type { RateLimitGate } from './gates/ratelimit/limiter.js';

export interface Gates {
  auth: AuthGate;
  rateLimit: RateLimitGate;
  conflict: ConflictGate;
}

export interface PipelineResult {
  /** The answer: an allow (headers for the upstream, every documented one present) or the first enforced denial. */
  decision: Decision;
  /** What each gate did, in order, up to the one that denied. */
  steps: Step[];
  /** Denials that shadow mode turned into allows, in gate order. */
  shadowed: Deny[];
  caller: Caller;
}

/** `<gate>/<code>` for X-Gate-Shadow and logs (`ratelimit/rate_limited`). */
export function shadowLabel(d: Deny): string {
  return `${d.gate}/${d.code}`;
}

export interface PipelineOptions {
  /** The /auth call's body stream: read only when an Idempotency-Key rule needs its hash (Traefik forwardBody). */
  body?: BodyStream;
  /**
   * false: the request cannot reach the API whatever the answer (nginx's replay of a first call
   * whose answer was not kept: it answers the client itself). The conflict gate then reads as
   * `explain` does and takes nothing, so no lease or Idempotency-Key record is left in flight for a
   * write that never comes; the rate limit is still spent (the replay marker grants nothing).
   */
  reachesApi?: boolean;
}

/**
 * The order matters: a request that fails auth never spends the client's rate-limit budget, and a
 * request over its limit never touches the version cache or takes a lease. A shadowed denial does
 * not stop the pipeline: the next gate runs as it would for an allow.
 *
 * `explain` runs the same gates without side effects (gates peek instead of consuming).
 *
 * `conflict.refundRateLimit`: a write the conflict gate refuses (412, 409, 428) gets its
 * rate-limit point back, also when that denial is shadowed (the store sees what enforce does).
 */
export async function runPipeline(facts: RequestFacts, gates: Gates, mode: RunMode = 'live', opts: PipelineOptions = {}): Promise<PipelineResult> {
  const steps: Step[] = [];
  const shadowed: Deny[] = [];
  const headers: Record<string, string> = {};
  const fold = (step: Step): Deny | null => {
    steps.push(step);
    if (step.shadowed) shadowed.push(step.shadowed);
    if (step.decision.kind === 'deny') return step.decision;
    Object.assign(headers, step.decision.headers);
    return null;
  };

  // A gate that can answer synchronously (a cached token, a read) is not awaited: no microtask.
  const pendingAuth = gates.auth.check(facts);
  const auth = pendingAuth instanceof Promise ? await pendingAuth : pendingAuth;
  const caller = auth.caller;
  let denied = fold(auth.step);
  if (denied) return { decision: denied, steps, shadowed, caller };

  // A conflict check that only reads starts now, so that its read and the rate-limit point go to
  // the store in the same batch: one round trip per decision. A rate-limit denial discards it.
  const ctx = { caller, body: opts.body, traffic: mode === 'live' };
  const conflictMode: RunMode = opts.reachesApi === false ? 'explain' : mode;
  const early = gates.conflict.onlyReads(facts, conflictMode) ? gates.conflict.check(facts, conflictMode, ctx) : undefined;
  const limited = await gates.rateLimit.check(facts, caller, mode);
  denied = fold(limited.step);
  if (denied) {
    if (early instanceof Promise) early.catch(() => undefined);
    return { decision: denied, steps, shadowed, caller };
  }

  const pendingConflict = early ?? gates.conflict.check(facts, conflictMode, ctx);
  const conflict = pendingConflict instanceof Promise ? await pendingConflict : pendingConflict;
  if (conflict.refund && limited.taken && gates.conflict.refundsRateLimit) await gates.rateLimit.refund(limited.taken);
  for (const step of conflict.steps) {
    denied = fold(step);
    if (denied) return { decision: denied, steps, shadowed, caller };
  }

  headers[H.resourceKey] ??= '';
  headers[H.resourceVersion] ??= '';
  headers[H.shadow] = shadowed.length === 0 ? '' : shadowed.map(shadowLabel).join(', ');
  headers[H.idempotencyKey] ??= '';
  return { decision: { kind: 'allow', headers }, steps, shadowed, caller };
}
