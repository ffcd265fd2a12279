// One decision, recorded once: its metrics and its log lines (a denial, each shadowed denial, a sampled allow).
import { DENY, type Deny } from '../core/decision.js';
import type { Step } from '../core/step.js';
import { capString, type Logger } from './log.js';
import type { Metrics, RateLimitOutcome } from './metrics.js';

/** Everything known of one answered /auth request. */
export interface DecisionEvent {
  outcome: 'allow' | 'deny';
  /** The denial answered (outcome deny). */
  deny?: Deny;
  status: number;
  /** Denials shadow mode turned into allows. */
  shadowed: readonly Deny[];
  /** What each gate did, up to the one that denied. */
  steps: readonly Step[];
  method?: string;
  path?: string;
  clientIp?: string;
  clientId?: string | null;
  /** The proxy's `X-Request-Id`, as sent. */
  requestId?: string;
  /** The W3C `traceparent` header, as sent. */
  traceparent?: string;
  seconds: number;
}

export interface RecorderOptions {
  /** Fraction of allows that get a log line (`server.logAllows`; 0: none, 1: every one). */
  allowSample?: () => number;
  random?: () => number;
}

/** W3C Trace Context: `version-traceid-parentid-flags`; an all-zero trace id is invalid. */
const TRACEPARENT_RE = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;
const ZERO_TRACE = '0'.repeat(32);

/** The trace id of a `traceparent` header, or undefined when there is none or it is malformed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined) return undefined;
  const m = TRACEPARENT_RE.exec(traceparent.trim());
  return m && m[1] !== ZERO_TRACE ? m[1] : undefined;
}

/** A request id is a client's string: kept short (a log field and an index key, not a payload). */
const REQUEST_ID_MAX = 128;

/** How the request a rate-limit step applied to ended (see RateLimitOutcome). */
function rateLimitOutcome(step: Step, finalOutcome: 'allow' | 'deny'): RateLimitOutcome {
  if (step.decision.kind === 'deny') return step.decision.code === 'rate_limited' ? 'limited' : 'store_error';
  if (step.shadowed) return 'shadow_limited';
  if (step.seen.store === 'unavailable') return 'store_error';
  return finalOutcome === 'allow' ? 'allowed' : 'denied_later';
}

/** The step behind a denial: the one that denied, or the one whose denial shadow mode turned into an allow. */
function stepOf(steps: readonly Step[], d: Deny): Step | undefined {
  for (const s of steps) if (s.decision === d || s.shadowed === d) return s;
  return steps.find((s) => s.gate === d.gate);
}

/**
 * The one place a decision is counted and logged. A request is one decision, whatever the proxy
 * does with it (a replay of it served from a kept denial is not recorded here), so it gets one
 * count in conflict_gate_decisions_total and these log lines:
 * - each denial shadow mode turned into an allow (CONTRACT.md, "Shadow mode"): `"msg":"denied",
 *   "shadow":true` with that denial's fields, all of the request's shadowed denials in `shadowed`;
 * - a denial: `"msg":"denied"` with the gate, code, status, reason (the problem's detail), the rule
 *   or resource, the client id and IP, the request and trace ids; denials shadowed before it are
 *   listed in `shadowed` (and have their own lines);
 * - an allow without shadowed denials: `"msg":"allowed"`, for the sampled fraction `server.logAllows` only.
 * Strings are capped by the logger; the query string is never logged (it may carry credentials).
 */
export class DecisionRecorder {
  private readonly allowSample: () => number;
  private readonly random: () => number;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
    opts: RecorderOptions = {},
  ) {
    this.allowSample = opts.allowSample ?? (() => 0);
    this.random = opts.random ?? Math.random;
  }

  record(e: DecisionEvent): void {
    const { metrics } = this;
    for (const s of e.shadowed) metrics.shadowDenial(s.gate, s.code);
    for (const s of e.steps) {
      if (s.gate === 'ratelimit' && s.rule !== null) metrics.rateLimitDecision(s.rule, rateLimitOutcome(s, e.outcome));
    }
    metrics.observeLatency(e.outcome, e.seconds);
    if (e.outcome === 'allow') {
      metrics.decision('allow');
      if (e.shadowed.length > 0) this.shadowLines(e);
      else {
        const rate = this.allowSample();
        if (rate > 0 && (rate >= 1 || this.random() < rate)) this.line('allowed', e, undefined, false);
      }
      return;
    }
    const d = e.deny!;
    metrics.decision('deny', d.gate, d.code);
    if (d.gate === 'conflict') {
      const rule = stepOf(e.steps, d)?.rule;
      if (rule) metrics.conflictDenial(rule, d.code);
    }
    this.shadowLines(e);
    this.line('denied', e, d, false);
  }

  /** CONTRACT.md, "Shadow mode": each shadowed denial is logged as a denial with `"shadow":true`, in gate order. */
  private shadowLines(e: DecisionEvent): void {
    for (const s of e.shadowed) this.line('denied', e, s, true);
  }

  /** A replay answered from the first call's kept denial: the decision was recorded then. */
  replayServed(): void {
    this.metrics.replay('served');
  }

  /** A replay with nothing kept for it: it is decided (and recorded) like any request. */
  replayEvaluated(): void {
    this.metrics.replay('evaluated');
  }

  private line(msg: 'denied' | 'allowed', e: DecisionEvent, d: Deny | undefined, shadow: boolean): void {
    // A denial names the rule behind it; an allow the rate-limit rule and the resource it passed.
    const step = d ? stepOf(e.steps, d) : e.steps.find((s) => s.gate === 'ratelimit' && s.rule !== null);
    const conflictStep = d ? step : e.steps.find((s) => s.gate === 'conflict');
    const resource = conflictStep?.gate === 'conflict' && typeof conflictStep.seen.key === 'string' ? conflictStep.seen.key : undefined;
    const fields: Record<string, unknown> = {
      outcome: e.outcome,
      ...(d ? { gate: d.gate, code: d.code, status: shadow ? (d.status ?? DENY[d.code].status) : e.status, reason: d.detail } : { status: e.status }),
      ...(shadow ? { shadow: true } : {}),
      ...(e.shadowed.length > 0 ? { shadowed: e.shadowed.map((s) => `${s.gate}/${s.code}`).join(', ') } : {}),
      method: e.method,
      path: e.path,
      rule: step?.rule ?? undefined,
      resource,
      client: e.clientId ?? undefined,
      ip: e.clientIp,
      requestId: e.requestId === undefined ? undefined : capString(e.requestId, REQUEST_ID_MAX),
      traceId: traceIdOf(e.traceparent),
      ms: Math.round(e.seconds * 1e5) / 100,
    };
    this.log.info(fields, msg);
  }
}
