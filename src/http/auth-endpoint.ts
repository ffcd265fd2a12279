// /auth, framework-free: headers in, an answer (status, headers, body) out. The listener and the Hono route both call it.
import { deny, type Deny } from '../core/decision.js';
import { readForwarded, type ForwardedOptions, type HeaderSource, type RequestFacts } from '../core/forwarded.js';
import { R } from '../core/http.js';
import { renderProblem, type ProblemResponse } from '../core/problem.js';
import type { BodyStream } from '../gates/idempotency/body.js';
import type { DecisionEvent, DecisionRecorder } from '../obs/recorder.js';
import { runPipeline, type Gates, type PipelineResult } from '../pipeline.js';
import { firstCallAnswer, keepForReplay, LOST_FIRST_CALL, reachesApi, replayPlan, servedReplay, type ReplayCache, type ReplayPlan } from './replay.js';

/** What a request runs on: the generation current when it started (a reload swaps it for later ones). */
export interface RequestRuntime {
  gates: Gates;
  forwarded: ForwardedOptions;
  replay: ReplayCache;
}

/** One /auth call as the transport received it. */
export interface AuthCall {
  headers: HeaderSource;
  /** The TCP peer's address (checked against server.trustedProxies). */
  peer: string;
  /** The request body stream, read only when an Idempotency-Key rule needs its hash. */
  body?: BodyStream;
}

export type Answer = ProblemResponse;

export interface AuthEndpointDeps {
  current: () => RequestRuntime;
  recorder: DecisionRecorder;
}

const EMPTY: readonly never[] = Object.freeze([]) as readonly never[];

/** Builds the /auth handler: facts → runPipeline → answer, with one record() per decision. */
export function createAuthEndpoint(deps: AuthEndpointDeps): (call: AuthCall) => Promise<Answer> {
  const { recorder } = deps;

  /** Records the denial (`e` is the request's event, completed here) and answers it. */
  const denied = (replay: ReplayCache, d: Deny, e: DecisionEvent, plan: ReplayPlan, started: number): Answer | Promise<Answer> => {
    const res = renderProblem(d);
    e.outcome = 'deny';
    e.deny = d;
    e.status = res.status;
    e.seconds = (performance.now() - started) / 1000;
    recorder.record(e);
    const kept = keepForReplay(replay, plan, d.gate, res);
    const answer = firstCallAnswer(plan, res);
    return kept ? kept.then(() => answer) : answer;
  };

  /** Records the pipeline's answer to this request and answers it. */
  const decided = (replay: ReplayCache, r: PipelineResult, facts: RequestFacts, e: DecisionEvent, plan: ReplayPlan, started: number): Answer | Promise<Answer> => {
    const { decision, steps, shadowed, caller } = r;
    e.method = facts.method;
    e.path = facts.path;
    e.clientIp = facts.clientIp;
    e.clientId = caller.clientId;
    e.steps = steps;
    e.shadowed = shadowed;
    if (decision.kind === 'deny') return denied(replay, decision, e, plan, started);
    if (!reachesApi(plan)) return denied(replay, LOST_FIRST_CALL, e, plan, started);
    e.seconds = (performance.now() - started) / 1000;
    recorder.record(e);
    return { status: 200, headers: decision.headers, body: '' };
  };

  /** The decision for a request that is not served from a kept answer. */
  const decide = (call: AuthCall, runtime: RequestRuntime, peerIp: string, e: DecisionEvent, plan: ReplayPlan, started: number): Promise<Answer> => {
    const { gates, forwarded, replay } = runtime;
    const facts = readForwarded(call.headers, peerIp, forwarded);
    if ('kind' in facts) return Promise.resolve(denied(replay, facts, e, plan, started));
    // Read with one `.then`, not awaited in an async function: no suspended frame per decision.
    return runPipeline(facts, gates, 'live', { body: call.body, reachesApi: reachesApi(plan) }).then((r) => decided(replay, r, facts, e, plan, started));
  };

  const answer = (call: AuthCall): Promise<Answer> => {
    const started = performance.now();
    const runtime = deps.current();
    const { forwarded, replay } = runtime;
    const h = call.headers;
    // For the log line: the proxy's request id and the trace the request belongs to.
    const requestId = h.get(R.requestId);
    const traceparent = h.get(R.traceparent);
    const peer = forwarded.classifyIp(call.peer);
    // One event object per request, completed as the decision is made (record() reads it at once).
    const event: DecisionEvent = { outcome: 'allow', status: 200, requestId, traceparent, clientIp: peer?.ip, shadowed: EMPTY, steps: EMPTY, seconds: 0 };
    if (peer === null || !peer.trusted) {
      return Promise.resolve(denied(replay, deny('forward', 'untrusted_source', 'Only a trusted proxy may call /auth.'), event, { kind: 'none' }, started));
    }

    const plan = replayPlan(h);
    const served = servedReplay(replay, plan);
    if (served === null) return decide(call, runtime, peer.ip, event, plan, started);
    return served.then((kept) => {
      // A replay served from the first call's answer is not a second decision: not counted, not logged.
      if (kept !== null) {
        recorder.replayServed();
        return kept;
      }
      recorder.replayEvaluated();
      return decide(call, runtime, peer.ip, event, plan, started);
    });
  };

  // As an async function would: whatever throws is a rejection (the listener answers it 500), never an exception.
  return (call) => {
    try {
      return answer(call);
    } catch (err) {
      return Promise.reject(err);
    }
  };
}
