// Admin POST /explain: the same trace as `conflict-gate explain`, as JSON, with no side effects.
import type { Hono } from 'hono';
import { isIP } from 'node:net';
import type { ForwardedOptions } from '../../core/forwarded.js';
import { explain, type ExplainRequest } from '../../explain.js';
import type { Gates } from '../../pipeline.js';
import { badRequest, jsonBody } from './guard.js';

/** Validates `{"method","uri","headers"?,"ip"?}`; a message when it is not that. */
function parse(body: unknown): ExplainRequest | string {
  if (typeof body !== 'object' || body === null) return 'expected a JSON object {"method":"PUT","uri":"/api/orders/42","headers":{...},"ip":"10.0.0.7"}';
  const b = body as Record<string, unknown>;
  // Any text: one the gate would refuse as a forwarded method or URI is explained as that refusal
  // (400 bad_forward_request), as `conflict-gate explain` does, not refused as a bad body.
  if (typeof b.method !== 'string' || b.method === '' || b.method.length > 64) return 'method: expected an HTTP method';
  if (typeof b.uri !== 'string' || b.uri === '' || b.uri.length > 8192) return 'uri: expected a request-target like "/api/orders/42"';
  if (b.ip !== undefined && (typeof b.ip !== 'string' || isIP(b.ip) === 0)) return 'ip: expected an IP address';
  const headers: Record<string, string> = {};
  if (b.headers !== undefined) {
    if (typeof b.headers !== 'object' || b.headers === null || Array.isArray(b.headers)) return 'headers: expected an object of header names to values';
    for (const [k, v] of Object.entries(b.headers)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) return `headers.${k}: expected a header name with a string value`;
      headers[k] = v;
    }
  }
  return { method: b.method, uri: b.uri, headers, ...(typeof b.ip === 'string' ? { ip: b.ip } : {}) };
}

/** `gates()` is read per request, so a reload is seen at once. */
export function mountExplain(app: Hono, current: () => { gates: Gates; forwarded: ForwardedOptions }): void {
  app.post('/explain', async (c) => {
    const req = parse(await jsonBody(c));
    if (typeof req === 'string') return badRequest(c, req);
    const { gates, forwarded } = current();
    return c.json(await explain(req, gates, forwarded), 200);
  });
}
