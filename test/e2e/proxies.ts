// End-to-end harness: the shipped example configs run in real nginx / Caddy in front of the real gate
// (node dist/main.js) and a recording echo upstream. Every child process is tracked and killed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ROOT, startGate, type RunningGate } from '../helpers/gate.js';
import { freePort, waitForPort } from '../helpers/net.js';
import { SHARED_REDIS_URL } from '../helpers/redis.js';
import { ISSUER, jwks, type TestKey } from '../helpers/tokens.js';

export const EXAMPLES = join(ROOT, 'examples');
export const NGINX_CONF = join(EXAMPLES, 'nginx/conflict-gate.conf');
export const CADDYFILE = join(EXAMPLES, 'caddy/Caddyfile');
export const GATE_YAML = join(EXAMPLES, 'gate.yaml');

// ---------------------------------------------------------------------------------------------
// Child processes and temp dirs: all of them go away in cleanup(), and on process exit at worst.

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Kills `proc` on process exit if nothing stopped it before. */
export function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cg-e2e-${tag}-`));
  tempDirs.add(dir);
  return dir;
}

process.once('exit', () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Like Promise.all, but every value that did arrive is handed to `keep` before a failure is thrown. */
export async function allStarted<T extends readonly unknown[]>(starts: { [K in keyof T]: Promise<T[K]> }, keep: (values: { [K in keyof T]: T[K] | undefined }) => void): Promise<void> {
  const settled = await Promise.allSettled(starts as readonly Promise<unknown>[]);
  keep(settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as { [K in keyof T]: T[K] | undefined });
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function removeTempDirs(): Promise<void> {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

// ---------------------------------------------------------------------------------------------
// Finding the proxies.

/**
 * The binary on PATH or at one of the usual places, or null. `E2E_<NAME>_BIN` (E2E_NGINX_BIN,
 * E2E_CADDY_BIN) names the binary to use instead; a path that is not executable counts as missing.
 */
export function findBinary(name: string, candidates: string[]): string | null {
  const override = process.env[`E2E_${name.toUpperCase()}_BIN`];
  if (override !== undefined && override !== '') {
    try {
      accessSync(override, constants.X_OK);
      return override;
    } catch {
      return null;
    }
  }
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const path of [...dirs.map((d) => join(d, name)), ...candidates]) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return null;
}

export const NGINX_BIN = findBinary('nginx', ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']);
export const CADDY_BIN = findBinary('caddy', ['/usr/bin/caddy', '/usr/local/bin/caddy']);

export function proxyVersion(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

// ---------------------------------------------------------------------------------------------
// The upstream: echoes what it got and records every call.

export interface UpstreamCall {
  method: string;
  url: string;
  /** Lower-case names, every value the request carried (so a duplicate shows). */
  headers: Record<string, string[]>;
  body: string;
}

export interface Upstream {
  port: number;
  calls: UpstreamCall[];
  /** Calls whose URL starts with `prefix`. */
  callsTo(prefix: string): UpstreamCall[];
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const calls: UpstreamCall[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: UpstreamCall = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headersDistinct } as Record<string, string[]>, body: Buffer.concat(chunks).toString() };
      calls.push(call);
      // 200 to anything, /auth included: a proxy that misroutes an auth call here lets the request through.
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': 'echo' });
      res.end(JSON.stringify(call));
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    calls,
    callsTo: (prefix) => calls.filter((c) => c.url.startsWith(prefix)),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A client that shows the raw response: every header value (duplicates too), the body as text.

export interface Reply {
  status: number;
  /** Lower-case names → every value sent under that name. */
  headers: Record<string, string[]>;
  body: string;
  /** The single value of a header; fails if it appears more than once. */
  header(name: string): string | undefined;
  json(): Record<string, unknown>;
}

export function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers: { ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) }, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const all = { ...res.headersDistinct } as Record<string, string[]>;
          const text = Buffer.concat(chunks).toString();
          resolve({
            status: res.statusCode ?? 0,
            headers: all,
            body: text,
            header(name) {
              const v = all[name.toLowerCase()];
              if (v === undefined) return undefined;
              if (v.length !== 1) throw new Error(`${name} appears ${v.length} times: ${JSON.stringify(v)}`);
              return v[0];
            },
            json() {
              try {
                return JSON.parse(text) as Record<string, unknown>;
              } catch {
                throw new Error(`not JSON (status ${res.statusCode}, content-type ${res.headers['content-type']}): ${text.slice(0, 300)}`);
              }
            },
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// The proxies.

export interface RunningProxy {
  kind: 'nginx' | 'caddy';
  port: number;
  url: string;
  /** stdout + stderr, and nginx's error log. */
  output(): string;
  stop(): Promise<void>;
}

/** Replaces each `from` (which must occur exactly once, so a reworded example fails loudly). */
export function substituteOnce(text: string, pairs: [from: string, to: string][], what: string): string {
  let out = text;
  for (const [from, to] of pairs) {
    const n = out.split(from).length - 1;
    if (n !== 1) throw new Error(`${what}: expected the placeholder ${JSON.stringify(from)} exactly once, found it ${n} times`);
    out = out.replace(from, to);
  }
  return out;
}

function collect(proc: ChildProcess): () => string {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

async function waitListening(proc: ChildProcess, port: number, output: () => string, what: string): Promise<void> {
  const exited = new Promise<never>((_, reject) => proc.once('exit', (code, sig) => reject(new Error(`${what} exited (${code ?? sig}) before listening:\n${output()}`))));
  await Promise.race([waitForPort(port, 10_000), exited]).catch(async (err: unknown) => {
    await stopProcess(proc, 'SIGKILL');
    throw err instanceof Error ? new Error(`${err.message}\n${output()}`) : err;
  });
}

/**
 * Runs examples/nginx/conflict-gate.conf (or `conf`, a file of the same shape, e.g. proxy-config's
 * output) as it is, with only its three documented address lines changed, inside a generated
 * top-level nginx.conf (pid, logs and temp paths in a temp dir).
 */
export async function startNginx(opts: { gatePort: number; appPort: number; conf?: string }): Promise<RunningProxy> {
  if (!NGINX_BIN) throw new Error('nginx is not installed');
  const dir = tempDir('nginx');
  // As root, nginx's workers run as nobody: they must reach the temp paths.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const shipped = opts.conf ?? readFileSync(NGINX_CONF, 'utf8');
  const site = substituteOnce(
    shipped,
    [
      ['server 127.0.0.1:8080;', `server 127.0.0.1:${opts.gatePort};`],
      ['server 127.0.0.1:3000;', `server 127.0.0.1:${opts.appPort};`],
      ['listen 8000;', `listen 127.0.0.1:${port};`],
    ],
    NGINX_CONF,
  );
  writeFileSync(join(dir, 'conflict-gate.conf'), site);
  const errorLog = join(dir, 'error.log');
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${errorLog} notice;`,
      'events { worker_connections 512; }',
      'http {',
      `  access_log ${join(dir, 'access.log')};`,
      `  client_body_temp_path ${join(dir, 'client_body')};`,
      `  proxy_temp_path ${join(dir, 'proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'scgi')};`,
      `  include ${join(dir, 'conflict-gate.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const proc = track(spawn(NGINX_BIN, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', errorLog, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = collect(proc);
  const output = () => {
    let log = '';
    try {
      log = readFileSync(errorLog, 'utf8');
    } catch {
      // not written yet
    }
    return `${out()}${log}`;
  };
  await waitListening(proc, port, output, 'nginx');
  // QUIT: graceful stop of the master and its workers.
  return { kind: 'nginx', port, url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(proc, 'SIGQUIT') };
}

/**
 * Runs examples/caddy/Caddyfile (or `caddyfile`, the text of one, e.g. proxy-config's output) as it
 * is; the addresses come from its documented env variables.
 */
export async function startCaddy(opts: { gatePort: number; appPort: number; caddyfile?: string }): Promise<RunningProxy> {
  if (!CADDY_BIN) throw new Error('caddy is not installed');
  const dir = tempDir('caddy');
  const port = await freePort();
  const adminPort = await freePort();
  let file = CADDYFILE;
  if (opts.caddyfile !== undefined) {
    file = join(dir, 'Caddyfile');
    writeFileSync(file, opts.caddyfile);
  }
  const proc = track(
    spawn(CADDY_BIN, ['run', '--config', file, '--adapter', 'caddyfile'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        XDG_CONFIG_HOME: join(dir, 'config'),
        XDG_DATA_HOME: join(dir, 'data'),
        CADDY_ADMIN: `127.0.0.1:${adminPort}`,
        CG_GATE: `127.0.0.1:${opts.gatePort}`,
        CG_APP: `127.0.0.1:${opts.appPort}`,
        CG_PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output = collect(proc);
  await waitListening(proc, port, output, 'caddy');
  return { kind: 'caddy', port, url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(proc, 'SIGTERM') };
}

// ---------------------------------------------------------------------------------------------
// The gate, run with examples/gate.yaml.

/** examples/gate.yaml, parsed. */
export function exampleConfig(): Record<string, any> {
  return parseYaml(readFileSync(GATE_YAML, 'utf8')) as Record<string, any>;
}

/**
 * Starts the gate on examples/gate.yaml with only the test values swapped in: the key prefix, the
 * issuer and the key file's content (and claim mode when asked).
 */
export async function startExampleGate(opts: { prefix: string; key: TestKey; claim?: boolean; edit?: (cfg: Record<string, any>) => void }): Promise<RunningGate> {
  const cfg = exampleConfig();
  cfg.store.keyPrefix = opts.prefix;
  cfg.auth.issuer = ISSUER;
  if (opts.claim) cfg.conflict.claim = { ...cfg.conflict.claim, enabled: true };
  opts.edit?.(cfg);
  const jwksName = cfg.auth.jwksFile as string;
  const gate = await startGate({
    yaml: stringifyYaml(cfg),
    files: { [jwksName]: JSON.stringify(jwks(opts.key)) },
    env: { REDIS_URL: SHARED_REDIS_URL },
  });
  track(gate.proc);
  // Until Redis answers, the fail modes would answer (and /readyz says degraded): wait for the store.
  for (let i = 0; i < 100 && (await fetch(`${gate.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  return gate;
}

// /metrics, to count what the gate decided: test/helpers/prom.ts.
export { metrics, total as sum, type Sample } from '../helpers/prom.js';
