// Dev mode (`npm start`): it starts, and the token and curl lines it prints do what they say.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGate, type RunningGate } from '../helpers/gate.js';

describe('dev mode', () => {
  let gate: RunningGate;
  let banner: string;

  beforeAll(async () => {
    gate = await startGate({ args: ['--dev'] });
    for (let i = 0; i < 50 && !gate.output().includes('export TOKEN='); i++) await new Promise((r) => setTimeout(r, 50));
    banner = gate.output();
  });
  afterAll(() => gate.stop());

  test('it warns loudly that this is dev mode', () => {
    expect(banner).toMatch(/DEV MODE/);
    expect(banner.split('\n').find((l) => l.includes('DEV MODE'))).toMatch(/never use in production/i);
  });

  test('the curl lines show a 200, a 401, a 429 and a 412, run as printed', () => {
    const token = /export TOKEN=(\S+)/.exec(banner)![1]!;
    const lines = banner.split('\n').filter((l) => /^\s+(curl|for) /.test(l) && l.includes('/auth'));
    expect(lines).toHaveLength(4);
    // -i lines: keep the status line only; the loop prints one code per line.
    const run = (line: string) =>
      execFileSync('bash', ['-c', `${line.replace(/curl -i /, 'curl -s -o /dev/null -w "%{http_code}\\n" ')}`], { env: { ...process.env, TOKEN: token }, encoding: 'utf8' }).trim().split('\n');
    expect(run(lines[0]!)).toEqual(['200']);
    expect(run(lines[1]!)).toEqual(['401']);
    expect(run(lines[2]!)).toEqual(['200', '200', '200', '429']);
    expect(run(lines[3]!)).toEqual(['412']);
  });

  test('the JWKS it signs with is served at /.well-known/jwks.json', async () => {
    const res = await fetch(`${gate.url}/.well-known/jwks.json`);
    const body = (await res.json()) as { keys: { kty: string; alg: string; d?: string }[] };
    expect(body.keys[0]).toMatchObject({ kty: 'EC', alg: 'ES256' });
    expect(body.keys[0]!.d).toBeUndefined(); // the public half only
  });

  test('the printed admin token works against the versions API', async () => {
    const admin = /export GATE_ADMIN_TOKEN=(\S+)/.exec(banner)![1]!;
    const res = await fetch(`${gate.adminUrl}/versions/orders:42`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(await res.json()).toEqual({ key: 'orders:42', version: '7' });
  });

  test('the log lines are JSON and hold no token', async () => {
    const token = /export TOKEN=(\S+)/.exec(banner)![1]!;
    // Log lines are buffered and flushed every 250 ms.
    const lines = () => gate.output().split('\n').filter((l) => l.startsWith('{'));
    for (let i = 0; i < 40 && lines().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const logLines = lines();
    expect(logLines.length).toBeGreaterThan(0);
    for (const l of logLines) expect(l).not.toContain(token);
  });
});
