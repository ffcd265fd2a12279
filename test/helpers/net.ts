// Free loopback ports and waiting for a TCP listener.
import { createServer, createConnection } from 'node:net';

/**
 * A port that was free a moment ago, for a child process to bind. Port 0 would hand out one from
 * the kernel's ephemeral range (32768-60999 here), where any process's outgoing connection can take
 * it between this probe and the child's bind: CI lost a gate to "address already in use" that way.
 * So ports come from below that range, in a slice of its own for each vitest worker (VITEST_POOL_ID),
 * walked in turn; a port something else holds is skipped by the probe.
 */
const FIRST = 12_000;
const SLICE = 2_000;
const worker = Number(process.env.VITEST_POOL_ID ?? '1') - 1;
const base = FIRST + ((worker % 10) * SLICE);
let next = Math.floor(Math.random() * SLICE);

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < SLICE; tries++) {
    const port = base + (next++ % SLICE);
    if (await probe(port)) return port;
  }
  throw new Error(`no free port in ${base}-${base + SLICE - 1}`);
}

export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
