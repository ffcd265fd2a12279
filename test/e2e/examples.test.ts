// The shipped proxy examples stay in step with the gate: every header the gate documents for an allow
// (src/http/headers.ts, plus examples/gate.yaml's forwardClaims) is copied to the API, and the
// safety settings the e2e runs rely on are present. Static: `caddy adapt` and the nginx file's text.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { upstreamHeaders } from '../../src/http/headers.js';
import { runCli } from '../helpers/gate.js';
import { jwks, makeKey } from '../helpers/tokens.js';
import { CADDYFILE, CADDY_BIN, exampleConfig, GATE_YAML, NGINX_CONF } from './proxies.js';

const forwardClaims = Object.keys((exampleConfig().auth?.forwardClaims ?? {}) as Record<string, string>);
const documented = upstreamHeaders(forwardClaims);

test('examples/gate.yaml, as shipped, passes `conflict-gate check` once its jwksFile exists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cg-e2e-check-'));
  try {
    copyFileSync(GATE_YAML, join(dir, 'gate.yaml'));
    writeFileSync(join(dir, exampleConfig().auth.jwksFile as string), JSON.stringify(jwks(await makeKey('ES256'))));
    const r = await runCli(['check', '--config', join(dir, 'gate.yaml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('examples/gate.yaml forwards a claim, so the proxies have a forwardClaims header to copy', () => {
  expect(forwardClaims).toContain('X-Auth-Tenant');
  expect(documented).toEqual(expect.arrayContaining(['X-Auth-Subject', 'X-Auth-Scopes', 'X-Resource-Key', 'X-Resource-Version', 'X-Auth-Tenant']));
});

describe('examples/nginx/conflict-gate.conf', () => {
  const conf = readFileSync(NGINX_CONF, 'utf8').replace(/#.*$/gm, '');
  const block = (start: string): string => {
    const i = conf.indexOf(start);
    expect(i, `${start} in the nginx example`).toBeGreaterThanOrEqual(0);
    let depth = 0;
    for (let j = conf.indexOf('{', i); j < conf.length; j++) {
      if (conf[j] === '{') depth++;
      else if (conf[j] === '}' && --depth === 0) return conf.slice(i, j + 1);
    }
    throw new Error(`unbalanced braces after ${start}`);
  };
  const main = block('location / ');
  const auth = block('location = /_auth');
  const replay = block('location @auth_deny');

  test.each(documented)('copies %s from the gate\'s allow to the API (and so drops the client\'s)', (name) => {
    const upstreamVar = `$upstream_http_${name.toLowerCase().replace(/-/g, '_')}`;
    const set = new RegExp(`auth_request_set\\s+(\\$\\w+)\\s+\\${upstreamVar};`).exec(main);
    expect(set, `auth_request_set ... ${upstreamVar}`).not.toBeNull();
    expect(main).toMatch(new RegExp(`proxy_set_header\\s+${name}\\s+\\${set![1]};`, 'i'));
  });

  test('the auth call: no body, the original request, a fresh id, marked as the first call (never the client\'s marker)', () => {
    expect(auth).toMatch(/\binternal;/);
    expect(auth).toMatch(/proxy_pass_request_body\s+off;/);
    expect(auth).toMatch(/proxy_set_header\s+Content-Length\s+"";/);
    expect(auth).toMatch(/proxy_set_header\s+X-Forwarded-Method\s+\$request_method;/);
    expect(auth).toMatch(/proxy_set_header\s+X-Forwarded-Uri\s+\$request_uri;/);
    expect(auth).toMatch(/proxy_set_header\s+X-Request-Id\s+\$request_id;/);
    expect(auth).toMatch(/proxy_set_header\s+X-Auth-Replay\s+"first";/);
  });

  test('both calls of a request reach the same gate replica (hash on the request id)', () => {
    expect(block('upstream conflict_gate ')).toMatch(/hash\s+\$request_id\s+consistent;/);
  });

  test('denials are replayed with the same id and the replay marker, WWW-Authenticate handled once', () => {
    expect(main).toMatch(/error_page\s+401\s+403\s+500\s+=\s*@auth_deny;/);
    expect(replay).toMatch(/proxy_set_header\s+X-Request-Id\s+\$request_id;/);
    expect(replay).toMatch(/proxy_set_header\s+X-Auth-Replay\s+\$\w+;/);
    expect(replay).toMatch(/proxy_hide_header\s+WWW-Authenticate;/);
    expect(replay).toMatch(/proxy_pass_request_body\s+off;/);
    expect(replay).toMatch(/proxy_method\s+GET;/);
  });
});

describe('examples/caddy/Caddyfile', () => {
  const run = CADDY_BIN ? test : process.env.CI === 'true' ? test : test.skip;
  if (!CADDY_BIN) console.warn(`\n!!! caddy is not installed: the Caddyfile check ${process.env.CI === 'true' ? 'FAILS (CI=true)' : 'is SKIPPED'}\n`);

  run('adapts, and forward_auth copies every documented header, with keep-alive off and timeouts set', () => {
    expect(CADDY_BIN, 'caddy must be installed when CI=true').not.toBeNull();
    const home = mkdtempSync(join(tmpdir(), 'cg-e2e-adapt-'));
    try {
      const r = spawnSync(CADDY_BIN!, ['adapt', '--config', CADDYFILE, '--adapter', 'caddyfile'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: home, XDG_DATA_HOME: home },
      });
      expect(r.status, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as Record<string, any>;
      expect(json.apps.http.servers.srv0.automatic_https?.disable).toBe(true);

      // Every reverse_proxy handler, in the order they appear.
      const proxies: Record<string, any>[] = [];
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          const o = v as Record<string, any>;
          if (o.handler === 'reverse_proxy') proxies.push(o);
          Object.values(o).forEach(walk);
        }
      };
      walk(json.apps.http.servers.srv0.routes);
      const [fa, app] = proxies;
      expect(proxies.length, 'forward_auth, then the API').toBe(2);
      expect(fa!.rewrite).toEqual({ method: 'GET', uri: '/auth?' });
      expect(app!.rewrite).toBeUndefined();
      expect(fa!.transport.keep_alive?.enabled, 'keepalive off (Caddy 2.6.2 misroutes auth calls otherwise)').toBe(false);
      expect(fa!.transport.dial_timeout).toBeGreaterThan(0);
      expect(fa!.transport.response_header_timeout).toBeGreaterThan(0);
      expect(fa!.headers.request.set['X-Request-Id']).toEqual(['{http.request.uuid}']);
      expect(fa!.headers.request.delete).toContain('X-Auth-Replay');
      const copied = fa!.handle_response[0].routes[0].handle[0].request.set as Record<string, string[]>;
      expect(Object.keys(copied).sort()).toEqual([...documented].sort());
      for (const name of documented) expect(copied[name]).toEqual([`{http.reverse_proxy.header.${name}}`]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
