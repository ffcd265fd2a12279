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

/**
 * One vitest run: its tally, read from the JSON reporter. A file that fails to load counts as a
 * failure even with no test inside it.
 */
async function vitest(extra, tag) {
  const results = `.vitest-results${tag}.json`;
  rmSync(results, { force: true });
  const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...extra];
  const child = spawn('npx', args, { stdio: 'inherit' });
  const code = await new Promise((r) => child.on('exit', (c) => r(c ?? 1)));
  const tally = { code, passed: 0, failed: 0, skipped: 0 };
  if (existsSync(results)) {
    const r = JSON.parse(readFileSync(results, 'utf8'));
    tally.passed = r.numPassedTests ?? 0;
    tally.failed = r.numFailedTests ?? 0;
    tally.skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    tally.failed += (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed')).length;
    rmSync(results, { force: true });
  } else if (code !== 0) {
    tally.failed = 1;
  }
  return tally;
}

// The Redis Cluster and Sentinel suites time failovers against their own redis-servers: they run
// after the rest, one file at a time, so no other test competes for the two cores meanwhile.
// Arguments (files, filters) run as given, in one vitest run.
const given = process.argv.slice(2);
const runs = given.length > 0 ? [await vitest(given, '')] : [await vitest(['--exclude', 'test/redis/**'], '-main'), await vitest(['test/redis', '--maxWorkers=1', '--minWorkers=1'], '-redis')];
ownRedis?.kill();

const passed = runs.reduce((a, r) => a + r.passed, 0);
const failed = runs.reduce((a, r) => a + r.failed, 0);
const skipped = runs.reduce((a, r) => a + r.skipped, 0);
const code = runs.every((r) => r.code === 0) ? 0 : 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code === 0 && failed === 0 && passed > 0 ? 0 : 1);
