// kubernetes/monitoring/ (Prometheus Operator) and ops/: the ServiceMonitor scrapes the gate's metrics
// port, the PrometheusRule carries ops/prometheus/alerts.yaml, the Grafana dashboard is well formed.
// (promtool and a real Prometheus run the rules and the dashboard's queries: test/obs/prometheus.test.ts.)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ROOT, readText, yamlDoc, yamlDocs } from './files.js';

type Obj = Record<string, any>;
const monitoring = readdirSync(join(ROOT, 'kubernetes/monitoring')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
const objects = monitoring.flatMap((f) => yamlDocs(`kubernetes/monitoring/${f}`));
const find = (kind: string): Obj => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const gateService = yamlDocs('kubernetes/gate-service.yaml')[0]!;

describe('kubernetes/monitoring', () => {
  test('its kustomization lists every manifest, and only those', () => {
    expect([...(yamlDoc('kubernetes/monitoring/kustomization.yaml').resources as string[])].sort()).toEqual(monitoring);
  });

  test("objects are monitoring.coreos.com/v1, named, in the kit's namespace", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
    for (const o of objects) {
      expect(o.apiVersion).toBe('monitoring.coreos.com/v1');
      expect(o.metadata).toMatchObject({ name: expect.any(String), namespace: gateService.metadata.namespace });
    }
  });

  test('the ServiceMonitor selects the gate Service and scrapes its metrics port at /metrics', () => {
    const sm = find('ServiceMonitor');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(gateService.metadata.labels[k]).toBe(v);
    expect(sm.spec.namespaceSelector.matchNames).toEqual([gateService.metadata.namespace]);
    expect(sm.spec.endpoints).toHaveLength(1);
    const ep = sm.spec.endpoints[0] as Obj;
    expect((gateService.spec.ports as Obj[]).map((p) => p.name)).toContain(ep.port);
    expect(ep.port).toBe('metrics');
    expect(ep.path).toBe('/metrics');
  });

  test('the PrometheusRule carries the groups of ops/prometheus/alerts.yaml', () => {
    expect(find('PrometheusRule').spec.groups).toEqual(yamlDoc('ops/prometheus/alerts.yaml').groups);
  });
});

describe('ops/prometheus/alerts.yaml', () => {
  const rules = (yamlDoc('ops/prometheus/alerts.yaml').groups as Obj[]).flatMap((g) => g.rules as Obj[]);

  test('has the defaults an operator needs: store down, deny-rate spike, JWKS stale, latency', () => {
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['ConflictGateStoreDown', 'ConflictGateDenyRateSpike', 'ConflictGateJwksStale', 'ConflictGateSlow']));
  });

  test.each(rules.map((r) => [r.alert, r] as const))('%s: a severity, a summary and a description; only conflict_gate_ metrics', (_a, r) => {
    expect(['warning', 'critical']).toContain(r.labels.severity);
    expect(r.annotations.summary).toEqual(expect.any(String));
    expect(r.annotations.description).toEqual(expect.any(String));
    const names = [...(r.expr as string).matchAll(/\b([a-z_]+_(?:total|seconds|bucket|up|keys|degraded|info))\b/g)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n).toMatch(/^conflict_gate_/);
  });
});

describe('ops/grafana/conflict-gate.json', () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'ops/grafana/conflict-gate.json'), 'utf8')) as Obj;
  const panels = dash.panels as Obj[];
  const queryPanels = panels.filter((p) => p.type !== 'row');

  test('a dashboard Grafana imports: a uid, a schema version, unique panel ids, a Prometheus datasource variable', () => {
    expect(dash.uid).toBe('conflict-gate');
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = panels.map((p) => p.id as number);
    expect(new Set(ids).size).toBe(ids.length);
    expect((dash.templating.list as Obj[]).map((v) => v.name)).toEqual(['datasource', 'job', 'instance']);
    for (const p of queryPanels) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect((p.targets as Obj[]).length).toBeGreaterThan(0);
      for (const t of p.targets as Obj[]) expect(t.expr).toContain('job=~"$job", instance=~"$instance"');
    }
  });

  test('has the views the issue asks for: decisions by gate and code, latency, store health, JWKS, shadow, conflicts', () => {
    const exprs = queryPanels.flatMap((p) => (p.targets as Obj[]).map((t) => t.expr as string)).join('\n');
    for (const m of [
      'sum by (gate, code) (rate(conflict_gate_decisions_total',
      'conflict_gate_request_duration_seconds_bucket',
      'conflict_gate_store_up',
      'conflict_gate_degraded',
      'conflict_gate_store_errors_total',
      'conflict_gate_jwks_last_success_timestamp_seconds',
      'conflict_gate_jwks_keys',
      'conflict_gate_token_cache_total',
      'conflict_gate_shadow_denials_total',
      'conflict_gate_conflict_denials_total',
    ]) expect(exprs).toContain(m);
  });

  test('panels do not overlap on the grid', () => {
    const cells = new Set<string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(x + w).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        const k = `${i},${j}`;
        expect(cells.has(k), `${p.title} overlaps at ${k}`).toBe(false);
        cells.add(k);
      }
    }
  });

  test('README or DEPLOY.md tells how to import it', () => {
    expect(readText('docs/DEPLOY.md')).toContain('ops/grafana/conflict-gate.json');
  });
});
