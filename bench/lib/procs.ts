// Child processes for the bench: pinned to one core (taskset), started on free ports, CPU time read from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort, waitForPort } from '../../test/helpers/net.js';

export const ROOT = resolve(import.meta.dirname, '../..');
/** The CLI under test; BENCH_GATE_BIN points the bench at another build (an experiment) instead. */
export const GATE_BIN = process.env.BENCH_GATE_BIN ? resolve(process.env.BENCH_GATE_BIN) : join(ROOT, 'dist/main.js');

/** True when `taskset` is on PATH: without it nothing is pinned (and the output says so). */
export const HAVE_TASKSET = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;

/** `[taskset, -c, <cpu>, cmd, ...args]` when pinning is possible, else the command as is. */
export function pinned(cpu: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return HAVE_TASKSET && cpu !== undefined && cpu !== '' ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];
}

/** Pins every thread of an already running process (this one: the load generator). */
export function pinProcess(pid: number, cpu: string): boolean {
  if (!HAVE_TASKSET) return false;
  return spawnSync('taskset', ['-a', '-cp', cpu, String(pid)], { stdio: 'ignore' }).status === 0;
}

/** utime + stime of a process in seconds (Linux /proc), or NaN elsewhere. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in MB (Linux /proc), or NaN. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface Proc {
  pid: number;
  port: number;
  adminPort?: number;
  proc: ChildProcess;
  /** performance.now() when spawned: a CPU profile's clock starts about then. */
  spawnedAt: number;
  output(): string;
  stop(): Promise<number | null>;
}

function track(proc: ChildProcess): { output: () => string; exited: Promise<number | null> } {
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { output: () => out, exited };
}

async function started(proc: ChildProcess, ports: number[], exited: Promise<number | null>, output: () => string, what: string): Promise<void> {
  const up = (async () => {
    for (const p of ports) await waitForPort(p, 15_000);
  })();
  await Promise.race([up, exited.then((c) => Promise.reject(new Error(`${what} exited with ${c}:\n${output()}`)))]);
}

function stopper(proc: ChildProcess, exited: Promise<number | null>) {
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const hard = setTimeout(() => proc.kill('SIGKILL'), 12_000);
    const code = await exited;
    clearTimeout(hard);
    return code;
  };
}

/** The bare baseline: bench/bare.ts (Hono on @hono/node-server answering 200), one process on `cpu`. */
export async function startBare(cpu: string | undefined, cpuProfDir?: string): Promise<Proc> {
  const port = await freePort();
  const nodeArgs = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const [cmd, args] = pinned(cpu, process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, 'bench/bare.ts')]);
  const spawnedAt = performance.now();
  const proc = spawn(cmd, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exited } = track(proc);
  await started(proc, [port], exited, output, 'bare server');
  return { pid: proc.pid!, port, proc, output, stop: stopper(proc, exited), spawnedAt };
}

export interface GateStart {
  configFile: string;
  cpu: string | undefined;
  env?: Record<string, string>;
  logLevel: string;
  /** Write a V8 CPU profile into this directory on exit (node --cpu-prof). */
  cpuProfDir?: string;
}

/** The real CLI, `node dist/main.js --config FILE`, one process on `cpu`. Logs go to /dev/null. */
export async function startGateProcess(o: GateStart): Promise<Proc> {
  const port = await freePort();
  const adminPort = await freePort();
  const nodeArgs = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  const [cmd, args] = pinned(o.cpu, process.execPath, [...nodeArgs, GATE_BIN, '--config', o.configFile]);
  const spawnedAt = performance.now();
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ADMIN_PORT: String(adminPort), HOST: '127.0.0.1', LOG_LEVEL: o.logLevel, ...o.env },
    // stdout (pino's JSON lines) goes to /dev/null: the cost of logging stays, no pipe back-pressure.
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const { output, exited } = track(proc);
  await started(proc, [adminPort, port], exited, output, 'gate');
  return { pid: proc.pid!, port, adminPort, proc, output, stop: stopper(proc, exited), spawnedAt };
}

/** Warns when dist/ is older than src/ (the bench runs the built CLI). */
export function distStaleness(): string | null {
  if (process.env.BENCH_GATE_BIN) return existsSync(GATE_BIN) ? null : `${GATE_BIN} is missing`;
  if (!existsSync(GATE_BIN)) return 'dist/main.js is missing: run `npm run build` first';
  const built = statSync(GATE_BIN).mtimeMs;
  let newest = 0;
  let newestFile = '';
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const m = statSync(p).mtimeMs;
        if (m > newest) {
          newest = m;
          newestFile = p;
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  return newest > built + 1000 ? `dist/ may be stale: ${newestFile.slice(ROOT.length + 1)} is newer than dist/main.js (run \`npm run build\`)` : null;
}

/** A redis-server of our own on a free port, pinned to `cpu`, so INFO commandstats counts only this bench. */
export async function startOwnRedisServer(cpu: string | undefined): Promise<{ port: number; url: string; pid: number; stop: () => Promise<number | null> } | null> {
  if (spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).status !== 0) return null;
  const port = await freePort();
  const [cmd, args] = pinned(cpu, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exited } = track(proc);
  await started(proc, [port], exited, output, 'redis-server');
  return { port, url: `redis://127.0.0.1:${port}/0`, pid: proc.pid!, stop: stopper(proc, exited) };
}
