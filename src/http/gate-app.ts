// The main listener: /auth (one handler: facts → runPipeline → response), /healthz, /readyz.
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { deny, type Deny } from '../core/decision.js';
import { readForwarded, type ForwardedOptions, type HeaderSource } from '../core/forwarded.js';
import { R } from '../core/http.js';
import { problemResponse, renderProblem, type ProblemResponse } from '../core/problem.js';
import type { Logger } from '../obs/log.js';
import type { DecisionEvent, DecisionRecorder } from '../obs/recorder.js';
import { runPipeline, type Gates } from '../pipeline.js';
import { mountHealth, type Readiness } from './health.js';
import { firstCallAnswer, keepForReplay, replayPlan, servedReplay, type ReplayCache, type ReplayPlan } from './replay.js';

/** What a request runs on: the generation current when it started (a reload swaps it for later ones). */
export interface RequestRuntime {
  gates: Gates;
  forwarded: ForwardedOptions;
  replay: ReplayCache;
}

export interface GateAppDeps {
  current: () => RequestRuntime;
  recorder: DecisionRecorder;
  log: Logger;
  /** True when the store answers and auth keys are loaded. */
  ready: Readiness;
  /** Extra routes (dev mode serves its JWKS here). */
  extra?: (app: Hono<{ Bindings: HttpBindings }>) => void;
}

type Ctx = Context<{ Bindings: HttpBindings }>;

/** Headers straight from Node's parsed headers (no Headers object per request). */
function headerSource(c: Ctx): HeaderSource {
  const incoming = c.env?.incoming;
  const h = incoming?.headers;
  if (h) {
    return {
      get: (name) => {
        const v = h[name];
        return Array.isArray(v) ? v.join(', ') : v;
      },
      // Node joins repeated fields with ", ": only then is the distinct view worth building.
      repeated: (name) => {
        const v = h[name];
        return typeof v === 'string' && v.includes(',') && (incoming.headersDistinct?.[name]?.length ?? 1) > 1;
      },
    };
  }
  return { get: (name) => c.req.header(name), repeated: () => false };
}

// Plain-object headers and a string body keep @hono/node-server on its cached-response fast
// path: one writeHead with Content-Length, no Headers object, no chunked encoding.
function send(res: ProblemResponse): Response {
  return new Response(res.body, { status: res.status, headers: res.headers });
}

export function createGateApp(deps: GateAppDeps): Hono<{ Bindings: HttpBindings }> {
  const { recorder, log } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  const denied = (replay: ReplayCache, d: Deny, ctx: Omit<DecisionEvent, 'outcome' | 'status' | 'seconds'>, plan: ReplayPlan, started: number): Promise<Response> | Response => {
    const res = renderProblem(d);
    recorder.record({ ...ctx, outcome: 'deny', deny: d, status: res.status, seconds: (performance.now() - started) / 1000 });
    const kept = keepForReplay(replay, plan, d.gate, res);
    const answer = firstCallAnswer(plan, res);
    return kept ? kept.then(() => send(answer)) : send(answer);
  };

  app.all('/auth', async (c) => {
    const started = performance.now();
    const { gates, forwarded, replay } = deps.current();
    const h = headerSource(c);
    // For the log line: the proxy's request id and the trace the request belongs to.
    const ids = { requestId: h.get(R.requestId), traceparent: h.get(R.traceparent) };
    const peer = forwarded.classifyIp(c.env?.incoming?.socket?.remoteAddress ?? '');
    if (peer === null || !peer.trusted) {
      return denied(replay, deny('forward', 'untrusted_source', 'Only a trusted proxy may call /auth.'), { ...ids, clientIp: peer?.ip, shadowed: [], steps: [] }, { kind: 'none' }, started);
    }

    const plan = replayPlan(h);
    const served = servedReplay(replay, plan);
    if (served !== null) {
      const kept = await served;
      // A replay served from the first call's answer is not a second decision: not counted, not logged.
      if (kept !== null) {
        recorder.replayServed();
        return send(kept);
      }
      recorder.replayEvaluated();
    }

    const facts = readForwarded(h, peer.ip, forwarded);
    if ('kind' in facts) return denied(replay, facts, { ...ids, clientIp: peer.ip, shadowed: [], steps: [] }, plan, started);

    const { decision, steps, shadowed, caller } = await runPipeline(facts, gates, 'live', { body: c.env?.incoming });
    const ctx = { ...ids, method: facts.method, path: facts.path, clientIp: facts.clientIp, clientId: caller.clientId, steps, shadowed };
    if (decision.kind === 'deny') return denied(replay, decision, ctx, plan, started);
    recorder.record({ ...ctx, outcome: 'allow', status: 200, seconds: (performance.now() - started) / 1000 });
    return new Response('', { status: 200, headers: decision.headers });
  });

  mountHealth(app, deps.ready);
  deps.extra?.(app);
  app.notFound(() => send(problemResponse({ status: 404, code: 'not_found', title: 'Not found', detail: 'The gate answers /auth, /healthz and /readyz.' })));
  app.onError((err) => {
    log.error({ err }, 'unexpected error answering a request');
    return send(problemResponse({ status: 500, code: 'internal_error', title: 'Internal error', detail: 'The gate failed to decide; see its logs.' }));
  });
  return app;
}
