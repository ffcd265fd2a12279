// Redis INFO commandstats: calls per command, and the delta a measured run caused.
import { Redis } from 'ioredis';

/** `cmdstat_evalsha:calls=12,usec=…` → { evalsha: 12 }. */
export async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** What happened between two snapshots; the bench's own INFO calls are left out. */
export function callsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cmd, n] of Object.entries(after)) {
    if (cmd === 'info') continue;
    const d = n - (before[cmd] ?? 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}

export interface Trace {
  decisions: number;
  /** Commands the gate sent, EVALSHA included (a decision sends its commands in one pipeline: one round trip). */
  commandsPerDecision: number;
  /** Commands run inside Lua scripts (INFO commandstats counts these too). */
  scriptCommandsPerDecision: number;
  byCommand: Record<string, number>;
}

/**
 * Exact per-decision Redis traffic: MONITOR while `n` requests are sent one at a time. MONITOR
 * tags commands run by a script with source `lua`, which commandstats cannot tell apart.
 */
export async function traceDecisions(redisUrl: string, n: number, send: (i: number) => Promise<void>): Promise<Trace> {
  const client = new Redis(redisUrl, { lazyConnect: true });
  await client.connect();
  const monitor = await client.monitor();
  let top = 0;
  let lua = 0;
  const byCommand: Record<string, number> = {};
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const cmd = `${source === 'lua' ? 'lua:' : ''}${String(args[0]).toLowerCase()}`;
    byCommand[cmd] = (byCommand[cmd] ?? 0) + 1;
    if (source === 'lua') lua++;
    else top++;
  });
  // MONITOR is asynchronous: a short pause on each side keeps the window clean.
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < n; i++) await send(i);
  await new Promise((r) => setTimeout(r, 200));
  monitor.disconnect();
  client.disconnect();
  const per = (x: number) => Math.round((x / n) * 1000) / 1000;
  return {
    decisions: n,
    commandsPerDecision: per(top),
    scriptCommandsPerDecision: per(lua),
    byCommand: Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, per(v)])),
  };
}
