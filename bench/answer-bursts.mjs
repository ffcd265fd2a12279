// Why the gate ÷ bare Hono ratio moves with the machine (README, Performance): an answer written to a
// client that is asleep pays for waking it. Bare node:http answering each request at once, against the
// same server holding a loop turn's answers and writing them together at setImmediate (as the gate's
// answers leave together when a Redis batch's reply arrives), alternated under wrk:
//   node bench/answer-bursts.mjs [--pairs 4] [--duration 5] [--connections 32]
// Server on CPU 0, wrk on CPU 1 (taskset); wrk's sleeps (voluntary context switches) through
// /usr/bin/time when it is installed. Needs wrk on PATH. Prints req/s and sleeps per request for each.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    batch: { type: 'boolean', default: false },
    pairs: { type: 'string', default: '4' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
  },
});

if (values.serve !== undefined) {
  // Server mode: 200 with an empty body, at once or with the loop turn's other answers.
  let pending = [];
  const answer = (res) => {
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  };
  const flush = () => {
    const now = pending;
    pending = [];
    for (const res of now) answer(res);
  };
  const server = createServer((_req, res) => {
    if (!values.batch) return answer(res);
    if (pending.length === 0) setImmediate(flush);
    pending.push(res);
  });
  server.listen(Number(values.serve), '127.0.0.1', () => process.stdout.write('ready\n'));
} else {
  await main();
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

async function startServer(port, batch) {
  const args = [fileURLToPath(import.meta.url), '--serve', String(port), ...(batch ? ['--batch'] : [])];
  const [cmd, argv] = has('taskset') ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args];
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    proc.stdout.once('data', resolve);
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return proc;
}

function wrk(port, seconds, connections) {
  const wrkArgs = ['-t1', `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/auth`];
  const timed = existsSync('/usr/bin/time');
  const pinned = has('taskset') ? ['taskset', '-c', '1', 'wrk', ...wrkArgs] : ['wrk', ...wrkArgs];
  const argv = timed ? ['/usr/bin/time', '-f', 'SLEEPS %w', ...pinned] : pinned;
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const sleeps = timed ? Number(/SLEEPS (\d+)/.exec(r.stderr)?.[1]) : NaN;
  return { rps, sleepsPerRequest: sleeps / requests };
}

async function main() {
  if (!has('wrk')) {
    console.error('answer-bursts: needs wrk on PATH (apt-get install wrk)');
    process.exit(2);
  }
  const pairs = Number(values.pairs);
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const atOnce = await startServer(18171, false);
  const together = await startServer(18172, true);
  try {
    console.log(`bare node:http, ${connections} connections, ${seconds} s per run after 2 s of warm-up, ${pairs} alternated pairs`);
    for (let i = 0; i < pairs; i++) {
      const row = [];
      for (const [name, port] of [['at once', 18171], ['a loop turn together', 18172]]) {
        wrk(port, 2, connections);
        const r = wrk(port, seconds, connections);
        row.push(`${name}: ${Math.round(r.rps)} req/s, wrk slept ${Number.isNaN(r.sleepsPerRequest) ? '?' : r.sleepsPerRequest.toFixed(2)} times per request`);
      }
      console.log(`  ${row.join(' │ ')}`);
    }
  } finally {
    atOnce.kill();
    together.kill();
  }
}
