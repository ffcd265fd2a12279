// Log flood (issue 13 item 3): unauthenticated requests with a huge URI for 10 s; log bytes written and the gate's RSS.
//
//   npm run build && npx tsx bench/log-flood.ts [--seconds 10] [--uri-length 15000] [--reader-mbps 2] [--connections 32]
//   BENCH_GATE_BIN=/other/checkout/dist/main.js npx tsx bench/log-flood.ts      # the same against another build
//
// Two runs, one gate process each (the real CLI, memory store, a JWKS file):
//   fast stdout  the bench reads the gate's stdout as fast as it comes (a file, a quick log shipper);
//   slow stdout  the bench reads it at --reader-mbps MB/s (a terminal, a busy container log driver): the
//                case where an unbounded log buffer grows in the gate's memory.
// Each run floods /auth with GET requests whose X-Forwarded-Uri is --uri-length characters and that carry
// no token (401 missing_token: one denial log line each), then stays idle 5 s. Printed per run: requests
// answered, log bytes the reader received during and after the load, the gate's RSS (start, peak, end of
// load, 5 s later) and the log lines it dropped (conflict_gate_log_lines_dropped_total, when it has it).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type AcResult } from 'autocannon';
import { freePort, waitForPort } from '../test/helpers/net.js';
import { AUDIENCE, ISSUER, jwks, makeKey } from '../test/helpers/tokens.js';
import { GATE_BIN, rssMb } from './lib/procs.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'uri-length': { type: 'string', default: '15000' },
    'reader-mbps': { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(flags.seconds);
const URI_LENGTH = Number(flags['uri-length']);
const READER_BYTES_PER_S = Number(flags['reader-mbps']) * 1024 * 1024;
const CONNECTIONS = Number(flags.connections);
const IDLE_AFTER_S = 5;

interface RunResult {
  requests: number;
  statuses: Record<string, number>;
  logBytesDuring: number;
  logBytesAfter: number;
  rss: { start: number; peak: number; endOfLoad: number; after: number };
  dropped: number | null;
}

async function flood(reader: 'fast' | 'slow', dir: string): Promise<RunResult> {
  const port = await freePort();
  const adminPort = await freePort();
  // The reader is its own process (the load generator here must not slow it down): it reads the gate's
  // stdout, at a capped rate for the slow run, and reports the bytes it has read every 100 ms.
  const readerProc = spawn(process.execPath, ['-e', READER_SRC, String(reader === 'fast' ? 0 : READER_BYTES_PER_S)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let bytes = 0;
  readerProc.stdout!.on('data', (d: Buffer) => {
    const last = /(\d+)\n$/.exec(d.toString());
    if (last) bytes = Number(last[1]);
  });
  const proc = spawn(process.execPath, [GATE_BIN, '--config', join(dir, 'gate.yaml')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ADMIN_PORT: String(adminPort), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', readerProc.stdin!, 'ignore'],
  });
  await waitForPort(adminPort, 15_000);
  await waitForPort(port, 15_000);
  await new Promise((r) => setTimeout(r, 500));
  const pid = proc.pid!;
  const rss = { start: rssMb(pid), peak: 0, endOfLoad: 0, after: 0 };
  const sampler = setInterval(() => (rss.peak = Math.max(rss.peak, rssMb(pid))), 100);

  const uri = `/api/${'x'.repeat(Math.max(1, URI_LENGTH - 5))}`;
  const bytesBefore = bytes;
  const result = await new Promise<AcResult>((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections: CONNECTIONS,
        duration: SECONDS,
        timeout: 10,
        requests: [{ method: 'GET', path: '/auth', headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri } }],
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
  });
  rss.endOfLoad = rssMb(pid);
  const logBytesDuring = bytes - bytesBefore;
  await new Promise((r) => setTimeout(r, IDLE_AFTER_S * 1000));
  rss.after = rssMb(pid);
  rss.peak = Math.max(rss.peak, rss.after);
  clearInterval(sampler);
  const logBytesAfter = bytes - bytesBefore - logBytesDuring;

  let dropped: number | null = null;
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const m = /^conflict_gate_log_lines_dropped_total (\S+)$/m.exec(text);
    dropped = m ? Number(m[1]) : null;
  } catch {
    dropped = null;
  }
  proc.kill('SIGKILL');
  readerProc.kill('SIGKILL');
  await Promise.all([new Promise((r) => proc.once('exit', r)), new Promise((r) => readerProc.once('exit', r))]);
  const statuses: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statuses[k] = v.count;
  return { requests: result.requests.total, statuses, logBytesDuring, logBytesAfter, rss, dropped };
}

/** The reader process: argv[1] bytes per second (0: as fast as it comes); prints its byte count every 100 ms. */
const READER_SRC = `
const rate = Number(process.argv[1]);
let total = 0;
if (rate === 0) {
  process.stdin.on('data', (d) => (total += d.length));
} else {
  process.stdin.pause();
  setInterval(() => {
    let budget = rate / 10;
    while (budget > 0) {
      const chunk = process.stdin.read();
      if (chunk === null) break;
      total += chunk.length;
      budget -= chunk.length;
    }
  }, 100);
}
setInterval(() => process.stdout.write(total + '\\n'), 100);
`;

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const r1 = (n: number) => `${n.toFixed(0)} MB`;

const dir = mkdtempSync(join(tmpdir(), 'cg-log-flood-'));
try {
  const key = await makeKey('ES256');
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
  writeFileSync(
    join(dir, 'gate.yaml'),
    `store: { url: memory }\nauth: { jwksFile: jwks.json, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }\n`,
  );
  console.log(`log flood: ${SECONDS} s, ${CONNECTIONS} connections, X-Forwarded-Uri of ${URI_LENGTH} characters, no token; gate ${GATE_BIN}`);
  const runs = (flags.only ?? 'fast,slow').split(',') as ('fast' | 'slow')[];
  for (const reader of runs) {
    const r = await flood(reader, dir);
    const label = reader === 'fast' ? 'fast stdout' : `slow stdout (${flags['reader-mbps']} MB/s)`;
    console.log(
      [
        `\n${label}`,
        `  requests answered      ${r.requests} (${Object.entries(r.statuses).map(([s, n]) => `${n}x ${s}`).join(', ')})`,
        `  log bytes read         ${mb(r.logBytesDuring)} during the load, ${mb(r.logBytesAfter)} in the ${IDLE_AFTER_S} s after`,
        ...(reader === 'fast' && r.requests > 0 ? [`  log bytes per request  ${Math.round((r.logBytesDuring + r.logBytesAfter) / r.requests)}`] : []),
        `  gate RSS               start ${r1(r.rss.start)}, peak ${r1(r.rss.peak)}, end of load ${r1(r.rss.endOfLoad)}, ${IDLE_AFTER_S} s later ${r1(r.rss.after)}`,
        `  log lines dropped      ${r.dropped === null ? 'n/a (this build has no conflict_gate_log_lines_dropped_total)' : r.dropped}`,
      ].join('\n'),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
