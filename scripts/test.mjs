#!/usr/bin/env node
// `npm test`: makes sure Redis answers on 127.0.0.1:6379 (starting one if the binary exists),
// builds dist/ (the CLI tests run the real bin), runs vitest, and ends with "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';

const REDIS_PORT = 6379;

function redisAnswers() {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port: REDIS_PORT });
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

function which(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).status === 0;
}

let ownRedis;
if (!(await redisAnswers())) {
  if (!which('redis-server')) {
    console.error('npm test needs Redis on 127.0.0.1:6379: install it (apt-get install redis-server) or start one, then run npm test again.');
    process.exit(1);
  }
  console.log('[test] nothing answers on 127.0.0.1:6379; starting redis-server for this run');
  ownRedis = spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !(await redisAnswers()); i++) await new Promise((r) => setTimeout(r, 100));
}

const build = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
const typecheck = build.status === 0 ? spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' }) : build;
if (build.status !== 0 || typecheck.status !== 0) {
  console.error(build.status !== 0 ? '[test] the build failed' : '[test] the type check of src/, test/ and bench/ failed');
  console.log('0 passed, 1 failed');
  ownRedis?.kill();
  process.exit(1);
}

const results = '.vitest-results.json';
rmSync(results, { force: true });
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: 'inherit' });
const code = await new Promise((r) => child.on('exit', (c) => r(c ?? 1)));
ownRedis?.kill();

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = r.numFailedTests ?? 0;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A file that fails to load counts as a failure even with no test inside it.
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed')).length;
  failed += brokenFiles;
  rmSync(results, { force: true });
} else if (code !== 0) {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code === 0 && failed === 0 && passed > 0 ? 0 : 1);
