// Composition root: compiled config → store → gates → apps → listeners; SIGTERM drains and exits.
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Compiled } from './config/compile.js';
import type { ConfigIssue, ReadResult } from './config/read.js';
import type { ForwardedOptions } from './core/forwarded.js';
import { memoNormalizer } from './core/paths.js';
import { AuthGate } from './gates/auth/gate.js';
import { TokenVerifier } from './gates/auth/verify.js';
import { ConflictGate } from './gates/conflict/gate.js';
import { RateLimitGate } from './gates/ratelimit/limiter.js';
import { createAdminApp } from './http/admin-app.js';
import { clientErrorHandler, MAX_HEADER_BYTES } from './http/client-error.js';
import { createGateListener, type GateAppDeps } from './http/gate-app.js';
import { failClosedModes, readinessOf, type ReadinessReport } from './http/health.js';
import { createMetricsApp } from './http/metrics-app.js';
import { ReplayCache } from './http/replay.js';
import { activityOf, recordActivity } from './obs/activity.js';
import { droppedLines, type Logger } from './obs/log.js';
import { Metrics } from './obs/metrics.js';
import { DecisionRecorder } from './obs/recorder.js';
import type { Gates } from './pipeline.js';
import { createStore } from './store/create.js';
import type { VersionStore } from './store/port.js';

/**
 * What a config builds: its gates and verifier. A reload builds a new generation and swaps it in;
 * a request runs on the generation it started with.
 */
export interface Generation {
  compiled: Compiled;
  /** First 12 hex digits of the SHA-256 of the config file (conflict_gate_config_info). */
  sha256: string;
  verifier: TokenVerifier;
  gates: Gates;
  forwarded: ForwardedOptions;
  replay: ReplayCache;
  /** conflict.versionTtl: versions published through the admin API expire unless published again within it. */
  versionTtlMs: number | undefined;
}

export type ReloadOutcome = { ok: true; sha256: string; changed: boolean } | { ok: false; issues: ConfigIssue[] };

/**
 * The running gate: what lives as long as the process (store, metrics, log) and the current
 * generation of what the config builds (`compiled`, `gates`, `verifier` read the current one).
 */
export class Deps {
  private gen: Generation;

  constructor(
    readonly store: VersionStore,
    readonly metrics: Metrics,
    readonly log: Logger,
    readonly now: () => number,
    first: Generation,
  ) {
    this.gen = first;
    metrics.configLoaded(first.sha256);
    metrics.observe({
      storeUp: () => store.health().up,
      degraded: () => this.ready().status === 'degraded',
      verifier: () => this.gen.verifier,
      logLinesDropped: () => droppedLines(log),
    });
  }

  get generation(): Generation {
    return this.gen;
  }
  get compiled(): Compiled {
    return this.gen.compiled;
  }
  get gates(): Gates {
    return this.gen.gates;
  }
  get verifier(): TokenVerifier {
    return this.gen.verifier;
  }
  get replay(): ReplayCache {
    return this.gen.replay;
  }

  /** /readyz: ready, degraded (the store is down, every fail mode fails open) or not ready (http/health.ts), with the store's reason. */
  readonly ready = (): ReadinessReport => {
    const health = this.store.health();
    return readinessOf(health.up, this.gen.verifier.ready, failClosedModes(this.gen.compiled), health.reason);
  };

  /**
   * Swaps in the generation a newly read config builds, for requests that start from now on.
   * Refused (the running config stays) when the config is invalid, when it changes what only a
   * restart can change (listeners, the store connection), or when its signing keys cannot be loaded.
   * Rate-limit counts and leases live in the store and carry on; so do the in-memory limits of a store
   * outage (`onStoreError: memory`), handed from the old generation to the new one.
   */
  async reload(read: ReadResult): Promise<ReloadOutcome> {
    const outcome = await this.tryReload(read);
    this.metrics.configReload(outcome.ok ? 'ok' : 'error');
    if (outcome.ok) {
      this.metrics.configLoaded(outcome.sha256);
      this.log.info({ sha256: outcome.sha256, changed: outcome.changed }, 'config reloaded');
    } else {
      for (const i of outcome.issues) this.log.error({ field: i.path, problem: i.message }, `config reload refused: ${i.path}: ${i.message}`);
    }
    return outcome;
  }

  private async tryReload(read: ReadResult): Promise<ReloadOutcome> {
    if (!read.ok) return read;
    const restart = needsRestart(this.gen.compiled, read.compiled);
    if (restart.length > 0) return { ok: false, issues: restart };
    const next = buildGeneration(read.compiled, read.sha256, this.store, this.metrics, this.log, this.now, this.gen, () => this.gen.verifier);
    next.verifier.start();
    // Keys first: a generation that cannot verify a token is not swapped in.
    const until = this.now() + Math.max(read.compiled.auth.jwksTimeoutMs, 1000);
    while (!next.verifier.ready && this.now() < until) await new Promise((r) => setTimeout(r, 20));
    if (!next.verifier.ready) {
      next.verifier.close();
      return { ok: false, issues: [{ path: 'auth.jwksUrl', message: 'the signing keys could not be loaded; keeping the running config' }] };
    }
    const previous = this.gen;
    this.gen = next;
    // Requests in flight may still be verifying on the old generation: close it once they are done.
    setTimeout(() => previous.verifier.close(), previous.compiled.auth.jwksTimeoutMs + 1000).unref();
    return { ok: true, sha256: read.sha256, changed: previous.sha256 !== read.sha256 };
  }

  async close(): Promise<void> {
    this.gen.verifier.close();
    await this.store.close();
  }
}

/**
 * The server settings read only when the listeners start (startServer, listenOn, and serve.ts's
 * config watcher), each with the file's name for it; a reload that changes one would answer "ok" and
 * change nothing. The rest of `server` (trustedProxies, paths, methodOverride, logAllows, replayTtl)
 * is read per request from the generation, so a reload applies it.
 */
const SERVER_AT_START: readonly (readonly [keyof Compiled['server'], string])[] = [
  ['port', 'port'],
  ['adminPort', 'adminPort'],
  ['metricsPort', 'metricsPort'],
  ['host', 'host'],
  // `host: "::"` written out listens on :: alone; unset, it falls back to 0.0.0.0 without IPv6.
  ['dualStack', 'host'],
  ['idleTimeoutMs', 'idleTimeout'],
  ['watchConfig', 'watchConfig'],
];

/** What a running gate cannot take from a reload: the listeners and the store connection. */
export function needsRestart(running: Compiled, next: Compiled): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const why = 'changed; this needs a restart (the running config stays)';
  const named = new Set<string>();
  for (const [k, field] of SERVER_AT_START) {
    if (running.server[k] === next.server[k] || named.has(field)) continue;
    named.add(field);
    issues.push({ path: `server.${field}`, message: why });
  }
  for (const [k, v] of Object.entries(next.store)) {
    // `mode` follows from url / cluster / sentinel, each reported by its own name.
    if (k === 'mode') continue;
    if (JSON.stringify(v) !== JSON.stringify((running.store as unknown as Record<string, unknown>)[k])) issues.push({ path: `store.${STORE_FIELD[k] ?? k}`, message: why });
  }
  return issues;
}

/** The config file's name of a compiled store setting, where they differ. */
const STORE_FIELD: Record<string, string> = { commandTimeoutMs: 'commandTimeout', connectTimeoutMs: 'connectTimeout' };

/**
 * `previous`: the generation a reload replaces, whose in-memory state the new one takes over where it
 * still applies; `serving`: the verifier requests use now (a reload's new one only once swapped in).
 */
function buildGeneration(compiled: Compiled, sha256: string, store: VersionStore, metrics: Metrics, log: Logger, now: () => number, previous?: Generation, serving?: () => TokenVerifier): Generation {
  const a = compiled.auth;
  const verifier: TokenVerifier = new TokenVerifier({
    ...a,
    now,
    // A reload with the same JWKS URL takes over the keys already loaded: no wait, no refusal while the IdP is down.
    previous: previous?.verifier,
    onJwksRefresh: (result, message) => {
      metrics.jwksRefresh(result);
      if (result !== 'error') return;
      // Say what actually happens. Until a set with keys has loaded (an IdP down at boot), there are
      // no keys to keep: every bearer token gets a 401 invalid_token ("signing keys are not
      // available"; public routes still pass). A reload's verifier without keys is not serving yet:
      // the running config goes on, and the reload is refused unless its keys load in time.
      if (verifier.ready) log.warn({ reason: message }, 'JWKS fetch failed; keeping the keys already loaded');
      else if (serving && serving() !== verifier) log.warn({ reason: message }, 'JWKS fetch failed for the config being reloaded; the running config keeps serving');
      else log.warn({ reason: message }, 'JWKS fetch failed; no keys loaded yet: every bearer token is refused (401 invalid_token) until a fetch succeeds');
    },
  });
  const gates: Gates = {
    auth: new AuthGate(a, verifier),
    // The per-replica limits of a store outage live in the gate: the new one carries them on for the rules that did not change.
    rateLimit: new RateLimitGate({ rules: compiled.rateLimit.rules, onStoreError: compiled.rateLimit.onStoreError, ipv6Subnet: compiled.rateLimit.ipv6Subnet, store, metrics, now }, previous?.gates.rateLimit),
    conflict: new ConflictGate({ conflict: compiled.conflict, store, metrics }),
  };
  return { compiled, sha256, verifier, gates, forwarded: forwardedOptions(compiled), replay: new ReplayCache(store, compiled.server.replayTtlMs, now), versionTtlMs: compiled.conflict.versionTtlMs };
}

/** Builds the whole object graph without listening: what `serve` runs and what tests drive with app.request. */
export function createDeps(compiled: Compiled, opts: { log: Logger; store?: VersionStore; now?: () => number; metrics?: Metrics; sha256?: string }): Deps {
  const now = opts.now ?? Date.now;
  const metrics = opts.metrics ?? new Metrics();
  const log = opts.log;
  const store = opts.store ?? createStore(compiled.store, { now, log, onConnectionError: rateLimitedWarn(log, 'store connection error', 10_000) });
  return new Deps(store, metrics, log, now, buildGeneration(compiled, opts.sha256 ?? '', store, metrics, log, now));
}

/** How the original request is read from a proxy's headers, per the config. */
export function forwardedOptions(compiled: Compiled): ForwardedOptions {
  const s = compiled.server;
  return { classifyIp: s.classifyIp, paths: s.paths, normalize: memoNormalizer(s.paths), methodOverride: s.methodOverride };
}

export interface AppOptions {
  adminToken: string | undefined;
  extra?: GateAppDeps['extra'];
  /** Re-reads the config file (POST /reload); absent when there is none. */
  reload?: () => Promise<ReloadOutcome>;
}

export function createApps(deps: Deps, opts: AppOptions) {
  const { app: gate, listener: gateListener } = createGateListener({
    current: () => deps.generation,
    // The console's activity is noted in the same record() call that counts /metrics.
    recorder: recordActivity(new DecisionRecorder(deps.metrics, deps.log, { allowSample: () => deps.compiled.server.logAllows }), activityOf(deps.metrics, deps.now)),
    log: deps.log,
    ready: deps.ready,
    extra: opts.extra,
  });
  const admin = createAdminApp({ store: deps.store, metrics: deps.metrics, log: deps.log, adminToken: opts.adminToken, ready: deps.ready, current: () => deps.generation, reload: opts.reload });
  return { gate, gateListener, admin };
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
  /** The metrics listener's port, when server.metricsPort is set. */
  metricsPort?: number;
  deps: Deps;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the store. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Traefik's forwardAuth client keeps idle keep-alive connections for 90 s (Go's default transport)
 * and cannot be told otherwise; Node closes them after 5 s, so Traefik could reuse a socket the
 * gate has just closed (a 500 on an auth call that is not a GET). Keep them 95 s, headers 96 s.
 */
export const KEEP_ALIVE_MS = 95_000;
export const HEADERS_TIMEOUT_MS = 96_000;

/**
 * Listens at `host`; with `dualStack` (HOST not set, so `::`, which takes IPv6 and IPv4 clients
 * alike) it falls back to 0.0.0.0 on a machine without IPv6 (a kernel booted with ipv6.disable=1).
 */
export async function withIpv4Fallback<T>(listenAt: (host: string) => Promise<T>, host: string, dualStack: boolean): Promise<T> {
  try {
    return await listenAt(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (dualStack && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) return listenAt('0.0.0.0');
    throw err;
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface ListenerOptions {
  /** server.idleTimeout: a connection that has sent no byte within this is closed. */
  firstByteMs: number;
  /** Overrides Node's 16 KiB limit on a request's header bytes. */
  maxHeaderSize?: number;
  /** Answers a request Node's parser refused (headers over the limit, malformed HTTP) in place of Node. */
  onClientError?: (err: NodeJS.ErrnoException, socket: Duplex) => void;
}

/** A listener that could not start says which one it was (`cannot listen on [::]:9090 (the admin listener, ADMIN_PORT)`). */
function listen(handler: Handler, port: number, host: string, opts: ListenerOptions, dualStack: boolean, listener: string): Promise<Server> {
  return withIpv4Fallback((h) => listenOn(handler, port, h, opts), host, dualStack).catch((err: unknown) => {
    if (err && typeof err === 'object') (err as { listener?: string }).listener = listener;
    throw err;
  });
}

function listenOn(handler: Handler, port: number, host: string, { firstByteMs, maxHeaderSize, onClientError }: ListenerOptions): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: HEADERS_TIMEOUT_MS, ...(maxHeaderSize === undefined ? {} : { maxHeaderSize }) }, handler);
    if (onClientError) server.on('clientError', onClientError);
    server.listen(port, host, () => resolve(server));
    // A connection that sends nothing at all is closed after server.idleTimeout: held open, such
    // connections would starve new ones of file descriptors (Node's own timeouts start at the first byte).
    server.on('connection', (socket: Socket) => {
      const timer = setTimeout(() => {
        if (socket.bytesRead === 0) socket.destroy();
      }, firstByteMs);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
    server.once('error', reject);
  });
}

/** Starts both listeners. Redis down at boot is not fatal: /readyz says 503 until it answers. */
export async function startServer(deps: Deps, opts: AppOptions): Promise<RunningServer> {
  const { gateListener, admin } = createApps(deps, opts);
  const honoHandler = (app: Hono<any>): Handler => getRequestListener(app.fetch) as Handler;
  const { port, adminPort, metricsPort, host, dualStack, idleTimeoutMs } = deps.compiled.server;
  deps.verifier.start();
  const servers: Server[] = [];
  // Proxies send /auth every header of the client's request: the main listener reads up to
  // MAX_HEADER_BYTES of them and answers more with a problem+json 431 (http/client-error.ts).
  const gateOpts: ListenerOptions = { firstByteMs: idleTimeoutMs, maxHeaderSize: MAX_HEADER_BYTES, onClientError: clientErrorHandler(deps.metrics, deps.log) };
  const otherOpts: ListenerOptions = { firstByteMs: idleTimeoutMs };
  try {
    servers.push(await listen(gateListener, port, host, gateOpts, dualStack, 'the main listener, PORT'));
    servers.push(await listen(honoHandler(admin), adminPort, host, otherOpts, dualStack, 'the admin listener, ADMIN_PORT'));
    // /metrics on its own port: a NetworkPolicy can open it to Prometheus without the versions API.
    if (metricsPort !== undefined) servers.push(await listen(honoHandler(createMetricsApp(deps.metrics)), metricsPort, host, otherOpts, dualStack, 'the metrics listener, server.metricsPort'));
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  const [main, adminServer, metricsServer] = servers as [Server, Server, Server | undefined];
  const portOf = (s: Server) => (s.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port: portOf(main),
    adminPort: portOf(adminServer),
    metricsPort: metricsServer ? portOf(metricsServer) : undefined,
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
