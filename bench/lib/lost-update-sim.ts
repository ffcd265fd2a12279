// The lost-update simulation: read-modify-write clients, an upstream with no concurrency check, and the gate
// in front as a forward-auth check (no gate / If-Match at the edge / claim mode). Used by
// bench/lost-update.ts (npm run bench:conflict) and test/conflict/lost-update.test.ts.
//
// How a client increments a counter, as a proxy with forward-auth would route it:
//   GET  → gate /auth (X-Forwarded-Method GET)  → 200 → upstream GET /counters/:id → {value, version}, ETag
//   PUT  → gate /auth (X-Forwarded-Method PUT, If-Match "<version read>") → 200 → upstream PUT {value: value+1}
// A 409/412 from the gate (or a declined write from upstream) makes the client re-read and retry, bounded.
//
// The upstream applies a PUT after `writeDelayMs` (a slow database write) and checks nothing: it sets the
// value the client computed, bumps the version, then publishes the new version to the gate's version cache
// through the admin API (PUT /versions/counters:<id>, publish-if-newer). A write it declines (`failEvery`)
// publishes the unchanged version, which releases a claim-mode lease at once.
//
// Why the edge check alone still loses updates (worked example, writeDelayMs = 10):
//   t=0   A reads v1, B reads v1
//   t=1   gate checks A's If-Match "1" against cached v1: allow; A's write is now in flight upstream
//   t=2   gate checks B's If-Match "1": the cache still says v1 (A has not published yet): allow
//   t=11  upstream applies A (value 1, v2), publishes v2;  t=12 applies B (value 1, v3): A's increment is lost.
// Claim mode closes the window: at t=1 A's check also takes the lease on v1, so at t=2 B gets 409
// write_in_progress; the lease ends when A's write publishes v2, and B re-reads v2.
import { once } from 'node:events';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { readConfigText } from '../../src/config/read.js';
import { createLogger } from '../../src/obs/log.js';
import { createDeps, startServer, type RunningServer } from '../../src/server.js';
import { flushPrefix, uniquePrefix } from '../../test/helpers/redis.js';
import { sendJson } from './upstream.js';

export type Mode = 'none' | 'gate' | 'claim';

export interface SimOptions {
  mode: Mode;
  clients: number;
  increments: number;
  counters: number;
  /** The upstream's pause between receiving a PUT and applying it: the race window. */
  writeDelayMs: number;
  /** Attempts per increment before a client gives up on it. */
  maxAttempts: number;
  /** `memory`, a redis:// URL, or `cluster:host:port,host:port` (seed nodes); a unique key prefix is used and deleted afterwards. */
  store: string;
  /** The upstream declines every Nth write (503, nothing applied, unchanged version published); 0 = never. */
  failEvery?: number;
  /** Claim lease, e.g. "5s". */
  lease?: string;
  /** Random source for the clients' retry jitter (tests may pass a seeded one). */
  random?: () => number;
}

export interface SimResult {
  mode: Mode;
  clients: number;
  increments: number;
  counters: number;
  /** Writes the upstream applied (each a +1 some client computed). */
  successfulWrites: number;
  /** Sum of the counters at the end. */
  finalSum: number;
  /** successfulWrites − finalSum: increments that were overwritten. */
  lost: number;
  /** Increments a client abandoned after maxAttempts. */
  gaveUp: number;
  /** Writes the upstream declined on purpose (failEvery). */
  declined: number;
  /** Gate answers to writes, by status and code (e.g. "409 write_in_progress"). */
  gateDenials: Record<string, number>;
  attempts: number;
  durationMs: number;
  perCounter: { id: string; value: number; version: number }[];
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing (node:http with keep-alive; no fetch, so a run is not at the mercy of a pool's quirks)

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function call(agent: Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body === undefined ? headers : { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The upstream: counters with no concurrency check at all.

interface Counter {
  value: number;
  version: number;
}

interface Upstream {
  url: string;
  counters: Map<string, Counter>;
  applied: () => number;
  declined: () => number;
  close(): Promise<void>;
}

async function startUpstream(o: { ids: string[]; writeDelayMs: number; failEvery: number; publish: ((id: string, version: number) => Promise<void>) | null }): Promise<Upstream> {
  const counters = new Map(o.ids.map((id) => [id, { value: 0, version: 1 }]));
  let applied = 0;
  let declined = 0;
  let received = 0;
  const server: Server = createServer((req, res) => {
    const m = /^\/counters\/([^/?]+)$/.exec(req.url ?? '');
    const counter = m ? counters.get(m[1]!) : undefined;
    if (!m || !counter) return sendJson(res, 404, { error: 'not found' });
    const id = m[1]!;
    if (req.method === 'GET') return sendJson(res, 200, { id, value: counter.value, version: counter.version }, { ETag: `"${counter.version}"` });
    if (req.method !== 'PUT') return sendJson(res, 405, { error: 'method not allowed' });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      void (async () => {
        const { value } = JSON.parse(text) as { value: number };
        const nth = ++received;
        // The slow part of a write (a database round trip): the race window.
        await sleep(o.writeDelayMs);
        if (o.failEvery > 0 && nth % o.failEvery === 0) {
          declined++;
          // Nothing changed, but a claim-mode lease was taken for this write: give it back.
          await o.publish?.(id, counter.version);
          return sendJson(res, 503, { error: 'declined' });
        }
        // No If-Match check here, on purpose: that is what the gate is in front for.
        counter.value = value;
        counter.version += 1;
        applied++;
        await o.publish?.(id, counter.version);
        sendJson(res, 200, { id, value: counter.value, version: counter.version }, { ETag: `"${counter.version}"` });
      })().catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counters,
    applied: () => applied,
    declined: () => declined,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The gate, in-process (createDeps + startServer on ephemeral ports).

const SECRET = 'lost-update-sim-secret-0123456789abcdef';
const ADMIN_TOKEN = 'lost-update-admin-token';

/** The YAML of the store mode a `store` option names. */
function storeMode(store: string): string {
  return store.startsWith('cluster:') ? `cluster: { nodes: ${JSON.stringify(store.slice('cluster:'.length).split(','))} }` : `url: "${store}"`;
}

/** Deletes the run's keys: on the one node, or on every master of a cluster. */
async function cleanup(store: string, prefix: string): Promise<void> {
  const nodes = store.startsWith('cluster:') ? store.slice('cluster:'.length).split(',') : null;
  if (!nodes) {
    const redis = new Redis(store, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await flushPrefix(redis, prefix);
    } finally {
      redis.disconnect();
    }
    return;
  }
  const cluster = new Cluster(nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })), { lazyConnect: true });
  try {
    await cluster.connect();
    // DEL per key: the keys of one run live on every master (and on many slots).
    for (const master of cluster.nodes('master')) {
      let cursor = '0';
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        for (const k of keys) await cluster.del(k);
      } while (cursor !== '0');
    }
  } finally {
    cluster.disconnect();
  }
}

async function startGate(o: { claim: boolean; store: string; prefix: string; lease: string }): Promise<RunningServer> {
  const yaml = `
server: { port: 0, adminPort: 0, host: 127.0.0.1, trustedProxies: ["127.0.0.0/8", "::1/128"] }
store: { ${storeMode(o.store)}, keyPrefix: "${o.prefix}" }
auth: { secret: "${SECRET}", algorithms: [HS256] }
conflict:
  claim: { enabled: ${o.claim}, lease: ${o.lease} }
  resources:
    - { path: "/counters/:id", key: "counters:{id}", require: if-match }
`;
  const compiled = await readConfigText(yaml, {});
  if (!compiled.ok) throw new Error(`sim config: ${JSON.stringify(compiled.issues)}`);
  const deps = createDeps(compiled.compiled, { log: createLogger('silent') });
  const server = await startServer(deps, { adminToken: ADMIN_TOKEN });
  if (deps.store.kind === 'redis') {
    for (let i = 0; i < 100 && !deps.store.available(); i++) await sleep(20);
    if (!deps.store.available()) {
      await server.close(100);
      throw new Error(`sim: Redis at ${o.store} does not answer`);
    }
  }
  return server;
}

/** An HS256 token for the sim's gate (node:crypto, no jose needed on the client side). */
async function hsToken(sub: string): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const b64u = (s: string) => Buffer.from(s).toString('base64url');
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }))}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

// ---------------------------------------------------------------------------------------------

/** Runs one mode to completion and reports what was written and what survived. */
export async function runLostUpdate(opts: SimOptions): Promise<SimResult> {
  const random = opts.random ?? Math.random;
  const ids = Array.from({ length: opts.counters }, (_, i) => `c${i + 1}`);
  const prefix = uniquePrefix('lost');
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients * 2 });
  const gate = opts.mode === 'none' ? null : await startGate({ claim: opts.mode === 'claim', store: opts.store, prefix, lease: opts.lease ?? '5s' });
  const adminUrl = gate ? `http://127.0.0.1:${gate.adminPort}` : '';
  const gateUrl = gate ? `http://127.0.0.1:${gate.port}` : '';

  const publish = gate
    ? async (id: string, version: number) => {
        const r = await call(agent, `${adminUrl}/versions/counters:${id}`, 'PUT', { Authorization: `Bearer ${ADMIN_TOKEN}` }, JSON.stringify({ version: String(version) }));
        // 409 stale_publish: a newer version is already published (out-of-order publishes); fine.
        if (r.status !== 200 && r.status !== 409) throw new Error(`publish ${id}@${version}: ${r.status} ${r.body}`);
      }
    : null;
  const upstream = await startUpstream({ ids, writeDelayMs: opts.writeDelayMs, failEvery: opts.failEvery ?? 0, publish });
  if (publish) for (const id of ids) await publish(id, 1);

  const gateDenials: Record<string, number> = {};
  let attempts = 0;
  let gaveUp = 0;

  /** Forward-auth as a proxy does it: the gate sees the original method, URI and headers, no body. */
  const authorize = async (method: string, uri: string, headers: Record<string, string>): Promise<Reply | null> => {
    if (!gate) return null;
    return call(agent, `${gateUrl}/auth`, 'GET', { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'counters.test', ...headers });
  };

  const client = async (c: number) => {
    const auth = { Authorization: `Bearer ${await hsToken(`client-${c}`)}` };
    for (let m = 0; m < opts.increments; m++) {
      const id = ids[(c + m) % ids.length]!;
      const uri = `/counters/${id}`;
      let done = false;
      for (let attempt = 1; attempt <= opts.maxAttempts && !done; attempt++) {
        attempts++;
        if (attempt > 1) await sleep(1 + random() * Math.min(2 * attempt, 20));
        // Read.
        const readAuth = await authorize('GET', uri, auth);
        if (readAuth && readAuth.status !== 200) throw new Error(`gate refused a read: ${readAuth.status} ${readAuth.body}`);
        const read = await call(agent, upstream.url + uri, 'GET', auth);
        if (read.status !== 200) throw new Error(`upstream GET ${uri}: ${read.status}`);
        const { value, version } = JSON.parse(read.body) as { value: number; version: number };
        // Modify, write with the version read.
        const headers = { ...auth, 'If-Match': `"${version}"` };
        const writeAuth = await authorize('PUT', uri, headers);
        if (writeAuth && writeAuth.status !== 200) {
          let code = '';
          try {
            code = (JSON.parse(writeAuth.body) as { code?: string }).code ?? '';
          } catch {
            code = 'unparsable';
          }
          const k = `${writeAuth.status} ${code}`;
          gateDenials[k] = (gateDenials[k] ?? 0) + 1;
          if (writeAuth.status === 409 || writeAuth.status === 412) continue;
          throw new Error(`gate refused a write: ${k}`);
        }
        const write = await call(agent, upstream.url + uri, 'PUT', headers, JSON.stringify({ value: value + 1 }));
        if (write.status === 200) done = true;
        else if (write.status !== 503) throw new Error(`upstream PUT ${uri}: ${write.status} ${write.body}`);
      }
      if (!done) gaveUp++;
    }
  };

  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  } finally {
    await upstream.close();
    await gate?.close(1000);
    agent.destroy();
    if (opts.store !== 'memory' && gate) {
      // Best effort: the keys are tiny and prefixed.
      await cleanup(opts.store, prefix).catch(() => undefined);
    }
  }
  const durationMs = Math.round(performance.now() - t0);
  const perCounter = ids.map((id) => ({ id, ...upstream.counters.get(id)! }));
  const finalSum = perCounter.reduce((a, c) => a + c.value, 0);
  const successfulWrites = upstream.applied();
  return {
    mode: opts.mode,
    clients: opts.clients,
    increments: opts.increments,
    counters: opts.counters,
    successfulWrites,
    finalSum,
    lost: successfulWrites - finalSum,
    gaveUp,
    declined: upstream.declined(),
    gateDenials,
    attempts,
    durationMs,
    perCounter,
  };
}

/** One line per mode, for the CLI and test logs. */
export function describeResult(r: SimResult): string {
  const denials = Object.entries(r.gateDenials)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  return `${r.mode.padEnd(5)} writes ok ${String(r.successfulWrites).padStart(4)}  final sum ${String(r.finalSum).padStart(4)}  lost ${String(r.lost).padStart(4)}  gave up ${r.gaveUp}  declined ${r.declined}  attempts ${r.attempts}  ${r.durationMs} ms${denials ? `  gate denials {${denials}}` : ''}`;
}
