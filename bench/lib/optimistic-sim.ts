// The client helper end to end: API consumers using optimisticWrite (conflict-gate/client) through real Caddy (the
// shipped Caddyfile) and the real gate (CLI, claim mode, an Idempotency-Key rule) to an upstream with no concurrency
// control. Used by bench/optimistic.ts (npm run bench:optimistic) and test/conflict/client-helper.test.ts.
//
//   client ── GET /counters/c1 ─────────────► Caddy ─ forward_auth ─► gate /auth (GET: allowed)
//                                                    └ reverse_proxy ─► upstream: {value, version}, ETag "version"
//   client ── PUT /counters/c1 If-Match "v" ─► Caddy ─ forward_auth ─► gate /auth: If-Match, lease, Idempotency-Key
//            Idempotency-Key, Content-Digest         └ reverse_proxy ─► upstream: sets value (no check of any kind),
//                                                                       version+1, publishes it (ends the lease),
//                                                                       ends the key's in-flight state
//
// The upstream checks nothing, so every increment the gate lets through concurrently with another would be lost;
// claim mode lets one write per counter through at a time and the helper re-reads after 412 / waits after 409.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { optimisticWrite, OptimisticWriteError, VersionPublisher, type OptimisticStats } from '../../src/client/index.js';
import { CADDY_BIN, startCaddy, type RunningProxy } from '../../test/e2e/proxies.js';
import { startGate, type RunningGate } from '../../test/helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../../test/helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../../test/helpers/tokens.js';
import { sendJson } from './upstream.js';

export { CADDY_BIN };

export interface OptimisticSimOptions {
  clients: number;
  increments: number;
  counters: number;
  /** The upstream's pause between receiving a PUT and applying it: the race window. */
  writeDelayMs: number;
  /** The helper's cap on one wait (Retry-After is followed up to it). */
  maxWaitMs: number;
  /** The helper's bound on requests per logical write. */
  maxAttempts: number;
  /** The claim lease, e.g. "5s". */
  lease?: string;
  redisUrl?: string;
  random?: () => number;
}

export interface OptimisticSimResult {
  clients: number;
  increments: number;
  counters: number;
  /** Increments the upstream applied (one per successful write). */
  applied: number;
  finalSum: number;
  /** applied − finalSum: increments overwritten by a concurrent write. */
  lost: number;
  /** Logical writes the helper gave up on (attempts exhausted or refused). */
  failed: number;
  /** The helpers' statistics, summed over every logical write. */
  totals: OptimisticStats;
  /** Keys the upstream ended through the client library. */
  keysEnded: number;
  /** Times a PUT reached the upstream while another PUT on the same counter had not applied yet (0 unless the gate let two through). */
  overlaps: number;
  /** Upstream calls to the gate's admin API that failed (publishes are tried up to 3 times; an end is not). */
  upstreamFailures: { publish: number; end: number };
  /** The longest time from a PUT's arrival at the upstream to its publish, ms (a lease must outlast it). */
  longestWriteMs: number;
  /** The gate's conflict_gate_store_errors_total / store_errors_total over the run, by op and code. */
  storeErrors: Record<string, number>;
  elapsedMs: number;
  perCounter: { id: string; value: number; version: number }[];
}

const ADMIN_TOKEN = 'optimistic-sim-admin-token';

interface Counter {
  value: number;
  version: number;
}

async function startUpstream(ids: string[], writeDelayMs: number, publisher: VersionPublisher): Promise<{ url: string; port: number; counters: Map<string, Counter>; applied: () => number; ended: () => number; overlaps: () => number; longestMs: () => number; failures: () => { publish: number; end: number }; close(): Promise<void> }> {
  const counters = new Map(ids.map((id) => [id, { value: 0, version: 1 }]));
  let applied = 0;
  let ended = 0;
  // What would explain a loss: two PUTs on one counter in the upstream at once (the gate let both
  // through), and the longest time from a PUT's arrival to its publish (a lease shorter than it expires).
  const busy = new Map<string, number>();
  let overlaps = 0;
  let longestMs = 0;
  let publishFailures = 0;
  let endFailures = 0;
  const header = (req: IncomingMessage, name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const server: Server = createServer((req, res) => {
    const m = /^\/counters\/([^/?]+)$/.exec(req.url ?? '');
    const counter = m ? counters.get(m[1]!) : undefined;
    if (!m || !counter) return sendJson(res, 404, { error: 'not found' });
    const id = m[1]!;
    if (req.method === 'GET') return sendJson(res, 200, { id, value: counter.value }, { ETag: `"${counter.version}"` });
    if (req.method !== 'PUT') return sendJson(res, 405, { error: 'method not allowed' });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      void (async () => {
        const { value } = JSON.parse(text) as { value: number };
        const arrived = performance.now();
        busy.set(id, (busy.get(id) ?? 0) + 1);
        if (busy.get(id)! > 1) overlaps++;
        await new Promise((r) => setTimeout(r, writeDelayMs));
        // No If-Match check, no lock: that is what the gate is in front for.
        counter.value = value;
        counter.version += 1;
        applied++;
        busy.set(id, busy.get(id)! - 1);
        const version = counter.version;
        // Publishing ends the lease; a failed publish is tried again (else the lease runs out and
        // the cache heals on the next write that names the new version).
        for (let attempt = 1; ; attempt++) {
          try {
            await publisher.publish(`counters:${id}`, version);
            break;
          } catch (err) {
            publishFailures++;
            if (attempt >= 3) throw err;
          }
        }
        longestMs = Math.max(longestMs, performance.now() - arrived);
        // The gate tells the upstream whose key this is (X-Auth-Subject, X-Idempotency-Key). Ending
        // the in-flight state is a courtesy to retries: the write is done whether or not it works.
        const key = header(req, 'x-idempotency-key');
        const subject = header(req, 'x-auth-subject');
        if (key && subject) {
          const r = await publisher.endIdempotency({ client: subject }, key).catch(() => 'failed' as const);
          if (r === 'ended') ended++;
          else if (r === 'failed') endFailures++;
        }
        sendJson(res, 200, { id, value: counter.value }, { ETag: `"${version}"` });
      })().catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    counters,
    applied: () => applied,
    ended: () => ended,
    overlaps: () => overlaps,
    longestMs: () => Math.round(longestMs),
    failures: () => ({ publish: publishFailures, end: endFailures }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function emptyStats(): OptimisticStats {
  return { attempts: 0, reads: 0, readRetries: 0, writes: 0, rereads: 0, resends: 0, waits: 0, waitedMs: 0, networkErrors: 0, answers: {} };
}

function addStats(into: OptimisticStats, s: OptimisticStats): void {
  for (const k of ['attempts', 'reads', 'readRetries', 'writes', 'rereads', 'resends', 'waits', 'waitedMs', 'networkErrors'] as const) into[k] += s[k];
  for (const [k, v] of Object.entries(s.answers)) into.answers[k] = (into.answers[k] ?? 0) + v;
}

/** Runs the clients to completion through Caddy; needs Caddy (CADDY_BIN), Redis and a built dist/. */
export async function runOptimistic(o: OptimisticSimOptions): Promise<OptimisticSimResult> {
  if (!CADDY_BIN) throw new Error('caddy is not installed');
  const redisUrl = o.redisUrl ?? SHARED_REDIS_URL;
  const prefix = uniquePrefix('optimistic');
  const ids = Array.from({ length: o.counters }, (_, i) => `c${i + 1}`);
  const key = await makeKey('ES256');
  let gate: RunningGate | undefined;
  let proxy: RunningProxy | undefined;
  let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;
  let publisher: VersionPublisher | undefined;
  try {
    gate = await startGate({
      yaml: `
store: { url: "${redisUrl}", keyPrefix: "${prefix}", commandTimeout: 1s }
auth: { jwksFile: jwks.json, issuer: "${ISSUER}", audience: "${AUDIENCE}", algorithms: [ES256] }
conflict:
  # Claim mode is a guarantee only if it fails closed: with the default onStoreError: allow, a
  # store call that times out lets the write through without a lease.
  onStoreError: deny
  claim: { enabled: true, lease: ${o.lease ?? '5s'} }
  resources:
    - { path: "/counters/:id", key: "counters:{id}", require: if-match }
  idempotency:
    - { methods: [PUT], path: "/counters/:id", inFlight: 10s, ttl: 10m }
`,
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
      env: { GATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'warn' },
    });
    for (let i = 0; i < 100 && (await fetch(`${gate.url}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
    publisher = new VersionPublisher({ admin: { url: gate.adminUrl, token: ADMIN_TOKEN } });
    upstream = await startUpstream(ids, o.writeDelayMs, publisher);
    for (const id of ids) await publisher.publish(`counters:${id}`, 1);
    proxy = await startCaddy({ gatePort: gate.port, appPort: upstream.port });

    const totals = emptyStats();
    let failed = 0;
    const tokens = await Promise.all(Array.from({ length: o.clients }, (_, c) => sign(key, { sub: `client-${c}` })));
    const t0 = performance.now();
    await Promise.all(
      tokens.map(async (token, c) => {
        for (let m = 0; m < o.increments; m++) {
          const id = ids[(c + m) % ids.length]!;
          try {
            const r = await optimisticWrite<{ value: number }>({
              url: `${proxy!.url}/counters/${id}`,
              headers: { Authorization: `Bearer ${token}` },
              apply: (current) => ({ value: current.value + 1 }),
              maxAttempts: o.maxAttempts,
              maxWaitMs: o.maxWaitMs,
              ...(o.random ? { random: o.random } : {}),
            });
            await r.response.body?.cancel();
            addStats(totals, r.stats);
          } catch (err) {
            if (!(err instanceof OptimisticWriteError)) throw err;
            failed++;
            addStats(totals, err.stats);
          }
        }
      }),
    );
    const elapsedMs = Math.round(performance.now() - t0);
    const storeErrors: Record<string, number> = {};
    for (const line of (await (await fetch(`${gate.adminUrl}/metrics`)).text()).split('\n')) {
      const m = /^(?:conflict_gate_)?store_errors_total\{([^}]*)\} (\d+)/.exec(line);
      if (!m) continue;
      const op = /op="([^"]*)"/.exec(m[1]!)?.[1] ?? '';
      const code = /code="([^"]*)"/.exec(m[1]!)?.[1] ?? '';
      storeErrors[`${op} ${code}`] = Number(m[2]);
    }
    const perCounter = ids.map((id) => ({ id, ...upstream!.counters.get(id)! }));
    const finalSum = perCounter.reduce((a, c) => a + c.value, 0);
    return {
      clients: o.clients,
      increments: o.increments,
      counters: o.counters,
      applied: upstream.applied(),
      finalSum,
      lost: upstream.applied() - finalSum,
      failed,
      totals,
      keysEnded: upstream.ended(),
      storeErrors,
      overlaps: upstream.overlaps(),
      upstreamFailures: upstream.failures(),
      longestWriteMs: upstream.longestMs(),
      elapsedMs,
      perCounter,
    };
  } finally {
    await proxy?.stop();
    await upstream?.close();
    await publisher?.close();
    await gate?.stop();
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await flushPrefix(redis, prefix);
    } catch {
      // Best effort: the keys are small and prefixed.
    } finally {
      redis.disconnect();
    }
  }
}

/** One line for the CLI and the test log. */
export function describeOptimistic(r: OptimisticSimResult): string {
  const t = r.totals;
  const answers = Object.entries(t.answers)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  return (
    `${r.clients} clients × ${r.increments} increments on ${r.counters} counters through Caddy: applied ${r.applied}, final sum ${r.finalSum}, lost ${r.lost}, failed ${r.failed}; ` +
    `requests ${t.attempts} (reads ${t.reads}, writes ${t.writes}), retries ${t.rereads + t.resends} (re-reads ${t.rereads}, resends ${t.resends}), ` +
    `waits ${t.waits} (${t.waitedMs} ms in all), keys ended ${r.keysEnded}; elapsed ${r.elapsedMs} ms; answers {${answers}}` +
    `; upstream overlaps ${r.overlaps}, longest write ${r.longestWriteMs} ms, failed publishes ${r.upstreamFailures.publish}, failed ends ${r.upstreamFailures.end}; gate store errors {${Object.entries(r.storeErrors).map(([k, v]) => `${k}: ${v}`).join(', ')}}`
  );
}
