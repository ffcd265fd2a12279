// Connection lifetimes on the real listener: Traefik's 90 s idle keep-alive, sockets that never speak, and header sizes.
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { parseMetrics, total } from '../helpers/prom.js';
import { signHs } from '../helpers/tokens.js';

let g: RunningGate;
beforeAll(async () => {
  g = await startGate({ yaml: 'server: { idleTimeout: 1s }\nstore: { url: memory }\nauth: { secret: "connections-test-secret-0123456789abc", publicRoutes: ["/*"] }\n' });
});
afterAll(() => g.stop());

function get(agent: Agent): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${g.url}/auth`, { agent, headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/x' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('connections', () => {
  test('an idle keep-alive connection outlives Node’s 5 s default (Traefik reuses sockets for 90 s)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await get(agent)).toEqual({ status: 200, reused: false });
    await new Promise((r) => setTimeout(r, 6500));
    // the same socket, still open: no reset, no 500 for the client
    expect(await get(agent)).toEqual({ status: 200, reused: true });
    agent.destroy();
  }, 15_000);

  test('a connection that sends nothing is closed after server.idleTimeout; one that speaks is not', async () => {
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const s = createConnection({ host: '127.0.0.1', port: g.port });
      s.on('close', () => resolve(Date.now() - started));
      s.on('error', () => undefined);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(5000);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(agent);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await get(agent)).reused).toBe(true);
    agent.destroy();
  }, 15_000);
});

describe('request headers over Node’s 16 KiB default (Traefik and Caddy forward every client header, a big Cookie too)', () => {
  const SECRET = 'header-size-test-secret-0123456789abcdef';
  let h: RunningGate;
  beforeAll(async () => {
    h = await startGate({ yaml: `store: { url: memory }\nauth: { secret: "${SECRET}" }\n` });
  });
  afterAll(() => h.stop());

  const tooLarge = async () => total(parseMetrics(await (await fetch(`${h.adminUrl}/metrics`)).text()), 'conflict_gate_decisions_total', { outcome: 'deny', gate: 'forward', code: 'headers_too_large' });

  test('a 20 000-byte Cookie with a valid token is let through', async () => {
    const res = await forward(h.url, 'GET', '/api/orders/1', { Authorization: `Bearer ${await signHs(SECRET)}`, Cookie: `session=${'c'.repeat(20_000)}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-auth-subject')).toBe('alice');
  });

  test('a header section over 64 KiB gets a problem+json 431, counted as a denial, logged once for a burst', async () => {
    const before = await tooLarge();
    for (let i = 0; i < 3; i++) {
      const res = await forward(h.url, 'GET', '/api/orders/1', { Authorization: `Bearer ${await signHs(SECRET)}`, Cookie: `session=${'c'.repeat(70_000)}` });
      expect(res.status).toBe(431);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 431, code: 'headers_too_large', type: 'https://conflict-gate.dev/problems/headers_too_large' });
    }
    expect(await tooLarge()).toBe(before + 3);
    // the listener still serves
    expect((await forward(h.url, 'GET', '/api/orders/1', { Authorization: `Bearer ${await signHs(SECRET)}` })).status).toBe(200);
    const logged = () => h.output().split('\n').filter((l) => l.includes('request headers too large'));
    for (let i = 0; i < 40 && logged().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    const lines = logged();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', limitBytes: 65_536 });
    expect(lines[0]).not.toContain('ccccc');
  });

  test('a request Node cannot parse still gets Node’s bare 400', async () => {
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const s = createConnection({ host: '127.0.0.1', port: h.port }, () => s.write('NOT HTTP AT ALL\r\n\r\n'));
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', () => undefined);
    });
    expect(answer).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
});
