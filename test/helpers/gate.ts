// Runs the real CLI (node dist/main.js) as a child process with a config, on free ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, waitForPort } from './net.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'dist/main.js');

export interface RunningGate {
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  proc: ChildProcess;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Writes `yaml` to a temp file (or uses a path) and serves it. Resolves once /healthz answers. */
export async function startGate(opts: { yaml?: string; configFile?: string; env?: Record<string, string>; args?: string[]; files?: Record<string, string> } = {}): Promise<RunningGate> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-gate-'));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  let configFile = opts.configFile;
  if (opts.yaml !== undefined) {
    configFile = join(dir, 'gate.yaml');
    writeFileSync(configFile, opts.yaml);
  }
  const port = await freePort();
  const adminPort = await freePort();
  const args = [BIN, ...(configFile ? ['--config', configFile] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ADMIN_PORT: String(adminPort), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // The gate's folder (its config and files) goes with the process.
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code))).then((code) => {
    rmSync(dir, { recursive: true, force: true });
    return code;
  });
  const started = Promise.race([waitForPort(adminPort, 15_000).then(() => waitForPort(port)), exited.then((c) => Promise.reject(new Error(`gate exited with ${c}:\n${out}`)))]);
  await started;
  return {
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    proc,
    output: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs the CLI to completion (check, schema, bad configs): exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('exit', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** Calls /auth as a proxy would: original method and URI in X-Forwarded-*. */
export function forward(url: string, method: string, uri: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}/auth`, { ...init, headers: { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, ...headers } });
}
