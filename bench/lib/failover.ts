// A master killed under a bounded load of current and stale writes: what the gate answered, when, and how fast.
// Used by test/redis/*.test.ts (asserting the contract's bounds) and bench/redis-failover.ts (printing the figures).

/** One request of the load. */
export interface Sample {
  start: number;
  end: number;
  status: number;
  kind: 'current' | 'stale';
  onVictim: boolean;
  /** X-Resource-Version of an allow: the version the gate read from Redis. */
  version: string | null;
}

export interface FailoverReport {
  killedAt: number;
  /** When the test saw a replica take over (polled every 50 ms). */
  promotedAt: number;
  /** End of the last current write on the victim's keys, after the kill, that did not get its shared answer (200 with the version). */
  lastFailureAt: number;
  samples: Sample[];
  maxLatencyMs: number;
  staleAllowed: number;
  /** Requests answered by the fail mode (conflict.onStoreError: deny → 503). */
  failModeAnswers: number;
  /** From the promotion to correct shared answers (negative: they resumed before the test saw the promotion). */
  resumeAfterPromotionMs: number;
}

export interface FailoverRun {
  gateUrl: string;
  adminUrl: string;
  adminToken: string;
  /** Authorization header of the load's client. */
  auth: Record<string, string>;
  /** Resource ids (`/api/orders/<id>`, key `orders:<id>`) on the master that dies, and on the others. */
  victimIds: string[];
  otherIds: string[];
  kill: () => Promise<void>;
  promoted: () => Promise<boolean>;
  /** Concurrent request loops (default 6), each pausing 5 ms between requests. */
  workers?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function forward(url: string, method: string, uri: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${url}/auth`, { headers: { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, ...headers } });
}

/**
 * Publishes version 5 of every resource, runs the load (one write in three stale: If-Match "4"),
 * kills the victim after 800 ms, waits for `promoted`, and stops once the victim's keys have had
 * their shared answers for a second after the promotion, or 6 s past it.
 */
export async function runFailover(o: FailoverRun): Promise<FailoverReport> {
  const ids = [...o.victimIds, ...o.otherIds];
  for (const id of ids) {
    const r = await fetch(`${o.adminUrl}/versions/orders:${id}`, { method: 'PUT', headers: { Authorization: `Bearer ${o.adminToken}`, 'Content-Type': 'application/json' }, body: '{"version":"5"}' });
    if (r.status !== 200) throw new Error(`publish orders:${id}: ${r.status}`);
  }
  await sleep(300); // replicated to the replicas long before the kill
  const samples: Sample[] = [];
  const victims = new Set(o.victimIds);
  let stop = false;
  const worker = async (w: number) => {
    for (let i = w; !stop; i++) {
      const id = ids[i % ids.length]!;
      const kind = i % 3 === 0 ? 'stale' : 'current';
      const start = Date.now();
      const r = await forward(o.gateUrl, 'PUT', `/api/orders/${id}`, { ...o.auth, 'If-Match': kind === 'stale' ? '"4"' : '"5"' });
      await r.arrayBuffer();
      samples.push({ start, end: Date.now(), status: r.status, kind, onVictim: victims.has(id), version: r.headers.get('x-resource-version') });
      await sleep(5);
    }
  };
  const load = Promise.all(Array.from({ length: o.workers ?? 6 }, (_, w) => worker(w)));
  try {
    await sleep(800);
    const killedAt = Date.now();
    await o.kill();
    let promotedAt = 0;
    while (!promotedAt) {
      if (Date.now() - killedAt > 30_000) throw new Error('no promotion within 30 s');
      if (await o.promoted().catch(() => false)) promotedAt = Date.now();
      else await sleep(50);
    }
    const shared = (s: Sample) => s.status === 200 && s.version === '5';
    for (;;) {
      await sleep(100);
      const now = Date.now();
      const recentVictim = samples.filter((s) => s.onVictim && s.kind === 'current' && s.start > now - 1000);
      if (now - promotedAt > 1000 && recentVictim.length > 5 && recentVictim.every(shared)) break;
      if (now - promotedAt > 6000) break;
    }
    stop = true;
    await load;
    const lastFailureAt = Math.max(killedAt, ...samples.filter((s) => s.onVictim && s.kind === 'current' && s.start >= killedAt && !shared(s)).map((s) => s.end));
    return {
      killedAt,
      promotedAt,
      lastFailureAt,
      samples,
      maxLatencyMs: Math.max(...samples.map((s) => s.end - s.start)),
      staleAllowed: samples.filter((s) => s.kind === 'stale' && s.status === 200).length,
      failModeAnswers: samples.filter((s) => s.status === 503).length,
      resumeAfterPromotionMs: lastFailureAt - promotedAt,
    };
  } finally {
    stop = true;
    await load;
  }
}

export function describeFailover(r: FailoverReport): string {
  const byStatus: Record<number, number> = {};
  for (const s of r.samples) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  const after = r.samples.filter((s) => s.start >= r.killedAt);
  return (
    `kill→promotion ${r.promotedAt - r.killedAt} ms, promotion→shared answers ${r.resumeAfterPromotionMs} ms, ` +
    `${r.samples.length} requests ${JSON.stringify(byStatus)}, answered by the fail mode ${r.failModeAnswers}, ` +
    `max latency ${r.maxLatencyMs} ms (after the kill: p99 ${percentile(after.map((s) => s.end - s.start), 99)} ms), stale writes allowed ${r.staleAllowed}`
  );
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
