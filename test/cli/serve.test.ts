import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

describe('the CLI serving a config through a real socket', () => {
  let gate: RunningGate;
  let key: TestKey;

  beforeAll(async () => {
    key = await makeKey('ES256');
    gate = await startGate({
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
      yaml: `
store: { url: memory }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
`,
    });
  });
  afterAll(async () => {
    await gate?.stop();
  });

  test('a valid token is allowed with identity headers', async () => {
    const res = await forward(gate.url, 'GET', '/api/orders/1', { Authorization: `Bearer ${await sign(key, { scope: 'a b' })}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-auth-subject')).toBe('alice');
    expect(res.headers.get('x-auth-scopes')).toBe('a b');
  });

  test('no token is a 401 missing_token problem', async () => {
    const res = await forward(gate.url, 'GET', '/api/orders/1');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await res.json()).code).toBe('missing_token');
  });

  test('SIGTERM exits 0', async () => {
    expect(await gate.stop()).toBe(0);
  });
});

describe('a short HMAC secret', () => {
  test('serves, and says so in a warning log line that does not contain the secret', async () => {
    const gate = await startGate({ yaml: 'store: { url: memory }\nauth: { secret: tiny-s3cret }' });
    for (let i = 0; i < 40 && !gate.output().includes('config warning'); i++) await new Promise((r) => setTimeout(r, 50));
    const line = gate.output().split('\n').find((l) => l.includes('config warning'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', field: 'auth.secret' });
    expect(gate.output()).not.toContain('tiny-s3cret');
    expect(await gate.stop()).toBe(0);
  });
});
