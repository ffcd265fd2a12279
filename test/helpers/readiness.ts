// /readyz of a running gate, read and polled the same way by every readiness test.
import type { RunningGate } from './gate.js';

export interface Ready {
  code: number;
  body: { status: string; checks: { store: boolean; keys: boolean }; reason?: string };
}

export async function readyz(g: RunningGate, query = ''): Promise<Ready> {
  const r = await fetch(`${g.url}/readyz${query}`);
  return { code: r.status, body: (await r.json()) as Ready['body'] };
}

/** Polls until `done` holds for the gate's /readyz (the store's health probe runs every second). */
export async function until(g: RunningGate, done: (r: Ready) => boolean, what: string): Promise<Ready> {
  let last: Ready | undefined;
  for (let i = 0; i < 200; i++) {
    last = await readyz(g);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: /readyz stayed ${JSON.stringify(last)}`);
}
