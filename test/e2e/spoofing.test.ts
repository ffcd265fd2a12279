// A new forwardClaims header (X-Auth-Plan) through real Caddy and nginx running what `proxy-config`
// generated for that config: a client-sent X-Auth-Plan never reaches the upstream. The control case
// runs the shipped (not regenerated) files and shows the leak `check` warns about.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';
import { CADDY_BIN, exampleConfig, NGINX_BIN, removeTempDirs, send, startCaddy, startNginx, startUpstream, stopProcess, track, type RunningProxy, type Upstream } from './proxies.js';

for (const kind of ['caddy', 'nginx'] as const) {
  const bin = kind === 'caddy' ? CADDY_BIN : NGINX_BIN;
  const run = bin ? describe : process.env.CI === 'true' ? describe : describe.skip;
  if (!bin) console.warn(`\n!!! ${kind} is not installed: the spoofing checks through it ${process.env.CI === 'true' ? 'FAIL (CI=true)' : 'are SKIPPED'}\n`);

  run(`X-Auth-Plan added to forwardClaims, through ${kind}`, () => {
    let key: TestKey;
    let dir: string;
    let prefix: string;
    let gate: RunningGate;
    let upstream: Upstream;
    let generated: RunningProxy;
    let shipped: RunningProxy;
    let redis: Redis;

    beforeAll(async () => {
      expect(bin, `${kind} must be installed when CI=true`).not.toBeNull();
      key = await makeKey('ES256');
      dir = mkdtempSync(join(tmpdir(), `cg-spoof-${kind}-`));
      prefix = uniquePrefix(`spoof-${kind}`);
      redis = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 2 });
      const cfg = exampleConfig();
      cfg.store.keyPrefix = prefix;
      cfg.auth.issuer = ISSUER;
      cfg.auth.forwardClaims = { ...cfg.auth.forwardClaims, 'X-Auth-Plan': 'plan' };
      writeFileSync(join(dir, 'gate.yaml'), stringifyYaml(cfg));
      writeFileSync(join(dir, cfg.auth.jwksFile as string), JSON.stringify(jwks(key)));
      upstream = await startUpstream();
      gate = await startGate({ configFile: join(dir, 'gate.yaml'), env: { REDIS_URL: SHARED_REDIS_URL } });
      track(gate.proc);
      for (let i = 0; i < 100 && (await fetch(`${gate.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
      const out = await runCli(['proxy-config', '--for', kind, '--config', join(dir, 'gate.yaml')], { REDIS_URL: SHARED_REDIS_URL });
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toContain('X-Auth-Plan');
      const start = (text?: string) => (kind === 'caddy' ? startCaddy({ gatePort: gate.port, appPort: upstream.port, caddyfile: text }) : startNginx({ gatePort: gate.port, appPort: upstream.port, conf: text }));
      generated = await start(out.stdout);
      shipped = await start(undefined);
    });

    afterAll(async () => {
      await Promise.allSettled([generated?.stop(), shipped?.stop()]);
      if (gate) await stopProcess(gate.proc);
      await upstream?.close();
      if (redis) {
        await flushPrefix(redis, prefix);
        redis.disconnect();
      }
      rmSync(dir, { recursive: true, force: true });
      await removeTempDirs();
    });

    const lastCall = () => upstream.calls.at(-1)!;

    test("a token whose plan is free: the API gets free, never the client's enterprise", async () => {
      const token = await sign(key, { sub: 'pat', scope: 'orders:read', claims: { plan: 'free', tenant: 'acme' } });
      const r = await send(generated.url, 'GET', '/api/orders/1', { Authorization: `Bearer ${token}`, 'X-Auth-Plan': 'enterprise' });
      expect(r.status, r.body).toBe(200);
      expect(lastCall().headers['x-auth-plan']).toEqual(['free']);
    });

    test('a token without a plan: the header reaches the API empty or not at all', async () => {
      const token = await sign(key, { sub: 'pat', scope: 'orders:read', claims: { tenant: 'acme' } });
      const r = await send(generated.url, 'GET', '/api/orders/2', { Authorization: `Bearer ${token}`, 'X-Auth-Plan': 'enterprise' });
      expect(r.status, r.body).toBe(200);
      const v = lastCall().headers['x-auth-plan'];
      expect(v === undefined || (v.length === 1 && v[0] === ''), `x-auth-plan reached the API as ${JSON.stringify(v)}`).toBe(true);
    });

    test('a public route (no token looked at): the header reaches the API empty or not at all', async () => {
      const r = await send(generated.url, 'GET', '/public/plan', { 'X-Auth-Plan': 'enterprise' });
      expect(r.status, r.body).toBe(200);
      const v = lastCall().headers['x-auth-plan'];
      expect(v === undefined || (v.length === 1 && v[0] === ''), `x-auth-plan reached the API as ${JSON.stringify(v)}`).toBe(true);
    });

    test('control: the shipped file, not regenerated, lets the client\'s value through (what check warns about)', async () => {
      const token = await sign(key, { sub: 'pat', scope: 'orders:read', claims: { plan: 'free', tenant: 'acme' } });
      const r = await send(shipped.url, 'GET', '/api/orders/3', { Authorization: `Bearer ${token}`, 'X-Auth-Plan': 'enterprise' });
      expect(r.status, r.body).toBe(200);
      expect(lastCall().headers['x-auth-plan']).toEqual(['enterprise']);
      const check = await runCli(['check', '--config', join(dir, 'gate.yaml')], { REDIS_URL: SHARED_REDIS_URL });
      expect(check.stderr).toContain('auth.forwardClaims.X-Auth-Plan');
    });
  });
}
