// The main listener: /auth (the framework-free endpoint), /healthz, /readyz, 404s.
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { HeaderSource } from '../core/forwarded.js';
import { problemResponse } from '../core/problem.js';
import type { Logger } from '../obs/log.js';
import type { DecisionRecorder } from '../obs/recorder.js';
import { createAuthEndpoint, type Answer, type RequestRuntime } from './auth-endpoint.js';
import { mountHealth, type Readiness } from './health.js';

export type { RequestRuntime };

export interface GateAppDeps {
  current: () => RequestRuntime;
  recorder: DecisionRecorder;
  log: Logger;
  /** True when the store answers and auth keys are loaded. */
  ready: Readiness;
  /** Extra routes (dev mode serves its JWKS here). */
  extra?: (app: Hono<{ Bindings: HttpBindings }>) => void;
}

type Incoming = { headers: IncomingHttpHeaders; headersDistinct?: Record<string, string[] | undefined>; rawHeaders?: string[] };

/**
 * Fields of which Node keeps the first copy and drops the others (lib/_http_incoming.js,
 * matchKnownFields), among those the gate checks for a second copy: only the raw lines show it.
 */
const FIRST_KEPT: ReadonlySet<string> = new Set(['authorization']);

/** How many of the raw header lines are named `name` (lower case), in any case. */
function countRaw(raw: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const field = raw[i]!;
    if (field.length === name.length && field.toLowerCase() === name) n++;
  }
  return n;
}

/** Headers straight from Node's parsed headers (no Headers object, no closures per request). */
class NodeHeaders implements HeaderSource {
  constructor(private readonly incoming: Incoming) {}

  get(name: string): string | undefined {
    const v = this.incoming.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /** Node joins repeated fields with ", ": only then is the distinct view worth building. */
  repeated(name: string): boolean {
    const v = this.incoming.headers[name];
    if (typeof v !== 'string') return false;
    if (FIRST_KEPT.has(name)) return countRaw(this.incoming.rawHeaders ?? [], name) > 1;
    return v.includes(',') && (this.incoming.headersDistinct?.[name]?.length ?? 1) > 1;
  }
}

export function nodeHeaders(incoming: Incoming): HeaderSource {
  return new NodeHeaders(incoming);
}

function sendAnswer(a: Answer): Response {
  // Plain-object headers and a string body keep @hono/node-server on its cached-response fast path.
  return new Response(a.body, { status: a.status, headers: a.headers });
}

const INTERNAL_ERROR = problemResponse({ status: 500, code: 'internal_error', title: 'Internal error', detail: 'The gate failed to decide; see its logs.' });

/**
 * The main listener's request handler. /auth is answered by the endpoint straight on Node's
 * request and response (one writeHead, one end: no Request or Response object, no router), the
 * path every proxy call takes; everything else (health, 404s, dev mode's JWKS) goes to the Hono app.
 */
export function createGateListener(deps: GateAppDeps): { app: Hono<{ Bindings: HttpBindings }>; listener: (req: IncomingMessage, res: ServerResponse) => void } {
  const endpoint = createAuthEndpoint(deps);
  const app = new Hono<{ Bindings: HttpBindings }>();
  // The same endpoint behind Hono, for app.request() in tests and embedding.
  app.all('/auth', async (c: Context<{ Bindings: HttpBindings }>) => {
    const incoming = c.env?.incoming;
    const headers: HeaderSource = incoming?.headers ? nodeHeaders(incoming) : { get: (name) => c.req.header(name), repeated: () => false };
    return sendAnswer(await endpoint({ headers, peer: incoming?.socket?.remoteAddress ?? '', body: incoming }));
  });
  mountHealth(app, deps.ready);
  deps.extra?.(app);
  app.notFound(() => sendAnswer(problemResponse({ status: 404, code: 'not_found', title: 'Not found', detail: 'The gate answers /auth, /healthz and /readyz.' })));
  app.onError((err) => {
    deps.log.error({ err }, 'unexpected error answering a request');
    return sendAnswer(INTERNAL_ERROR);
  });
  const rest = getRequestListener(app.fetch);

  const write = (res: ServerResponse, a: Answer) => {
    if (res.destroyed) return;
    // Content-Length with the head: one write, no chunked encoding (writeHead fixes the framing).
    a.headers['Content-Length'] = a.body === '' ? '0' : String(Buffer.byteLength(a.body));
    res.writeHead(a.status, a.headers);
    res.end(a.body);
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (url === '/auth' || url.startsWith('/auth?')) {
      endpoint({ headers: nodeHeaders(req), peer: req.socket.remoteAddress ?? '', body: req }).then(
        (a) => write(res, a),
        (err: unknown) => {
          deps.log.error({ err }, 'unexpected error answering a request');
          write(res, INTERNAL_ERROR);
        },
      );
      return;
    }
    void rest(req, res);
  };
  return { app, listener };
}

/** The Hono app alone (tests drive /auth with app.request()). */
export function createGateApp(deps: GateAppDeps): Hono<{ Bindings: HttpBindings }> {
  return createGateListener(deps).app;
}
