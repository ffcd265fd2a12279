// `conflict-gate proxy-config` (the real CLI) against the shipped proxy files: they are its output for
// deploy/gate.yaml, byte for byte, so a header list cannot drift. And `check` warns about a
// forwardClaims header those files do not copy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { proxyConfig, PROXIES, SHIPPED_FORWARD_CLAIMS } from '../../src/cli/proxy-config.js';
import { upstreamHeaders } from '../../src/http/headers.js';
import { ALLOW_HEADERS } from '../../src/core/http.js';
import { runCli } from '../helpers/gate.js';
import { gateForwardClaimHeaders, readText, yamlDoc } from './files.js';

/** What an operator sets for deploy/gate.yaml. */
const ENV = { JWKS_URL: 'https://idp.example.com/.well-known/jwks.json', JWT_ISSUER: 'https://idp.example.com/', JWT_AUDIENCE: 'orders-api' };

/** Each proxy's shipped file, and whether it is the whole output or the output plus the compose routing. */
const SHIPPED: Record<(typeof PROXIES)[number], { file: string; whole: boolean }> = {
  traefik: { file: 'traefik/dynamic.yml', whole: false },
  'traefik-crd': { file: 'kubernetes/middleware.yaml', whole: true },
  caddy: { file: 'examples/caddy/Caddyfile', whole: true },
  nginx: { file: 'examples/nginx/conflict-gate.conf', whole: true },
};

const dir = mkdtempSync(join(tmpdir(), 'cg-proxy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(PROXIES)('proxy-config --for %s --config deploy/gate.yaml', (proxy) => {
  test(`is what ${SHIPPED[proxy].file} ships`, async () => {
    const r = await runCli(['proxy-config', '--for', proxy, '--config', 'deploy/gate.yaml'], ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const shipped = readText(SHIPPED[proxy].file);
    if (SHIPPED[proxy].whole) expect(shipped).toBe(r.stdout);
    else expect(shipped.startsWith(r.stdout), `${SHIPPED[proxy].file} starts with the generated middleware`).toBe(true);
  });

  test('copies every allow header and each forwardClaims header of the config', () => {
    const out = proxyConfig(proxy, { forwardClaims: ['X-Auth-Tenant', 'X-Auth-Plan'], port: 8080 });
    for (const h of [...ALLOW_HEADERS, 'X-Auth-Tenant', 'X-Auth-Plan']) expect(out).toContain(h);
  });
});

test('the shipped files are generated for the forwardClaims of deploy/gate.yaml and examples/gate.yaml', () => {
  expect(gateForwardClaimHeaders()).toEqual(SHIPPED_FORWARD_CLAIMS);
  expect(Object.keys(yamlDoc('examples/gate.yaml').auth.forwardClaims)).toEqual(SHIPPED_FORWARD_CLAIMS);
  // examples/gate.yaml (no port: 8080) gives the same files
  expect(proxyConfig('nginx', { forwardClaims: SHIPPED_FORWARD_CLAIMS, port: 8080 })).toBe(readText('examples/nginx/conflict-gate.conf'));
  expect(proxyConfig('caddy', { forwardClaims: SHIPPED_FORWARD_CLAIMS, port: 8080 })).toBe(readText('examples/caddy/Caddyfile'));
});

test('the Traefik middleware lists the allow headers, the claim headers and the RateLimit pair, in that order', () => {
  const fa = (yamlDoc('traefik/dynamic.yml').http.middlewares['conflict-gate'] as Record<string, any>).forwardAuth;
  expect(fa.authResponseHeaders).toEqual([...upstreamHeaders(SHIPPED_FORWARD_CLAIMS), 'RateLimit', 'RateLimit-Policy']);
});

describe('options and mistakes', () => {
  test("Caddy and nginx wait longer than the gate's own worst case: a JWKS fetch and two store calls, plus a second", async () => {
    // The shipped files: the defaults (jwksTimeout 5s, commandTimeout 250ms) give 7 s.
    expect(readText('examples/caddy/Caddyfile')).toContain('response_header_timeout 7s');
    expect(readText('examples/nginx/conflict-gate.conf').match(/proxy_read_timeout +7s;/g)).toHaveLength(2);
    const file = join(dir, 'slow-jwks.yaml');
    writeFileSync(file, 'store: { url: memory, commandTimeout: 1s }\nauth: { jwksUrl: "https://idp.example/jwks.json", jwksTimeout: 10s, issuer: "https://idp.example/", audience: api }\n');
    const caddy = await runCli(['proxy-config', '--for', 'caddy', '--config', file]);
    expect(caddy.code).toBe(0);
    expect(caddy.stdout).toContain('response_header_timeout 13s');
    const nginx = await runCli(['proxy-config', '--for', 'nginx', '--config', file]);
    expect(nginx.stdout.match(/proxy_read_timeout +13s;/g)).toHaveLength(2);
  });

  test('--gate sets the address the proxy calls', async () => {
    const r = await runCli(['proxy-config', '--for', 'traefik', '--config', 'deploy/gate.yaml', '--gate', 'http://gate.internal:9999/auth'], ENV);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('address: "http://gate.internal:9999/auth"');
    const n = await runCli(['proxy-config', '--for', 'nginx', '--config', 'deploy/gate.yaml', '--gate', '10.0.0.5:8080'], ENV);
    expect(n.stdout).toContain('server 10.0.0.5:8080;');
  });

  test('the gate port of the config is the default address port', async () => {
    const r = await runCli(['proxy-config', '--for', 'caddy', '--config', 'deploy/gate.yaml'], { ...ENV, PORT: '8181' });
    expect(r.stdout).toContain('forward_auth {$CG_GATE:127.0.0.1:8181}');
  });

  test.each([
    ['no --for', ['proxy-config', '--config', 'deploy/gate.yaml'], 'proxy-config needs --for traefik|traefik-crd|caddy|nginx'],
    ['an unknown proxy', ['proxy-config', '--for', 'haproxy', '--config', 'deploy/gate.yaml'], 'proxy-config needs --for'],
    ['no --config', ['proxy-config', '--for', 'nginx'], 'proxy-config needs --config'],
    ['a --gate that is not host:port', ['proxy-config', '--for', 'nginx', '--config', 'deploy/gate.yaml', '--gate', 'http://x/auth'], '--gate for nginx is host:port'],
    ['an option of another command', ['proxy-config', '--for', 'nginx', '--config', 'deploy/gate.yaml', '--json'], "Unknown option '--json'"],
  ])('%s: exit 2 with a message', async (_n, args, message) => {
    const r = await runCli(args, ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  test('a config error: exit 2, one line per problem, as check prints them', async () => {
    const r = await runCli(['proxy-config', '--for', 'nginx', '--config', 'deploy/gate.yaml'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('auth.jwksUrl: environment variable JWKS_URL is not set');
  });

  test('nginx cannot name a header with an underscore in a variable: refused, naming it', async () => {
    const file = join(dir, 'underscore.yaml');
    writeFileSync(file, 'store: { url: memory }\nauth: { secret: "0123456789abcdef0123456789abcdef", forwardClaims: { X_Auth_Plan: plan } }\n');
    const r = await runCli(['proxy-config', '--for', 'nginx', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('X_Auth_Plan');
    expect((await runCli(['proxy-config', '--for', 'caddy', '--config', file])).code).toBe(0);
  });

  test('--gate with a quote, a backslash or a # (written into YAML and Caddyfile text as it is): refused', async () => {
    const file = join(dir, 'plain.yaml');
    writeFileSync(file, 'store: { url: memory }\nauth: { secret: "0123456789abcdef0123456789abcdef" }\n');
    for (const gate of ['http://gate:8080/auth"x', "http://gate:8080/auth'x", 'http://gate:8080/auth#x', 'http://gate:8080/a\\b']) {
      const r = await runCli(['proxy-config', '--for', 'traefik', '--config', file, '--gate', gate]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    }
    expect((await runCli(['proxy-config', '--for', 'traefik', '--config', file, '--gate', 'http://gate:8080/auth'])).code).toBe(0);
  });
});

describe('check and the shipped proxy files', () => {
  const withPlan = join(dir, 'plan.yaml');
  writeFileSync(
    withPlan,
    'store: { url: memory }\nauth: { secret: "0123456789abcdef0123456789abcdef", forwardClaims: { X-Auth-Tenant: tenant, X-Auth-Plan: plan } }\n',
  );

  test('warns, naming the header, when a forwardClaims header is one the shipped files do not copy; still exit 0', async () => {
    const r = await runCli(['check', '--config', withPlan]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK');
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('auth.forwardClaims.X-Auth-Plan');
    expect(warnings[0]).toContain('do not copy X-Auth-Plan');
    expect(warnings[0]).toContain(`conflict-gate proxy-config --for <proxy> --config ${withPlan}`);
  });

  test('says nothing for the shipped config', async () => {
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
