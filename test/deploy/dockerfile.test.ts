// Dockerfile and .dockerignore: read as Docker reads them; the HEALTHCHECK command is run for real.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';
import { GATE_DEFAULTS, ROOT, dockerignoreKeeps, execForm, gateYaml, parseDockerfile, readText, type Instruction } from './files.js';

const steps = parseDockerfile(readText('Dockerfile'));
const lastStage = Math.max(...steps.map((s) => s.stage));
const final = steps.filter((s) => s.stage === lastStage);
const buildStages = steps.filter((s) => s.stage !== lastStage);
const one = (list: Instruction[], cmd: string) => {
  const found = list.filter((s) => s.cmd === cmd);
  expect(found, `one ${cmd} in the final stage`).toHaveLength(1);
  return found[0]!;
};
const pkg = JSON.parse(readText('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
const ignore = readText('.dockerignore');

/** The HEALTHCHECK's exec-form command (after `CMD`). */
function healthcheck(): string[] {
  const args = one(final, 'HEALTHCHECK').args.replace(/^(--\S+\s+)*/, '');
  expect(args.startsWith('CMD ')).toBe(true);
  return execForm(args.slice(4))!;
}

function run(cmd: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    p.once('exit', (code) => resolve(code));
  });
}

describe('Dockerfile stages', () => {
  test('is multi-stage, on an even-numbered (LTS) Node release >= 22', () => {
    const froms = steps.filter((s) => s.cmd === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const arg = steps.find((s) => s.cmd === 'ARG' && s.args.startsWith('NODE_IMAGE='));
    for (const f of froms) {
      const image = f.args.split(/\s+/)[0]!.replace('${NODE_IMAGE}', arg?.args.slice('NODE_IMAGE='.length) ?? '');
      const major = Number(/^node:(\d+)/.exec(image)?.[1]);
      expect(major).toBeGreaterThanOrEqual(22);
      expect(major % 2).toBe(0);
    }
  });

  test('the build stage installs all dependencies and runs `npm run build`', () => {
    const runs = buildStages.filter((s) => s.cmd === 'RUN').map((s) => s.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev'))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
  });

  test("the build stage copies everything package.json's build script reads (tsconfig chain and sources)", () => {
    const copied = buildStages.filter((s) => s.cmd === 'COPY').flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    const project = /-p\s+(\S+)/.exec(pkg.scripts.build!)?.[1] ?? 'tsconfig.json';
    // The extends chain, and the `include` of the nearest config that sets one (a child's replaces its parent's).
    const needed = [project];
    let include: string[] | undefined;
    for (let file = project; ; ) {
      const cfg = JSON.parse(readText(file)) as { extends?: string; include?: string[] };
      include ??= cfg.include;
      if (!cfg.extends) break;
      file = posix.normalize(cfg.extends);
      needed.push(file);
    }
    needed.push(...(include ?? []));
    const included = (p: string) => copied.some((c) => c.replace(/\/$/, '') === p || p.startsWith(`${c.replace(/\/$/, '')}/`));
    expect(needed.filter((p) => !included(p))).toEqual([]);
    expect(needed).toContain('src');
  });

  test('the final stage installs production dependencies only, without lifecycle scripts', () => {
    const runs = final.filter((s) => s.cmd === 'RUN').map((s) => s.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && r.includes('--omit=dev') && r.includes('--ignore-scripts'))).toBe(true);
  });

  test('the final stage takes only dist/ from the build stage (no dev node_modules, no sources)', () => {
    const fromBuild = final.filter((s) => s.cmd === 'COPY' && s.args.includes('--from='));
    expect(fromBuild.map((s) => s.args.replace(/--from=\S+\s+/, '').split(/\s+/)[0])).toEqual(['/app/dist']);
    expect(final.some((s) => s.cmd === 'COPY' && /(^|\s)(\.\/)?(src|node_modules)\/?(\s|$)/.test(s.args))).toBe(false);
  });

  test('runs as a numeric non-root user (so Kubernetes runAsNonRoot can check it)', () => {
    const user = one(final, 'USER').args.trim();
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
  });

  test("EXPOSEs the gate's default main and admin ports, and the metrics port the baked-in config sets", () => {
    const ports = one(final, 'EXPOSE').args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, '')));
    expect(ports.sort()).toEqual([GATE_DEFAULTS.port, GATE_DEFAULTS.adminPort, gateYaml().server.metricsPort as number].sort());
  });

  test('ships the LICENSE (MIT, as package.json says)', () => {
    expect(final.some((i) => i.cmd === 'COPY' && /^LICENSE\s/.test(i.args))).toBe(true);
    expect(dockerignoreKeeps(ignore, 'LICENSE')).toBe(true);
    expect(readText('LICENSE')).toMatch(/^MIT License\n/);
    expect(JSON.parse(readText('package.json')).license).toBe('MIT');
  });
});

describe('Dockerfile process', () => {
  test("ENTRYPOINT is exec form and runs node on the package's bin directly (npm/npx do not forward SIGTERM)", () => {
    const entry = execForm(one(final, 'ENTRYPOINT').args);
    expect(entry).not.toBeNull();
    expect(entry![0]).toBe('node');
    const workdir = one(final, 'WORKDIR').args.trim();
    expect(entry![1]).toBe(posix.join(workdir, pkg.bin['conflict-gate']!));
    expect(entry!.join(' ')).not.toMatch(/\bnp[mx]\b/);
  });

  test('CMD is exec form `--config <file>`, and the image carries deploy/gate.yaml at that path', () => {
    const cmd = execForm(one(final, 'CMD').args);
    expect(cmd).toHaveLength(2);
    expect(cmd![0]).toBe('--config');
    const baked = final.find((s) => s.cmd === 'COPY' && s.args.split(/\s+/)[0] === 'deploy/gate.yaml');
    expect(baked?.args.split(/\s+/)[1]).toBe(cmd![1]);
  });

  test('HEALTHCHECK is exec form, runs node (slim images have no curl) and asks /healthz on the default port', () => {
    const hc = healthcheck();
    expect(hc[0]).toBe('node');
    const script = hc.at(-1)!;
    expect(script).toContain('http://127.0.0.1:');
    expect(script).toContain('/healthz');
    expect(script).toContain(`||${GATE_DEFAULTS.port})`);
  });

  describe('the HEALTHCHECK command, run', () => {
    let gate: RunningGate;
    beforeAll(async () => {
      gate = await startGate({
        configFile: join(ROOT, 'deploy/gate.yaml'),
        // The store and the JWKS are down: /healthz must not care (liveness, not readiness).
        env: { JWKS_URL: 'http://127.0.0.1:9/jwks.json', JWT_ISSUER: 'https://idp.example/', JWT_AUDIENCE: 'orders-api', REDIS_URL: 'redis://127.0.0.1:9/0', METRICS_PORT: String(await freePort()) },
      });
    });
    afterAll(async () => {
      await gate?.stop();
    });

    test('exits 0 against a running gate', async () => {
      expect(await run(healthcheck(), { PORT: String(gate.port) })).toBe(0);
    });

    test('exits non-zero when nothing listens', async () => {
      expect(await run(healthcheck(), { PORT: String(await freePort()) })).not.toBe(0);
    });
  });
});

describe('.dockerignore', () => {
  const sources = steps.filter((s) => s.cmd === 'COPY' && !s.args.includes('--from=')).flatMap((s) => s.args.split(/\s+/).slice(0, -1));

  test.each(sources)('keeps %s, which the Dockerfile copies, and it exists', (src) => {
    expect(existsSync(join(ROOT, src))).toBe(true);
    expect(dockerignoreKeeps(ignore, src.replace(/^\.\//, '').replace(/\/$/, ''))).toBe(true);
  });

  test.each(['node_modules/zod/package.json', 'dist/main.js', '.git/HEAD', '.env', 'test/deploy/files.ts', 'coverage/index.html', 'npm-debug.log'])(
    'leaves out %s',
    (path) => {
      expect(dockerignoreKeeps(ignore, path)).toBe(false);
    },
  );
});
