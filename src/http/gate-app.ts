// The main listener: /auth (one handler: facts → runPipeline → response), /healthz, /readyz.
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { deny, type Deny } from '../core/decision.js';
import { readForwarded, type HeaderGetter, type IpClassifier } from '../core/forwarded.js';
import { problemResponse, renderProblem, type ProblemResponse } from '../core/problem.js';
import type { Logger } from '../obs/log.js';
import { mountHealth, type Readiness } from './health.js';
import type { Metrics } from '../obs/metrics.js';
import { runPipeline, type Gates } from '../pipeline.js';
import { REPLAY_HEADER, REQUEST_ID_HEADER } from './headers.js';
import { ReplayCache } from './replay.js';

export interface GateAppDeps {
  gates: Gates;
  classifyIp: IpClassifier;
  replay: ReplayCache;
  metrics: Metrics;
  log: Logger;
  /** True when the store answers and auth keys are loaded. */
  ready: Readiness;
  /** Extra routes (dev mode serves its JWKS here). */
  extra?: (app: Hono<{ Bindings: HttpBindings }>) => void;
}

type Ctx = Context<{ Bindings: HttpBindings }>;

/**
 * Denials kept for a replay: only those whose second evaluation would cost something (a
 * rate-limit point, a lease) or could answer differently. An auth or forwarded-request denial is
 * answered again for free and identically, and keeping it would let any unauthenticated caller
 * write to the store at will.
 */
const KEPT_GATES: ReadonlySet<string> = new Set(['ratelimit', 'conflict']);

/** Header lookup straight from Node's parsed headers (no Headers object per request). */
function headerGetter(c: Ctx): HeaderGetter {
  const h = c.env?.incoming?.headers;
  if (h) {
    return (name) => {
      const v = h[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
  }
  return (name) => c.req.header(name);
}

// Plain-object headers and a string body keep @hono/node-server on its cached-response fast
// path: one writeHead with Content-Length, no Headers object, no chunked encoding.
function send(res: ProblemResponse): Response {
  return new Response(res.body, { status: res.status, headers: res.headers });
}

export function createGateApp(deps: GateAppDeps): Hono<{ Bindings: HttpBindings }> {
  const { gates, classifyIp, replay, metrics, log } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  const denied = (d: Deny, ctx: { method?: string; path?: string; ip?: string }, keepAs: { id: string; fingerprint: string } | undefined, started: number): Promise<Response> | Response => {
    metrics.decision(d.gate, d.code);
    metrics.observeLatency(false, (performance.now() - started) / 1000);
    const res = renderProblem(d);
    log.info({ gate: d.gate, code: d.code, status: res.status, method: ctx.method, path: ctx.path, client: ctx.ip }, 'denied');
    if (keepAs !== undefined && KEPT_GATES.has(d.gate)) {
      return replay.remember(keepAs.id, keepAs.fingerprint, res).then(() => send(res));
    }
    return send(res);
  };

  app.all('/auth', async (c) => {
    const started = performance.now();
    const get = headerGetter(c);
    const peerRaw = c.env?.incoming?.socket?.remoteAddress ?? '';
    const peer = classifyIp(peerRaw);
    if (peer === null || !peer.trusted) {
      return denied(deny('forward', 'untrusted_source', 'Only a trusted proxy may call /auth.'), { ip: peer?.ip }, undefined, started);
    }

    // nginx replay protocol (http/replay.ts): a first call with an id may have its denial kept; a
    // replay is served from what was kept, or else evaluated like any request and not kept again.
    let keepAs: { id: string; fingerprint: string } | undefined;
    const rawId = get(REQUEST_ID_HEADER);
    if (rawId !== undefined && ReplayCache.ID_RE.test(rawId)) {
      const fingerprint = `${get('x-forwarded-method') ?? get('x-original-method') ?? ''} ${get('x-forwarded-uri') ?? get('x-original-uri') ?? ''}`;
      if (get(REPLAY_HEADER) === undefined) {
        keepAs = { id: rawId, fingerprint };
      } else {
        const kept = await replay.recall(rawId, fingerprint);
        if (kept !== null) {
          metrics.decision('replay', 'replayed');
          return send(kept);
        }
      }
    }

    const facts = readForwarded(get, peer.ip, classifyIp);
    if ('kind' in facts) return denied(facts, { ip: peer.ip }, keepAs, started);

    const decision = await runPipeline(facts, gates);
    if (decision.kind === 'deny') return denied(decision, { method: facts.method, path: facts.path, ip: facts.clientIp }, keepAs, started);
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
