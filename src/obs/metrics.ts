// Prometheus metrics, named after decisions; the same codes as logs and problem bodies.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  private readonly decisions: Counter<'gate' | 'code'>;
  private readonly rateLimit: Counter<'rule' | 'outcome'>;
  private readonly storeErrors: Counter<'store' | 'op' | 'code'>;
  private readonly insurance: Counter<'rule'>;
  private readonly jwks: Counter<'result'>;
  private readonly shadow: Counter<'gate' | 'code'>;
  private readonly reloads: Counter<'result'>;
  private readonly configInfo: Gauge<'sha256'>;
  private readonly latency: Histogram<'outcome'>;
  readonly storeUp: Gauge;
  // Label children resolved once: prom-client hashes the labels on every call otherwise.
  private readonly children = new WeakMap<Counter<string>, Map<string, Counter.Internal>>();
  private readonly allowLatency;
  private readonly denyLatency;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({ name: 'gate_decisions_total', help: 'Decisions on /auth by gate and code (code "allow" for an allow).', labelNames: ['gate', 'code'], registers });
    this.rateLimit = new Counter({ name: 'ratelimit_decisions_total', help: 'Rate-limit decisions by rule and outcome (allowed, limited, store_error).', labelNames: ['rule', 'outcome'], registers });
    this.storeErrors = new Counter({ name: 'store_errors_total', help: 'Store failures by store, operation and code.', labelNames: ['store', 'op', 'code'], registers });
    this.insurance = new Counter({ name: 'ratelimit_insurance_total', help: 'Decisions taken by the per-replica in-memory limiter while the store was down.', labelNames: ['rule'], registers });
    this.shadow = new Counter({ name: 'conflict_gate_shadow_denials_total', help: 'Denials that shadow mode turned into allows, by gate and code.', labelNames: ['gate', 'code'], registers });
    this.reloads = new Counter({ name: 'conflict_gate_config_reloads_total', help: 'Config reloads (SIGHUP, POST /reload, --watch) by result.', labelNames: ['result'], registers });
    this.configInfo = new Gauge({ name: 'conflict_gate_config_info', help: 'The running config: sha256 is the first 12 hex digits of the SHA-256 of its bytes.', labelNames: ['sha256'], registers });
    this.jwks = new Counter({ name: 'jwks_refresh_total', help: 'Remote JWKS fetches by result.', labelNames: ['result'], registers });
    this.latency = new Histogram({
      name: 'auth_request_duration_seconds',
      help: 'Time to answer /auth, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.storeUp = new Gauge({ name: 'store_up', help: '1 when the store answers, else 0.', registers });
    this.allowLatency = this.latency.labels('allow');
    this.denyLatency = this.latency.labels('deny');
  }

  private inc(counter: Counter<string>, ...labels: string[]): void {
    let byLabels = this.children.get(counter);
    if (!byLabels) this.children.set(counter, (byLabels = new Map()));
    const k = labels.join('\0');
    let child = byLabels.get(k);
    if (!child) byLabels.set(k, (child = counter.labels(...labels)));
    child.inc();
  }

  decision(gate: string, code: string): void {
    this.inc(this.decisions, gate, code);
  }

  shadowDenial(gate: string, code: string): void {
    this.inc(this.shadow, gate, code);
  }

  configReload(result: 'ok' | 'error'): void {
    this.inc(this.reloads, result);
  }

  /** The running config's hash: one series, value 1. */
  configLoaded(sha256: string): void {
    this.configInfo.reset();
    this.configInfo.labels(sha256).set(1);
  }

  rateLimitOutcome(rule: string, outcome: 'allowed' | 'limited' | 'store_error'): void {
    this.inc(this.rateLimit, rule, outcome);
  }

  storeError(store: string, op: string, code: string): void {
    this.inc(this.storeErrors, store, op, code);
  }

  insuranceUsed(rule: string): void {
    this.inc(this.insurance, rule);
  }

  jwksRefresh(result: 'ok' | 'error'): void {
    this.inc(this.jwks, result);
  }

  observeLatency(allowed: boolean, seconds: number): void {
    (allowed ? this.allowLatency : this.denyLatency).observe(seconds);
  }
}
