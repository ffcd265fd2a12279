// Prometheus metrics, one `conflict_gate_` prefix, named after decisions; the same codes as logs and problem bodies.
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TalliedHistogram } from './latency.js';

/** Every metric the gate defines starts with this (CONTRACT.md, "Added in the second round"). */
export const PREFIX = 'conflict_gate_';

/** How a rate-limit rule's answer ended, counted once per /auth request (see `rateLimitDecision`). */
export type RateLimitOutcome = 'allowed' | 'denied_later' | 'limited' | 'shadow_limited' | 'store_error';

/** What a TokenVerifier tells the metrics: the auth helper's `stats()` (issue 11), when the verifier has it. */
export interface VerifierStats {
  /** Keys currently loaded. */
  keys: number;
  /** Epoch ms of the last successful JWKS fetch (for a file, a PEM key or a secret: when it was loaded). */
  lastSuccessAt: number | undefined;
  /** verify() calls answered from the token cache, and those that were not. */
  cacheHits: number;
  cacheMisses: number;
}

/** The part of a verifier the metrics read: `stats()` is optional so a verifier without it still serves. */
export interface VerifierView {
  readonly ready: boolean;
  stats?(): VerifierStats;
}

/** Where the gauges read the state of the running gate, at scrape time. */
export interface MetricSources {
  /** The store answers. */
  storeUp(): boolean;
  /** Serving, but on the store fail modes (the store is down and every gate fails open). */
  degraded(): boolean;
  /** The verifier of the running config (a reload swaps it). */
  verifier(): VerifierView;
  /** Log lines dropped so far because stdout was too slow. */
  logLinesDropped(): number;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * A per-request count kept as a plain number and added to its prom-client counter when the counter
 * is read (its collect hook): prom-client's inc() hashes the labels into a fresh string on every
 * call, which on /auth's path was a string and a closure per request for each counter. Nothing
 * resets these counters (a reset would have to zero the tallies too).
 */
class Tally {
  n = 0;

  constructor(private readonly child: Counter.Internal) {}

  flush(): void {
    if (this.n === 0) return;
    this.child.inc(this.n);
    this.n = 0;
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly decisions: Counter<'outcome' | 'gate' | 'code'>;
  private readonly shadow: Counter<'gate' | 'code'>;
  private readonly rateLimit: Counter<'rule' | 'outcome'>;
  private readonly insurance: Counter<'rule'>;
  private readonly conflict: Counter<'rule' | 'code'>;
  private readonly versionHeals: Counter<'rule'>;
  private readonly storeErrors: Counter<'store' | 'op' | 'code'>;
  private readonly jwks: Counter<'result'>;
  private readonly tokenCache: Counter<'result'>;
  private readonly publishes: Counter<'result'>;
  private readonly replays: Counter<'result'>;
  private readonly reloads: Counter<'result'>;
  private readonly configInfo: Gauge<'sha256'>;
  private readonly logDropped: Counter;
  // Label children resolved once: prom-client hashes the labels on every call otherwise.
  private readonly children = new WeakMap<Counter<string>, Map<string, Counter.Internal>>();
  private readonly allowLatency: (seconds: number) => void;
  private readonly denyLatency: (seconds: number) => void;
  private sources: MetricSources | undefined;
  /** Epoch ms of the last JWKS fetch that worked, as told by jwksRefresh (a verifier without stats()). */
  private jwksOkAt: number | undefined;
  /** Counters read from verifier stats: what was already added, per verifier (a reload brings a new one). */
  private readonly seenStats = new WeakMap<object, { hits: number; misses: number }>();
  private droppedSeen = 0;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const self = this;
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({
      name: `${PREFIX}decisions_total`,
      help: 'Answers to /auth: outcome allow (gate and code empty) or deny (the gate and code that denied). A replay served from a kept denial is not a decision.',
      labelNames: ['outcome', 'gate', 'code'],
      registers,
      collect() {
        self.flushTallies(this);
      },
    });
    this.shadow = new Counter({ name: `${PREFIX}shadow_denials_total`, help: 'Denials that shadow mode turned into allows, by gate and code.', labelNames: ['gate', 'code'], registers });
    // Observed once per decision: counted as plain numbers (obs/latency.ts), same exposition.
    const latency = new TalliedHistogram<'allow' | 'deny'>(`${PREFIX}request_duration_seconds`, 'Time to answer /auth, by outcome.', 'outcome', [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]).registerIn(this.registry);
    this.allowLatency = latency.labels('allow');
    this.denyLatency = latency.labels('deny');
    this.rateLimit = new Counter({
      name: `${PREFIX}ratelimit_decisions_total`,
      help: 'Requests a rate-limit rule applied to, by how they ended: allowed (the request was let through), denied_later (the rule let it through, a later gate refused it), limited (429), shadow_limited (over the limit, let through by shadow mode), store_error (the store failed and onStoreError allow or deny decided; under onStoreError memory the per-replica limit decides and its allowed / limited are counted here, each also in ratelimit_insurance_total).',
      labelNames: ['rule', 'outcome'],
      registers,
      collect() {
        self.flushTallies(this);
      },
    });
    this.insurance = new Counter({ name: `${PREFIX}ratelimit_insurance_total`, help: 'Rate-limit answers the per-replica in-memory limiter gave while the store was down.', labelNames: ['rule'], registers });
    this.conflict = new Counter({ name: `${PREFIX}conflict_denials_total`, help: 'Writes the conflict gate refused, by resource rule (its path pattern) and code.', labelNames: ['rule', 'code'], registers });
    this.versionHeals = new Counter({ name: `${PREFIX}version_heals_total`, help: 'Writes let through because their If-Match / Client-Version names an ordered version newer than the cached one (the cache was behind), by resource rule.', labelNames: ['rule'], registers });
    this.storeErrors = new Counter({ name: `${PREFIX}store_errors_total`, help: 'Store failures by store, operation and code.', labelNames: ['store', 'op', 'code'], registers });
    new Gauge({
      name: `${PREFIX}store_up`,
      help: '1 when the store answers, else 0.',
      registers,
      collect() {
        if (self.sources) this.set(self.sources.storeUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}degraded`,
      help: '1 while the gate serves on its store fail modes (the store is down and every onStoreError fails open; /readyz says "degraded"), else 0.',
      registers,
      collect() {
        if (self.sources) this.set(self.sources.degraded() ? 1 : 0);
      },
    });
    this.jwks = new Counter({ name: `${PREFIX}jwks_refresh_total`, help: 'Remote JWKS fetches by result (ok, error).', labelNames: ['result'], registers });
    new Gauge({
      name: `${PREFIX}jwks_last_success_timestamp_seconds`,
      help: 'When the signing keys were last fetched (remote JWKS) or loaded (file, PEM key, secret), as a Unix time.',
      registers,
      collect() {
        const at = self.verifierStats()?.lastSuccessAt ?? self.jwksOkAt;
        if (at !== undefined) this.set(at / 1000);
      },
    });
    new Gauge({
      name: `${PREFIX}jwks_keys`,
      help: 'Signing keys currently loaded.',
      registers,
      collect() {
        const s = self.verifierStats();
        if (s) this.set(s.keys);
      },
    });
    this.tokenCache = new Counter({
      name: `${PREFIX}token_cache_total`,
      help: 'Bearer tokens looked up in the verified-token cache: hit (no signature check) or miss.',
      labelNames: ['result'],
      registers,
      collect() {
        self.collectTokenCache();
      },
    });
    this.publishes = new Counter({ name: `${PREFIX}publish_total`, help: 'Version publishes through the admin API: ok, stale (refused, 409), error (store failed).', labelNames: ['result'], registers });
    this.replays = new Counter({
      name: `${PREFIX}replays_total`,
      help: "Replays of the nginx protocol: served (from the kept first answer; not counted again as a decision) or evaluated (nothing was kept: decided like any request).",
      labelNames: ['result'],
      registers,
    });
    this.reloads = new Counter({ name: `${PREFIX}config_reloads_total`, help: 'Config reloads (SIGHUP, POST /reload, --watch) by result.', labelNames: ['result'], registers });
    this.configInfo = new Gauge({ name: `${PREFIX}config_info`, help: 'The running config: sha256 is the first 12 hex digits of the SHA-256 of its bytes.', labelNames: ['sha256'], registers });
    const build = new Gauge({ name: `${PREFIX}build_info`, help: 'The running build: package version and Node.js version.', labelNames: ['version', 'node'], registers });
    build.labels(packageVersion(), process.versions.node).set(1);
    this.logDropped = new Counter({
      name: `${PREFIX}log_lines_dropped_total`,
      help: 'Log lines dropped because stdout did not keep up (the log buffer is bounded).',
      registers,
      collect() {
        if (!self.sources) return;
        const n = self.sources.logLinesDropped();
        if (n > self.droppedSeen) this.inc(n - self.droppedSeen);
        self.droppedSeen = Math.max(self.droppedSeen, n);
      },
    });
    // Series that exist from the start, so a dashboard and an alert see 0 rather than nothing.
    this.decisions.labels('allow', '', '').inc(0);
    this.logDropped.inc(0);
    for (const r of ['ok', 'error'] as const) {
      this.reloads.labels(r).inc(0);
      this.jwks.labels(r).inc(0);
    }
    for (const r of ['hit', 'miss'] as const) this.tokenCache.labels(r).inc(0);
    for (const r of ['ok', 'stale', 'error'] as const) this.publishes.labels(r).inc(0);
    for (const r of ['served', 'evaluated'] as const) this.replays.labels(r).inc(0);
  }

  /** Connects the gauges to the running gate (its store, readiness, verifier, logger). */
  observe(sources: MetricSources): void {
    this.sources = sources;
  }

  private verifierStats(): VerifierStats | undefined {
    const v = this.sources?.verifier();
    return v && typeof v.stats === 'function' ? v.stats() : undefined;
  }

  private collectTokenCache(): void {
    const v = this.sources?.verifier();
    if (!v || typeof v.stats !== 'function') return;
    const s = v.stats();
    const seen = this.seenStats.get(v) ?? { hits: 0, misses: 0 };
    if (s.cacheHits > seen.hits) this.tokenCache.labels('hit').inc(s.cacheHits - seen.hits);
    if (s.cacheMisses > seen.misses) this.tokenCache.labels('miss').inc(s.cacheMisses - seen.misses);
    this.seenStats.set(v, { hits: Math.max(seen.hits, s.cacheHits), misses: Math.max(seen.misses, s.cacheMisses) });
  }

  private inc(counter: Counter<string>, ...labels: string[]): void {
    let byLabels = this.children.get(counter);
    if (!byLabels) this.children.set(counter, (byLabels = new Map()));
    const k = labels.join('\0');
    let child = byLabels.get(k);
    if (!child) byLabels.set(k, (child = counter.labels(...labels)));
    child.inc();
  }

  /** The tallies of the per-request counters, by counter (flushed by its collect hook). */
  private readonly tallies = new Map<Counter<string>, Tally[]>();

  private flushTallies(counter: Counter<string>): void {
    for (const t of this.tallies.get(counter) ?? []) t.flush();
  }

  private tally(counter: Counter<string>, ...labels: string[]): Tally {
    const t = new Tally(counter.labels(...labels));
    const list = this.tallies.get(counter);
    if (list) list.push(t);
    else this.tallies.set(counter, [t]);
    return t;
  }

  /**
   * The tally of the series with labels (`lead`,) `a`, `b`, found by `a` then `b` without building
   * a key (the per-request counters; `lead` is the same for every series of one cache).
   */
  private tally2(cache: Map<string, Map<string, Tally>>, counter: Counter<string>, a: string, b: string, lead?: string): Tally {
    let byB = cache.get(a);
    if (!byB) cache.set(a, (byB = new Map()));
    let t = byB.get(b);
    if (!t) byB.set(b, (t = lead === undefined ? this.tally(counter, a, b) : this.tally(counter, lead, a, b)));
    return t;
  }
  private readonly denyTallies = new Map<string, Map<string, Tally>>();
  private readonly rateLimitTallies = new Map<string, Map<string, Tally>>();
  private allowTally: Tally | undefined;

  /** One answered /auth request: an allow (gate and code empty), or the denial that answered it. */
  decision(outcome: 'allow' | 'deny', gate = '', code = ''): void {
    if (outcome === 'allow') (this.allowTally ??= this.tally(this.decisions, 'allow', '', '')).n++;
    else this.tally2(this.denyTallies, this.decisions, gate, code, 'deny').n++;
  }

  shadowDenial(gate: string, code: string): void {
    this.inc(this.shadow, gate, code);
  }

  observeLatency(outcome: 'allow' | 'deny', seconds: number): void {
    (outcome === 'allow' ? this.allowLatency : this.denyLatency)(seconds);
  }

  /** How a request a rate-limit rule applied to ended (once per request, never for explain). */
  rateLimitDecision(rule: string, outcome: RateLimitOutcome): void {
    this.tally2(this.rateLimitTallies, this.rateLimit, rule, outcome).n++;
  }

  insuranceUsed(rule: string): void {
    this.inc(this.insurance, rule);
  }

  conflictDenial(rule: string, code: string): void {
    this.inc(this.conflict, rule, code);
  }

  versionHeal(rule: string): void {
    this.inc(this.versionHeals, rule);
  }

  storeError(store: string, op: string, code: string): void {
    this.inc(this.storeErrors, store, op, code);
  }

  jwksRefresh(result: 'ok' | 'error'): void {
    if (result === 'ok') this.jwksOkAt = Date.now();
    this.inc(this.jwks, result);
  }

  publish(result: 'ok' | 'stale' | 'error'): void {
    this.inc(this.publishes, result);
  }

  replay(result: 'served' | 'evaluated'): void {
    this.inc(this.replays, result);
  }

  configReload(result: 'ok' | 'error'): void {
    this.inc(this.reloads, result);
  }

  /** The running config's hash: one series, value 1. */
  configLoaded(sha256: string): void {
    this.configInfo.reset();
    this.configInfo.labels(sha256).set(1);
  }
}
