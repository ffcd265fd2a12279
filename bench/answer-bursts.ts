// Why the gate ÷ bare Hono ratio moves with the machine (README, Performance): an answer written to a
// client that is asleep pays for waking it. Bare node:http answering each request at once, against the
// same server holding a loop turn's answers and writing them together (as the gate's answers leave
// together when a Redis batch's reply arrives), alternated under wrk:
//   npm run bench:bursts -- [--pairs 4] [--duration 5] [--connections 32]
// Servers on CPU 0, wrk on CPU 1 (taskset); wrk's sleeps (voluntary context switches) through
// /usr/bin/time when it is installed. Needs wrk on PATH. Prints req/s and sleeps per request for each.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.js';
import { pinned, ROOT } from './lib/procs.js';

const { values } = parseArgs({
  options: { pairs: { type: 'string', default: '4' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' } },
});
const SERVER = join(ROOT, 'bench/lib/burst-server.mjs');

async function startServer(batch: boolean): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const [cmd, args] = pinned('0', process.execPath, [SERVER, '--port', String(port), ...(batch ? ['--batch'] : [])]);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    proc.stdout!.once('data', resolve);
    proc.once('exit', (code) => reject(new Error(`burst server exited ${code}`)));
  });
  return { port, proc };
}

function wrk(port: number, seconds: number, connections: number): { rps: number; sleepsPerRequest: number } {
  const [cmd, args] = pinned('1', 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/auth`]);
  const timed = existsSync('/usr/bin/time');
  const r = timed ? spawnSync('/usr/bin/time', ['-f', 'SLEEPS %w', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const sleeps = timed ? Number(/SLEEPS (\d+)/.exec(r.stderr)?.[1]) : NaN;
  return { rps, sleepsPerRequest: sleeps / requests };
}

if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) {
  console.error('answer-bursts: needs wrk on PATH (apt-get install wrk)');
  process.exit(2);
}
const pairs = Number(values.pairs);
const seconds = Number(values.duration);
const connections = Number(values.connections);
const atOnce = await startServer(false);
const together = await startServer(true);
try {
  console.log(`bare node:http, ${connections} connections, ${seconds} s per run after 2 s of warm-up, ${pairs} alternated pairs`);
  for (let i = 0; i < pairs; i++) {
    const row: string[] = [];
    for (const [name, port] of [['at once', atOnce.port], ['a loop turn together', together.port]] as const) {
      wrk(port, 2, connections);
      const r = wrk(port, seconds, connections);
      row.push(`${name}: ${Math.round(r.rps)} req/s, wrk slept ${Number.isNaN(r.sleepsPerRequest) ? '?' : r.sleepsPerRequest.toFixed(2)} times per request`);
    }
    console.log(`  ${row.join(' │ ')}`);
  }
} finally {
  atOnce.proc.kill();
  together.proc.kill();
}
