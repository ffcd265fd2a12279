// The alert rules and the Grafana dashboard against real Prometheus (Debian's prometheus package):
// promtool checks and unit-tests the rules; a test-owned Prometheus scrapes a gate under a short load
// (the store killed half-way) and every dashboard query and alert expression returns data, no error.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, startGate, type RunningGate } from '../helpers/gate.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { freePort, waitForPort } from '../helpers/net.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const ALERTS = join(ROOT, 'ops/prometheus/alerts.yaml');
const ALERT_TESTS = join(ROOT, 'ops/prometheus/alerts.test.yaml');
const DASHBOARD = join(ROOT, 'ops/grafana/conflict-gate.json');

const have = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const HAVE = have('prometheus') && have('promtool');
const suite = HAVE || process.env.CI === 'true' ? describe : describe.skip;
if (!HAVE) console.warn(`\n!!! prometheus/promtool are not installed (apt-get install prometheus): the rule and dashboard checks ${process.env.CI === 'true' ? 'FAIL (CI=true)' : 'are SKIPPED'}\n`);

/** Every PromQL expression of the dashboard, with its panel title (rows' nested panels included). */
export function dashboardQueries(): { title: string; expr: string }[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Record<string, any>[] };
  const out: { title: string; expr: string }[] = [];
  const walk = (panels: Record<string, any>[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ title: p.title as string, expr: t.expr as string });
      if (p.panels) walk(p.panels as Record<string, any>[]);
    }
  };
  walk(dash.panels);
  return out;
}

/** Every alert rule of ops/prometheus/alerts.yaml. */
export function alertRules(): { alert: string; expr: string }[] {
  const doc = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** Grafana's variables, as a Prometheus query for everything: all jobs, all instances, a 30 s rate window. */
function concrete(expr: string): string {
  return expr.replaceAll('$__rate_interval', '30s').replaceAll('$job', '.+').replaceAll('$instance', '.+');
}

/**
 * The parts of an alert expression that carry values: split at top-level `and`/`or`/`unless`, each
 * without its final comparison with a number (`x > 0.5` → `x`). An expression whose threshold holds
 * returns nothing by design; its value parts must return data, or a metric name is wrong.
 */
export function valueParts(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  const text = expr.replace(/\s+/g, ' ').trim();
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0) {
      const m = /^ (and|or|unless)( (on|ignoring) ?\([^)]*\))? /.exec(text.slice(i));
      if (m) {
        parts.push(text.slice(start, i));
        i += m[0].length - 1;
        start = i + 1;
      }
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => stripComparison(p.trim()));
}

function stripComparison(part: string): string {
  let depth = 0;
  let cut = -1;
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0 && /^ (>=|<=|==|!=|>|<) ?(bool )?-?[\d.]+(e-?\d+)?$/.test(part.slice(i))) cut = i;
  }
  const value = cut === -1 ? part : part.slice(0, cut).trim();
  return value.startsWith('(') && value.endsWith(')') && balancedWrap(value) ? value.slice(1, -1).trim() : value;
}

function balancedWrap(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0 && i < s.length - 1) return false;
  }
  return depth === 0;
}

test('valueParts takes an alert expression apart (so the checks below mean something)', () => {
  expect(valueParts('conflict_gate_store_up == 0')).toEqual(['conflict_gate_store_up']);
  expect(valueParts('(a / b) > 0.5 and c{x="a and b"} > 1')).toEqual(['a / b', 'c{x="a and b"}']);
  expect(valueParts('(time() - x) > 3600 and on (job, instance) increase(y{result="error"}[15m]) > 0')).toEqual(['time() - x', 'increase(y{result="error"}[15m])']);
  expect(valueParts('histogram_quantile(0.99, sum by (le) (rate(h[5m]))) > 0.05')).toEqual(['histogram_quantile(0.99, sum by (le) (rate(h[5m])))']);
});

suite('promtool', () => {
  test('check rules: the alert rules are valid', () => {
    const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  test('test rules: every alert fires on what should raise it, and not on its neighbour', () => {
    const r = spawnSync('promtool', ['test', 'rules', ALERT_TESTS], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // every alert has a unit test
    const tested = readFileSync(ALERT_TESTS, 'utf8');
    for (const { alert } of alertRules()) expect(tested, `a unit test for ${alert}`).toContain(`alertname: ${alert}`);
  });

  test('the unit tests fail when a threshold changes (so a pass means something)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-promtool-'));
    try {
      cpSync(ALERT_TESTS, join(dir, 'alerts.test.yaml'));
      writeFileSync(join(dir, 'alerts.yaml'), readFileSync(ALERTS, 'utf8').replace(') > 0.5', ') > 0.95').replace('> 0.05', '> 0.5'));
      const r = spawnSync('promtool', ['test', 'rules', join(dir, 'alerts.test.yaml')], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/ConflictGateDenyRateSpike/);
      expect(r.stdout + r.stderr).toMatch(/ConflictGateSlow/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite('a real Prometheus scraping a gate under load', () => {
  let key: TestKey;
  let redis: OwnRedis;
  let redisKilled = false;
  let jwksServer: JwksServer;
  let gate: RunningGate;
  let prom: ChildProcess | undefined;
  let promUrl: string;
  let dir: string;
  const ADMIN = 'prom-admin-token-0123456789abcdef';

  async function query(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: unknown[] } }> {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown[] } };
  }

  async function waitFor(expr: string, what: string): Promise<void> {
    for (let i = 0; i < 150; i++) {
      const r = await query(expr);
      if (r.status === 'success' && (r.data?.result.length ?? 0) > 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`Prometheus never had ${what} (${expr})`);
  }

  beforeAll(async () => {
    key = await makeKey('ES256');
    redis = await startOwnRedis();
    jwksServer = await startJwksServer(jwks(key).keys);
    dir = mkdtempSync(join(tmpdir(), 'cg-prom-'));
    const metricsPort = await freePort();
    gate = await startGate({
      yaml: `
server: { trustedProxies: ["127.0.0.0/8"], metricsPort: ${metricsPort} }
store: { keyPrefix: "cgtest:prom:" }
auth:
  jwksUrl: "${jwksServer.url}"
  issuer: "${ISSUER}"
  audience: "${AUDIENCE}"
  algorithms: [ES256]
  requireScopes: [{ methods: [PUT, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }]
rateLimit:
  onStoreError: memory
  rules:
    - { name: tight, path: "/tight/*", limit: 2, window: 60s }
    - { name: watch, path: "/watch/*", limit: 1, window: 60s, mode: shadow }
    - { name: default, limit: 100000, window: 60s }
conflict:
  claim: { enabled: true, lease: 5s }
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
      env: { REDIS_URL: redis.url, GATE_ADMIN_TOKEN: ADMIN },
    });
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ["${ALERTS}"]`,
        'scrape_configs:',
        '  - job_name: conflict-gate',
        `    static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }]`,
        '',
      ].join('\n'),
    );
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let promErr = '';
    prom.stderr!.on('data', (d: Buffer) => (promErr += d.toString()));
    await waitForPort(promPort, 15_000).catch((err: unknown) => {
      throw new Error(`prometheus did not start: ${String(err)}\n${promErr}`);
    });
    await waitFor('conflict_gate_build_info', 'a first scrape of the gate');

    // The load: every kind of answer, then the store killed and more of it.
    const t = await sign(key, { sub: 'loader', scope: 'orders:read orders:write' });
    const reader = await sign(key, { sub: 'reader', scope: 'orders:read' });
    const call = (method: string, uri: string, headers: Record<string, string> = {}) =>
      fetch(`${gate.url}/auth`, { headers: { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, ...headers } }).then((r) => r.status);
    const publish = (k: string, version: string) =>
      fetch(`${gate.adminUrl}/versions/${k}`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ version }) });
    const round = async (n: number) => {
      const auth = { Authorization: `Bearer ${t}` };
      await publish(`orders:${n}`, '2');
      await publish(`orders:${n}`, '1'); // stale
      await Promise.all([
        call('GET', `/api/orders/${n}`, auth),
        call('GET', `/api/orders/${n}`),
        call('PUT', `/api/orders/${n}`, { Authorization: `Bearer ${reader}`, 'If-Match': '"2"' }),
        call('PUT', `/api/orders/${n}`, { ...auth, 'If-Match': '"1"' }),
        call('DELETE', `/api/orders/${n}`, auth),
        call('GET', `/tight/${n}`, auth),
        call('GET', `/watch/${n}`, auth),
        call('GET', `/api/replayed/${n}`, { 'X-Request-Id': `prom-req-${n}-0001`, 'X-Auth-Replay': 'first' }),
      ]);
      await call('GET', `/api/replayed/${n}`, { 'X-Request-Id': `prom-req-${n}-0001`, 'X-Auth-Replay': '401' });
      await call('GET', `/api/other/${n}`, { 'X-Request-Id': `prom-req-${n}-0002`, 'X-Auth-Replay': '401' });
      await call('PUT', `/api/orders/${n}`, { ...auth, 'If-Match': '"2"' }); // takes the lease
      await call('PUT', `/api/orders/${n}`, { ...auth, 'If-Match': '"2"' }); // write_in_progress
    };
    // Load until Prometheus has seen each counter move between two scrapes (rate() needs that).
    let n = 0;
    const loadUntil = async (exprs: string[], what: string) => {
      for (let i = 0; i < 300; i++) {
        await round(n++);
        const seen = await Promise.all(exprs.map(async (e) => ((await query(e)).data?.result.length ?? 0) > 0));
        if (seen.every(Boolean)) return;
      }
      throw new Error(`Prometheus never saw ${what}`);
    };
    await loadUntil(['rate(conflict_gate_conflict_denials_total{code="write_in_progress"}[30s]) > 0', 'rate(conflict_gate_shadow_denials_total[30s]) > 0'], 'the load with the store up');
    await redis.kill();
    redisKilled = true;
    await loadUntil(['rate(conflict_gate_ratelimit_insurance_total[30s]) > 0', 'rate(conflict_gate_store_errors_total[30s]) > 0', 'conflict_gate_store_up == 0'], 'the load with the store down');
  }, 60_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    await gate?.stop();
    await jwksServer?.close();
    if (!redisKilled) await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every query of the Grafana dashboard returns data without an error', async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(15);
    const empty: string[] = [];
    for (const q of queries) {
      const r = await query(concrete(q.expr));
      expect(r.status, `${q.title}: ${q.expr}: ${r.error ?? ''}`).toBe('success');
      if ((r.data?.result.length ?? 0) === 0) empty.push(`${q.title}: ${q.expr}`);
    }
    expect(empty, 'dashboard queries that returned no data').toEqual([]);
  });

  test("the dashboard's variables find this gate", async () => {
    const r = (await (await fetch(`${promUrl}/api/v1/series?match[]=${encodeURIComponent('conflict_gate_build_info')}`)).json()) as { data: Record<string, string>[] };
    expect(r.data.length).toBe(1);
    expect(r.data[0]).toMatchObject({ job: 'conflict-gate', instance: expect.any(String) });
  });

  test('every alert expression runs without an error, and its value parts return data', async () => {
    const empty: string[] = [];
    for (const rule of alertRules()) {
      const full = await query(rule.expr);
      expect(full.status, `${rule.alert}: ${full.error ?? ''}`).toBe('success');
      for (const part of valueParts(rule.expr)) {
        const r = await query(part);
        expect(r.status, `${rule.alert}: ${part}: ${r.error ?? ''}`).toBe('success');
        if ((r.data?.result.length ?? 0) === 0) empty.push(`${rule.alert}: ${part}`);
      }
    }
    expect(empty, 'alert value parts that returned no data').toEqual([]);
  });

  test('Prometheus loaded the rule file and evaluates every rule without an error; the store-down alert is pending or firing', async () => {
    let rules: { name: string; health: string; lastError?: string; state?: string }[] = [];
    for (let i = 0; i < 50; i++) {
      const r = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string; state?: string }[] }[] } };
      rules = r.data.groups.flatMap((g) => g.rules);
      if (rules.length > 0 && rules.every((x) => x.health === 'ok')) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(rules.map((r) => r.name).sort()).toEqual(alertRules().map((r) => r.alert).sort());
    for (const r of rules) expect(r, r.name).toMatchObject({ health: 'ok' });
    expect(['pending', 'firing']).toContain(rules.find((r) => r.name === 'ConflictGateStoreDown')!.state);
  });
});
