// SIGTERM: stop accepting, finish in-flight requests, close Redis, exit 0 within 10 s.
import { createServer } from 'node:http';
import { expect, test } from 'vitest';
import { forward, startGate } from '../helpers/gate.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { makeKey, sign } from '../helpers/tokens.js';

test('an in-flight request finishes, then the process exits 0', async () => {
  const key = await makeKey('ES256');
  // A JWKS endpoint that answers after 3 s: the first verification is in flight that long.
  let release: () => void = () => {};
  const jwks = createServer((_req, res) => {
    const t = setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] })), 3000);
    release = () => clearTimeout(t);
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks`;
  const gate = await startGate({
    yaml: `store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${uniquePrefix('shutdown')}" }\nauth: { jwksUrl: "${url}", algorithms: [ES256] }`,
  });
  const inflight = forward(gate.url, 'GET', '/x', { Authorization: `Bearer ${await sign(key)}` });
  // (a second for the request to reach the gate, on a loaded machine too; the key answers 2 s later)
  await new Promise((r) => setTimeout(r, 1000));
  const started = Date.now();
  gate.proc.kill('SIGTERM');
  // New connections are refused once draining starts (polled: how soon the signal lands varies).
  let refused = false;
  for (let i = 0; i < 40 && !refused; i++) {
    refused = await fetch(`${gate.url}/healthz`).then(
      () => new Promise<boolean>((r) => setTimeout(() => r(false), 25)),
      () => true,
    );
  }
  expect(refused).toBe(true);
  const res = await inflight;
  expect(res.status).toBe(200);
  expect(await gate.exited).toBe(0);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(gate.output()).toMatch(/"msg":"stopped"/);
  release();
  jwks.closeAllConnections();
  jwks.close();
});
