// Issue 11's papercuts, through the real CLI: IPv6 clients with HOST unset, a port in use named with its
// listener, and the config and usage mistakes that must be told clearly (exit 2, one line each).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { withIpv4Fallback } from '../../src/server.js';
import { runCli, startGate } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';

const dir = mkdtempSync(join(tmpdir(), 'cg-papercuts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = '0123456789abcdef0123456789abcdef';
function config(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
const base = `store: { url: memory }\nauth: { secret: "${SECRET}", issuer: "https://issuer.example", audience: "a" }\n`;

describe('listening', () => {
  test('HOST unset: the gate answers IPv6 and IPv4 clients (dual stack)', async () => {
    const g = await startGate({ yaml: base, env: { HOST: '' } });
    try {
      expect((await fetch(`http://[::1]:${g.port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${g.port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://[::1]:${g.adminPort}/healthz`)).status).toBe(200);
    } finally {
      await g.stop();
    }
  });

  test('where IPv6 is unavailable (EAFNOSUPPORT) the default falls back to 0.0.0.0; an explicit HOST does not', async () => {
    const tried: string[] = [];
    const noV6 = async (host: string) => {
      tried.push(host);
      if (host.includes(':')) throw Object.assign(new Error('address family not supported'), { code: 'EAFNOSUPPORT' });
      return host;
    };
    expect(await withIpv4Fallback(noV6, '::', true)).toBe('0.0.0.0');
    expect(tried).toEqual(['::', '0.0.0.0']);
    await expect(withIpv4Fallback(noV6, '::', false)).rejects.toMatchObject({ code: 'EAFNOSUPPORT' });
    const inUse = async () => Promise.reject(Object.assign(new Error('in use'), { code: 'EADDRINUSE' }));
    await expect(withIpv4Fallback(inUse, '::', true)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  describe('a port already in use: exit 1, naming the address, the port and the listener, no stack', () => {
    let taken: Server;
    let port: number;
    afterAll(() => new Promise<void>((r) => taken.close(() => r())));

    test.each([
      ['PORT', 'the main listener, PORT'],
      ['ADMIN_PORT', 'the admin listener, ADMIN_PORT'],
      ['METRICS_PORT', 'the metrics listener, server.metricsPort'],
    ])('%s', async (name, listener) => {
      if (!taken) {
        port = await freePort();
        taken = createServer();
        await new Promise<void>((r) => taken.listen(port, '::', () => r()));
      }
      const env: Record<string, string> = { PORT: String(await freePort()), ADMIN_PORT: String(await freePort()), METRICS_PORT: String(await freePort()), HOST: '', [name]: String(port) };
      const r = await runCli(['--config', config('ok.yaml', base)], env);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`conflict-gate: cannot listen on [::]:${port} (${listener}): address already in use`);
    });
  });
});

describe('config mistakes, each told once with its field', () => {
  test.each<[string, string, string[], Record<string, string>?]>([
    ['${VAR:-default} with VAR unset is the default (compose habit)', base.replace('"https://issuer.example"', '"${JWT_ISSUER:-https://issuer.example}"'), []],
    ['$VAR is refused, not kept as a literal issuer', base.replace('"https://issuer.example"', '"$JWT_ISSUER"'), ['auth.issuer: unsupported "$JWT_ISSUER": use ${VAR}, ${VAR:-default} or ${VAR:?message}, and $$ for a literal "$"'], { JWT_ISSUER: 'x' }],
    ['a misspelled section gets a did-you-mean', `${base}rateLimt: {}\n`, ['rateLimt: unknown key (did you mean rateLimit?)']],
    ['a missing field says required', `${base}rateLimit: { rules: [{ name: a, limit: 1 }] }\n`, ['rateLimit.rules[0].window: required']],
    ['a bad duration is one line, not two', `${base}rateLimit: { rules: [{ name: a, limit: 1, window: 60 }] }\n`, ['rateLimit.rules[0].window: expected a duration like "60s"']],
    ['metricsPort equal to the admin port', `${base.replace('store:', 'server: { metricsPort: 9090 }\nstore:')}`, ['server.metricsPort: must differ from adminPort (9090)']],
    [
      'metricsPort equal to the admin port, told beside another server problem',
      `${base.replace('store:', 'server: { metricsPort: 9090, methodOverride: nope }\nstore:')}`,
      ['server.methodOverride: expected reject or ignore', 'server.metricsPort: must differ from adminPort (9090)'],
    ],
    ['logAllows out of range', `${base.replace('store:', 'server: { logAllows: 2 }\nstore:')}`, ['server.logAllows: expected a number from 0 to 1']],
  ])('%s', async (_n, text, lines, env = {}) => {
    const file = config(`c${Math.random().toString(36).slice(2, 8)}.yaml`, text);
    const r = await runCli(['check', '--config', file], env);
    if (lines.length === 0) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return;
    }
    expect(r.code).toBe(2);
    const problems = r.stderr.split('\n').slice(1).filter(Boolean);
    expect(problems).toEqual(lines);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('an empty key set is an error', async () => {
    writeFileSync(join(dir, 'empty.json'), '{"keys":[]}');
    const r = await runCli(['check', '--config', config('empty.yaml', 'store: { url: memory }\nauth: { jwksFile: empty.json }\n')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('auth.jwksFile:');
    expect(r.stderr).toContain('no keys');
  });
});

describe('usage mistakes: exit 2, in our words, with the usage', () => {
  test.each([
    ['an option of another command', ['check', '--config', 'x.yaml', '--dev'], "Unknown option '--dev'"],
    ['a quoted "--config file" (one argument)', ['--config gate.yaml'], "Unknown option '--config gate.yaml'"],
    ['an unknown command', ['chek', '--config', 'x.yaml'], 'unknown command "chek"'],
  ])('%s', async (_n, args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain('To specify a positional argument');
    expect(r.stderr).toContain('Usage:');
  });
});
