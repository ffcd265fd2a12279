// Composition root: compiled config → store → gates → apps → listeners; SIGTERM drains and exits.
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import type { Compiled } from './config/compile.js';
import { AuthGate } from './gates/auth/gate.js';
import { TokenVerifier } from './gates/auth/verify.js';
import { ConflictGate } from './gates/conflict/gate.js';
import { RateLimitGate } from './gates/ratelimit/limiter.js';
import { createAdminApp } from './http/admin-app.js';
import { createGateApp, type GateAppDeps } from './http/gate-app.js';
import { ReplayCache } from './http/replay.js';
import type { Logger } from './obs/log.js';
import { Metrics } from './obs/metrics.js';
import type { Gates } from './pipeline.js';
import { MemoryStore } from './store/memory.js';
import type { VersionStore } from './store/port.js';
import { RedisStore } from './store/redis.js';

export interface Deps {
  compiled: Compiled;
  store: VersionStore;
  verifier: TokenVerifier;
  gates: Gates;
  metrics: Metrics;
  log: Logger;
  replay: ReplayCache;
  now: () => number;
  ready: () => { ready: boolean; checks: Record<string, boolean> };
}

/** Builds the whole object graph without listening: what `serve` runs and what tests drive with app.request. */
export function createDeps(compiled: Compiled, opts: { log: Logger; store?: VersionStore; now?: () => number; metrics?: Metrics }): Deps {
  const now = opts.now ?? Date.now;
  const metrics = opts.metrics ?? new Metrics();
  const log = opts.log;
  const store =
    opts.store ??
    (compiled.store.url === 'memory'
      ? new MemoryStore(now)
      : new RedisStore({
          url: compiled.store.url,
          keyPrefix: compiled.store.keyPrefix,
          commandTimeoutMs: compiled.store.commandTimeoutMs,
          connectTimeoutMs: compiled.store.connectTimeoutMs,
          onConnectionError: rateLimitedWarn(log, 'store connection error', 10_000),
        }));
  const a = compiled.auth;
  const verifier = new TokenVerifier({
    ...a,
    now,
    onJwksRefresh: (result, message) => {
      metrics.jwksRefresh(result);
      if (result === 'error') log.warn({ reason: message }, 'JWKS fetch failed; keeping the keys already loaded');
    },
  });
  const gates: Gates = {
    auth: new AuthGate(a, verifier),
    rateLimit: new RateLimitGate({ rules: compiled.rateLimit.rules, onStoreError: compiled.rateLimit.onStoreError, ipv6Subnet: compiled.rateLimit.ipv6Subnet, store, metrics }),
    conflict: new ConflictGate({
      resources: compiled.conflict.resources,
      policy: { ifMatchStatus: compiled.conflict.ifMatchStatus, unknownResource: compiled.conflict.unknownResource, onStoreError: compiled.conflict.onStoreError },
      claim: compiled.conflict.claim,
      store,
      metrics,
    }),
  };
  const ready = () => {
    const checks = { store: store.health().up, keys: verifier.ready };
    metrics.storeUp.set(checks.store ? 1 : 0);
    return { ready: checks.store && checks.keys, checks };
  };
  return { compiled, store, verifier, gates, metrics, log, replay: new ReplayCache(store, compiled.server.replayTtlMs, now), now, ready };
}

export function createApps(deps: Deps, opts: { adminToken: string | undefined; extra?: GateAppDeps['extra'] }) {
  const gate = createGateApp({
    gates: deps.gates,
    forwarded: { classifyIp: deps.compiled.server.classifyIp, paths: deps.compiled.server.paths, methodOverride: deps.compiled.server.methodOverride },
    replay: deps.replay,
    metrics: deps.metrics,
    log: deps.log,
    ready: deps.ready,
    extra: opts.extra,
  });
  const admin = createAdminApp({ store: deps.store, metrics: deps.metrics, log: deps.log, adminToken: opts.adminToken, ready: deps.ready });
  return { gate, admin };
}

function rateLimitedWarn(log: Logger, msg: string, everyMs: number) {
  let last = 0;
  return (message: string) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    log.warn({ reason: message }, msg);
  };
}

export interface RunningServer {
  port: number;
  adminPort: number;
  deps: Deps;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the store. */
  close(graceMs?: number): Promise<void>;
}

function listen(app: Hono<any>, port: number, host: string): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(server));
    server.once('error', reject);
  });
}

/** Starts both listeners. Redis down at boot is not fatal: /readyz says 503 until it answers. */
export async function startServer(deps: Deps, opts: { adminToken: string | undefined; extra?: GateAppDeps['extra'] }): Promise<RunningServer> {
  const { gate, admin } = createApps(deps, opts);
  const { port, adminPort, host } = deps.compiled.server;
  deps.verifier.start();
  const main = await listen(gate, port, host);
  let adminServer: ServerType;
  try {
    adminServer = await listen(admin, adminPort, host);
  } catch (err) {
    main.close();
    throw err;
  }
  const servers = [main, adminServer];
  const portOf = (s: ServerType) => (s.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port: portOf(main),
    adminPort: portOf(adminServer),
    deps,
    close(graceMs = 8000) {
      closing ??= (async () => {
        const http = servers as unknown as { closeIdleConnections(): void; closeAllConnections(): void }[];
        const drained = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        // A keep-alive connection whose request finishes after close() turns idle, not closed:
        // sweep idle connections until the last in-flight request is done, then cut the rest.
        const sweep = setInterval(() => http.forEach((s) => s.closeIdleConnections()), 50);
        const hard = setTimeout(() => http.forEach((s) => s.closeAllConnections()), graceMs);
        hard.unref();
        http.forEach((s) => s.closeIdleConnections());
        await drained;
        clearInterval(sweep);
        clearTimeout(hard);
        deps.verifier.close();
        await deps.store.close();
      })();
      return closing;
    },
  };
}
