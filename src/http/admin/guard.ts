// The admin token: a constant-time Bearer check in front of every admin route that reads or changes state.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { problemResponse, type Problem } from '../../core/problem.js';

export function sendProblem(c: Context, p: Problem): Response {
  const res = problemResponse(p);
  return c.body(res.body, res.status as 400, res.headers);
}

/** Constant-time token check: both sides are hashed first so lengths never differ. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** 403 to everyone without a configured token; 401 for a missing or wrong one. */
export function adminGuard(adminToken: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!adminToken) {
      return sendProblem(c, { status: 403, code: 'admin_disabled', title: 'Admin API disabled', detail: 'Set GATE_ADMIN_TOKEN to enable the admin API.' });
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header('authorization') ?? '');
    if (!m || !tokenMatches(m[1]!, adminToken)) {
      return sendProblem(c, {
        status: 401,
        code: 'admin_unauthorized',
        title: 'Unauthorized',
        detail: 'The admin API needs Authorization: Bearer <GATE_ADMIN_TOKEN>.',
        headers: { 'WWW-Authenticate': 'Bearer realm="conflict-gate-admin"' },
      });
    }
    await next();
  };
}

/** The JSON body of a request, or undefined when it is absent or not JSON. */
export async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    return undefined;
  }
}

export const badRequest = (c: Context, detail: string) => sendProblem(c, { status: 400, code: 'bad_request', title: 'Bad request', detail });
