// Through a real socket: repeated forwarded fields, `;`, case and HEAD reach the gate as a proxy sends them.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { signHs } from '../helpers/tokens.js';

const HS_SECRET = 'forwarded-socket-test-secret-0123456789';

const YAML = `
store: { url: memory }
auth:
  secret: "${HS_SECRET}"
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [GET], path: "/api/admin/*", scopes: [admin] }
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match, params: { id: integer } }
`;

/** One /auth call with raw header lines (repeats allowed); the status. */
function call(gate: RunningGate, fields: [string, string][]): Promise<number> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of fields) headers[k] = k in headers ? [headers[k] as string, v].flat() : v;
  return new Promise((resolve, reject) => {
    const req = request(`${gate.url}/auth`, { headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

let gate: RunningGate;
let reader: string;
beforeAll(async () => {
  gate = await startGate({ yaml: YAML });
  reader = `Bearer ${await signHs(HS_SECRET, { sub: 'reader', scope: 'orders:read' })}`;
});
afterAll(async () => {
  await gate.stop();
});

describe('what an attack sent, refused or matched as the upstream reads it', () => {
  test('two X-Forwarded-Uri fields are a 400, not "/public/x, /api/admin/x"', async () => {
    expect(await call(gate, [['X-Forwarded-Method', 'GET'], ['X-Forwarded-Uri', '/public/x'], ['X-Forwarded-Uri', '/api/admin/x']])).toBe(400);
  });

  test('two Authorization fields are a 400 whichever comes first (Node keeps the first, an upstream may read the last)', async () => {
    const base: [string, string][] = [['X-Forwarded-Method', 'GET'], ['X-Forwarded-Uri', '/api/orders/1']];
    expect(await call(gate, [...base, ['Authorization', reader]])).toBe(200);
    expect(await call(gate, [...base, ['Authorization', reader], ['Authorization', 'Bearer forged.unsigned.token']])).toBe(400);
    expect(await call(gate, [...base, ['Authorization', 'Bearer forged.unsigned.token'], ['Authorization', reader]])).toBe(400);
    // An empty second line counts too: two readings, one of them nothing.
    expect(await call(gate, [...base, ['Authorization', reader], ['Authorization', '']])).toBe(400);
  });

  test.each(['/api/orders;x=1/42', '/api/orders/77;v=1', '/public/..;/api/orders/42'])('%s is a 400 by default', async (uri) => {
    expect(await call(gate, [['X-Forwarded-Method', 'POST'], ['X-Forwarded-Uri', uri], ['Authorization', reader]])).toBe(400);
  });

  test('PUT /API/Orders/42 meets the scope rule of /api/orders/* (403 for a read-only token)', async () => {
    expect(await call(gate, [['X-Forwarded-Method', 'PUT'], ['X-Forwarded-Uri', '/API/Orders/42'], ['Authorization', reader], ['If-Match', '"1"']])).toBe(403);
  });

  test('HEAD meets a GET-only scope rule', async () => {
    expect(await call(gate, [['X-Forwarded-Method', 'HEAD'], ['X-Forwarded-Uri', '/api/admin/x'], ['Authorization', reader]])).toBe(403);
    expect(await call(gate, [['X-Forwarded-Method', 'HEAD'], ['X-Forwarded-Uri', '/public/x']])).toBe(200);
  });

  test('an id that is not of its declared form is a 400; 042 is 42', async () => {
    const writer = `Bearer ${await signHs(HS_SECRET, { sub: 'w', scope: 'orders:write' })}`;
    expect(await call(gate, [['X-Forwarded-Method', 'PUT'], ['X-Forwarded-Uri', '/api/orders/42%20'], ['Authorization', writer], ['If-Match', '"1"']])).toBe(400);
    expect(await call(gate, [['X-Forwarded-Method', 'PUT'], ['X-Forwarded-Uri', '/api/orders/042'], ['Authorization', writer], ['If-Match', '"1"']])).toBe(200);
  });
});
