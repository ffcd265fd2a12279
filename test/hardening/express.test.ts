// Differential check through the shipped nginx config in front of a real Express 5 upstream: every
// request the attack sent is refused by the gate or runs an Express handler whose rule it satisfies.
import express from 'express';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNginx, send, NGINX_BIN, type RunningProxy } from '../e2e/proxies.js';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';
import { signHs } from '../helpers/tokens.js';

const SECRET = 'hardening-express-secret-0123456789abcd';
const ADMIN = 'hardening-admin-token-0123456789';
const CONFIG = `
server: { trustedProxies: ["127.0.0.0/8", "::1/128"] }
store: { url: memory }
auth:
  secret: "${SECRET}"
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [GET], path: "/api/admin/*", scopes: [admin] }
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match, params: { id: integer } }
`;

/** What Express ran for a request (its default routing: case-insensitive, HEAD runs GET). */
interface Ran {
  handler: string;
  id?: string;
  ifMatch?: string;
  scopes?: string;
}

const ran: Ran[] = [];
let upstream: Server;
let gate: RunningGate;
let nginx: RunningProxy | undefined;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  const app = express();
  const record = (handler: string) => (req: express.Request, res: express.Response) => {
    ran.push({ handler, id: req.params.id as string | undefined, ifMatch: req.get('if-match'), scopes: req.get('x-auth-scopes') });
    res.status(200).send(handler);
  };
  app.get('/public/*rest', record('public'));
  app.get('/api/admin/*rest', record('admin'));
  app.put('/api/orders/:id', record('order-put'));
  app.post('/api/orders/:id', record('order-post'));
  app.use((_req, res) => res.status(404).send('no route'));
  const port = await freePort();
  upstream = await new Promise<Server>((r) => {
    const s = app.listen(port, '127.0.0.1', () => r(s));
  });
  gate = await startGate({ yaml: CONFIG, env: { GATE_ADMIN_TOKEN: ADMIN } });
  await fetch(`${gate.adminUrl}/versions/orders:42`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: '{"version":"7"}' });
  await fetch(`${gate.adminUrl}/versions/orders:77`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: '{"version":"5"}' });
  for (const [name, scope] of [['read', 'orders:read'], ['write', 'orders:write'], ['admin', 'admin']] as const) tokens[name] = `Bearer ${await signHs(SECRET, { sub: `u-${name}`, scope })}`;
  if (NGINX_BIN) nginx = await startNginx({ gatePort: gate.port, appPort: port });
});
afterAll(async () => {
  await nginx?.stop();
  await gate?.stop();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

// What the attack sent (issue 13 items 1, 2, 4, 11) and, for each, the status a request must get
// when the gate reads it as the upstream does.
const ATTACKS: [what: string, method: string, path: string, token: string | null, ifMatch: string | null, expected: number[]][] = [
  ['`;` in a scope-ruled segment, read-only token', 'POST', '/api/orders;x=1/42', 'read', '"7"', [400, 403]],
  ['`;` on a resource id, stale If-Match', 'PUT', '/api/orders/77;v=1', 'write', '"4"', [400, 412]],
  ['`..;` out of a public route, no token', 'GET', '/public/..;/api/admin/x', null, null, [400, 401]],
  ['upper-case path, read-only token, stale If-Match', 'PUT', '/API/orders/42', 'read', '"6"', [403]],
  ['upper-case path, write token, stale If-Match', 'PUT', '/API/Orders/42', 'write', '"6"', [412]],
  ['HEAD on a GET-only admin rule without the scope', 'HEAD', '/api/admin/x', 'read', null, [403]],
  ['HEAD on a public route', 'HEAD', '/public/x', null, null, [200]],
  ['a zero-padded id is the same order', 'PUT', '/api/orders/042', 'write', '"6"', [412]],
  ['an id with a trailing space is refused', 'PUT', '/api/orders/42%20', 'write', '"7"', [400]],
  ['a current write passes', 'PUT', '/api/orders/42', 'write', '"7"', [200]],
  ['admin with the scope passes', 'GET', '/api/ADMIN/x', 'admin', null, [200]],
];

describe.skipIf(!NGINX_BIN)('the attack, through the shipped nginx config, in front of Express 5', () => {
  test.each(ATTACKS)('%s: %s %s', async (_what, method, path, token, ifMatch, expected) => {
    const before = ran.length;
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = tokens[token]!;
    if (ifMatch) headers['If-Match'] = ifMatch;
    const res = await send(nginx!.url, method, path, headers);
    expect(expected, `got ${res.status} ${res.body.slice(0, 200)}`).toContain(res.status);
    const handled = ran.slice(before);
    if (res.status !== 200) {
      expect(handled, 'the upstream ran for a refused request').toEqual([]);
      return;
    }
    // Allowed: whatever Express ran, the request satisfied that handler's rule.
    for (const h of handled) {
      if (h.handler === 'admin') expect(token).toBe('admin');
      if (h.handler.startsWith('order-')) {
        expect(token).toBe('write');
        expect(ifMatch).toBe('"7"');
      }
    }
  });
});
