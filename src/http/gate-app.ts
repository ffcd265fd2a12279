// The main listener: /auth (one handler: facts → runPipeline → response), /healthz, /readyz.
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { deny, type Deny } from '../core/decision.js';
import { readForwarded, type ForwardedOptions, type HeaderSource } from '../core/forwarded.js';
import { problemResponse, renderProblem, type ProblemResponse } from '../core/problem.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { runPipeline, type Gates } from '../pipeline.js';
import { mountHealth, type Readiness } from './health.js';
import { keepForReplay, replayPlan, servedReplay, type ReplayCache, type ReplayPlan } from './replay.js';

export interface GateAppDeps {
  gates: Gates;
  forwarded: ForwardedOptions;
  replay: ReplayCache;
  metrics: Metrics;
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
  const { gates, forwarded, replay, metrics, log } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  const denied = (d: Deny, ctx: { method?: string; path?: string; ip?: string }, plan: ReplayPlan, started: number): Promise<Response> | Response => {
    metrics.decision(d.gate, d.code);
    metrics.observeLatency(false, (performance.now() - started) / 1000);
    const res = renderProblem(d);
    log.info({ gate: d.gate, code: d.code, status: res.status, method: ctx.method, path: ctx.path, client: ctx.ip }, 'denied');
    const kept = keepForReplay(replay, plan, d.gate, res);
    return kept ? kept.then(() => send(res)) : send(res);
  };

  app.all('/auth', async (c) => {
    const started = performance.now();
    const h = headerSource(c);
    const peer = forwarded.classifyIp(c.env?.incoming?.socket?.remoteAddress ?? '');
    if (peer === null || !peer.trusted) {
      return denied(deny('forward', 'untrusted_source', 'Only a trusted proxy may call /auth.'), { ip: peer?.ip }, { kind: 'none' }, started);
    }

    const plan = replayPlan(h);
    const served = servedReplay(replay, plan);
    if (served !== null) {
      const kept = await served;
      if (kept !== null) {
        metrics.decision('replay', 'replayed');
        return send(kept);
      }
    }

    const facts = readForwarded(h, peer.ip, forwarded);
    if ('kind' in facts) return denied(facts, { ip: peer.ip }, plan, started);

    const decision = await runPipeline(facts, gates);
    if (decision.kind === 'deny') return denied(decision, { method: facts.method, path: facts.path, ip: facts.clientIp }, plan, started);
    metrics.decision('pipeline', 'allow');
    metrics.observeLatency(true, (performance.now() - started) / 1000);
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
