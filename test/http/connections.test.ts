// Connection lifetimes on the real listener: Traefik's 90 s idle keep-alive, and sockets that never speak.
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGate, type RunningGate } from '../helpers/gate.js';

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
