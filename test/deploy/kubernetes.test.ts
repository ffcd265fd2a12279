// kubernetes/: every object validates against its model, and the objects reference each other, the
// image (Dockerfile) and the gate's defaults consistently.
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { IngressRoute, Middleware } from '@kubernetes-models/traefik/traefik.io/v1alpha1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/gate.js';
import { CONTRACT_ENV, GATE_DEFAULTS, ROOT, execForm, gateYaml, gateYamlVars, parseDockerfile, readText, yamlDoc, yamlDocs } from './files.js';

type Obj = Record<string, any>;
type Model = new (data: any) => { validate(): void };

const MODELS: Record<string, Model> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'traefik.io/v1alpha1/Middleware': Middleware,
  'traefik.io/v1alpha1/IngressRoute': IngressRoute,
};

const kustomization = yamlDoc('kubernetes/kustomization.yaml');
const manifestFiles = readdirSync(join(ROOT, 'kubernetes')).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
const objects: (Obj & { file: string })[] = manifestFiles.flatMap((f) => yamlDocs(`kubernetes/${f}`).map((o) => ({ ...o, file: f })));

function find(kind: string, name?: string): Obj {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0]!;
}
const strip = ({ file: _f, ...o }: Obj) => o;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const namespace = find('Namespace').metadata.name as string;
const deployment = find('Deployment', 'conflict-gate');
const pod = deployment.spec.template.spec as Obj;
const container = (pod.containers as Obj[]).find((c) => c.name === 'conflict-gate')!;
const gateService = find('Service', 'conflict-gate');
const middleware = find('Middleware');
const dockerfile = parseDockerfile(readText('Dockerfile'));
const imageCmd = execForm(dockerfile.filter((i) => i.cmd === 'CMD').at(-1)!.args)!;
const imageUser = dockerfile.filter((i) => i.cmd === 'USER').at(-1)!.args.trim();

/** The container's env, with configMapKeyRef and secretKeyRef resolved from the objects in kubernetes/. */
function resolvedEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of container.env as Obj[]) {
    if (e.value !== undefined) out[e.name] = String(e.value);
    else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      out[e.name] = find('ConfigMap', ref.name).data[ref.key];
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const s = find('Secret', ref.name);
      out[e.name] = s.stringData?.[ref.key] ?? Buffer.from(s.data[ref.key] as string, 'base64').toString();
    }
  }
  return out;
}

function portOf(svc: Obj, ref: string | number): Obj {
  const p = (svc.spec.ports as Obj[]).find((x) => x.name === ref || x.port === ref);
  expect(p, `port ${ref} of Service ${svc.metadata.name}`).toBeDefined();
  return p!;
}

describe('kubernetes/ objects', () => {
  test.each(objects.map((o) => [o.file, o.kind, o.metadata?.name, o] as const))('%s: %s %s validates against its model', (_f, _k, _n, o) => {
    const Kind = MODELS[`${o.apiVersion}/${o.kind}`];
    expect(Kind, `a model for ${o.apiVersion} ${o.kind}`).toBeDefined();
    expect(() => new Kind!(strip(o)).validate()).not.toThrow();
  });

  test.each([
    ['a Deployment with a string replica count', Deployment, { metadata: { name: 'x' }, spec: { ...deployment.spec, replicas: 'two' } }],
    ['an IngressRoute middleware without a name', IngressRoute, { metadata: { name: 'x' }, spec: { routes: [{ match: 'Host(`a`)', kind: 'Rule', middlewares: [{ namespace }] }] } }],
    ['a Middleware whose address is not a string', Middleware, { metadata: { name: 'x' }, spec: { forwardAuth: { address: 8080 } } }],
  ] as [string, Model, Obj][])('the models reject %s (so a pass means something)', (_what, Kind, obj) => {
    expect(() => new Kind(obj).validate()).toThrow();
  });

  test('kustomization.yaml lists every manifest file, and only those', () => {
    expect([...(kustomization.resources as string[])].sort()).toEqual(manifestFiles);
  });

  test.each(objects.filter((o) => o.kind !== 'Namespace').map((o) => [o.kind, o.metadata.name, o] as const))(
    '%s %s lives in the kit\'s namespace',
    (_k, _n, o) => {
      expect(o.metadata.namespace).toBe(namespace);
    },
  );

  test.each(objects.filter((o) => o.kind === 'Service').map((o) => [o.metadata.name, o] as const))(
    'Service %s selects pods of exactly one workload, on ports they declare',
    (_n, svc) => {
      const workloads = objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind) && matches(svc.spec.selector, o.spec.template.metadata.labels));
      expect(workloads).toHaveLength(1);
      const portNames = (workloads[0]!.spec.template.spec.containers as Obj[]).flatMap((c) => (c.ports ?? []).map((p: Obj) => p.name));
      for (const p of svc.spec.ports as Obj[]) expect(portNames).toContain(p.targetPort);
    },
  );
});

describe('the gate Deployment', () => {
  test('runs 2 replicas, and the PodDisruptionBudget keeps at least one up', () => {
    expect(deployment.spec.replicas).toBe(2);
    const pdb = find('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
  });

  test("runs non-root with the image's uid, a read-only root filesystem and no privilege escalation", () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(String(pod.securityContext.runAsUser)).toBe(imageUser.split(':')[0]);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  });

  test("declares the gate's default ports as http and admin, and gate.yaml's server.metricsPort as metrics", () => {
    const ports = Object.fromEntries((container.ports as Obj[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: GATE_DEFAULTS.port, admin: GATE_DEFAULTS.adminPort, metrics: gateYaml().server.metricsPort });
    expect(pod).toBeDefined();
    expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(gateYaml().server.metricsPort));
  });

  test.each([
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ])('%s asks %s on the main port', (probe, path) => {
    expect(container[probe].httpGet).toEqual({ path, port: 'http' });
  });

  test('sets CPU/memory requests and a memory limit, sized from the memory bench', () => {
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
    const mi = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? NaN);
    // npm run bench's memory check: ~135 MiB retained with a full token cache (a million distinct tokens), peaks ~205 MiB between collections.
    expect(mi(container.resources.requests.memory)).toBeGreaterThanOrEqual(150);
    expect(mi(container.resources.limits.memory)).toBeGreaterThanOrEqual(240);
  });

  test("keeps the image's ENTRYPOINT and CMD, and mounts gate.yaml from the ConfigMap where CMD reads it", () => {
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    const configPath = imageCmd[imageCmd.indexOf('--config') + 1]!;
    const mount = (container.volumeMounts as Obj[]).find((m) => m.mountPath === posix.dirname(configPath));
    expect(mount?.readOnly).toBe(true);
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount!.name)!;
    const item = (volume.configMap.items as Obj[]).find((i) => i.path === posix.basename(configPath));
    expect(find('ConfigMap', volume.configMap.name).data[item!.key]).toBe(readText('deploy/gate.yaml'));
  });

  test('mounts a writable /tmp (the root filesystem is read-only)', () => {
    const tmp = (container.volumeMounts as Obj[]).find((m) => m.mountPath === '/tmp');
    expect((pod.volumes as Obj[]).find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  test('sets only variables the gate reads (contract env, ${VAR}s of gate.yaml), including all of the latter', () => {
    const names = (container.env as Obj[]).map((e) => e.name as string);
    expect(names.filter((n) => !CONTRACT_ENV.includes(n) && !gateYamlVars().includes(n))).toEqual([]);
    for (const v of gateYamlVars()) expect(names).toContain(v);
  });

  test('every env reference resolves to a key of a ConfigMap or Secret in the kit', () => {
    const env = resolvedEnv();
    expect(Object.keys(env).sort()).toEqual((container.env as Obj[]).map((e) => e.name as string).sort());
    for (const [k, v] of Object.entries(env)) expect(typeof v, k).toBe('string');
  });

  test('takes GATE_ADMIN_TOKEN from a Secret, and the example Secret ships it empty (admin API: default deny)', () => {
    const e = (container.env as Obj[]).find((x) => x.name === 'GATE_ADMIN_TOKEN')!;
    expect(e.valueFrom.secretKeyRef).toBeDefined();
    expect(resolvedEnv().GATE_ADMIN_TOKEN).toBe('');
  });

  test('takes REDIS_URL (which may carry credentials) from a Secret, never from a ConfigMap', () => {
    const e = (container.env as Obj[]).find((x) => x.name === 'REDIS_URL')!;
    expect(e.valueFrom.secretKeyRef).toEqual({ name: 'conflict-gate-redis', key: 'REDIS_URL' });
    for (const cm of objects.filter((o) => o.kind === 'ConfigMap')) {
      expect(Object.keys(cm.data ?? {})).not.toContain('REDIS_URL');
      for (const v of Object.values(cm.data ?? {}) as string[]) expect(v).not.toMatch(/redis:\/\/[^\s"]*:[^\s"]*@/);
    }
  });

  test('REDIS_URL points at the Redis Service, on its port', () => {
    const url = new URL(resolvedEnv().REDIS_URL!);
    const svc = find('Service', url.hostname);
    expect(portOf(svc, Number(url.port)).port).toBe(6379);
    expect(find('StatefulSet').spec.serviceName).toBe(svc.metadata.name);
  });

  test('its ConfigMap and environment pass `conflict-gate check`', async () => {
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], resolvedEnv());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('the gate Service', () => {
  test.each([
    ['http', GATE_DEFAULTS.port],
    ['admin', GATE_DEFAULTS.adminPort],
    ['metrics', gateYaml().server.metricsPort as number],
  ])('exposes %s on port %i, targeting the container port of that name', (name, port) => {
    expect(portOf(gateService, name)).toMatchObject({ port, targetPort: name });
  });
});

describe('Traefik routing on Kubernetes', () => {
  test("the Middleware's address is the gate Service's cluster DNS name, on its http port", () => {
    const url = new URL(middleware.spec.forwardAuth.address as string);
    expect(url.hostname).toBe(`${gateService.metadata.name}.${gateService.metadata.namespace}.svc.cluster.local`);
    expect(Number(url.port)).toBe(portOf(gateService, 'http').port);
  });

  test.each((find('IngressRoute').spec.routes as Obj[]).map((r, i) => [i, r] as const))(
    'IngressRoute route %i references the Middleware by name and namespace',
    (_i, route) => {
      expect(route.middlewares).toContainEqual({ name: middleware.metadata.name, namespace: middleware.metadata.namespace });
    },
  );

  test.each((find('IngressRoute').spec.routes as Obj[]).flatMap((r) => r.services as Obj[]).map((s) => [s.name, s] as const))(
    'IngressRoute service %s exists with that port',
    (_n, ref) => {
      portOf(find('Service', ref.name), ref.port);
    },
  );

  test('the Ingress annotation names the Middleware as <namespace>-<name>@kubernetescrd', () => {
    const ingress = find('Ingress');
    expect(ingress.metadata.annotations['traefik.ingress.kubernetes.io/router.middlewares']).toBe(
      `${middleware.metadata.namespace}-${middleware.metadata.name}@kubernetescrd`,
    );
    expect(ingress.spec.ingressClassName).toBe('traefik');
  });

  test.each((find('Ingress').spec.rules as Obj[]).flatMap((r) => r.http.paths as Obj[]).map((p) => [p.path, p] as const))(
    'Ingress path %s routes to an existing Service port',
    (_p, path) => {
      const ref = path.backend.service;
      portOf(find('Service', ref.name), ref.port.name ?? ref.port.number);
    },
  );
});

describe('NetworkPolicies', () => {
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const podsOf = (sel: Record<string, string>) => objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind) && matches(sel, o.spec.template.metadata.labels));
  const portNames = (w: Obj) => (w.spec.template.spec.containers as Obj[]).flatMap((c) => (c.ports ?? []).map((p: Obj) => p.name as string));
  const rulesFor = (name: string) => (find('NetworkPolicy', name).spec.ingress as Obj[]).filter((r) => (r.ports as Obj[]).length > 0);

  test('one for the gate and one for Redis, each selecting exactly one workload, on ports it declares', () => {
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(['conflict-gate', 'redis']);
    for (const p of policies) {
      const workloads = podsOf(p.spec.podSelector.matchLabels);
      expect(workloads, p.metadata.name).toHaveLength(1);
      expect(p.spec.policyTypes).toEqual(['Ingress']);
      for (const rule of p.spec.ingress as Obj[]) for (const port of rule.ports as Obj[]) expect(portNames(workloads[0]!)).toContain(port.port);
    }
  });

  test('the gate: /auth from Traefik only, the admin API from publishers only, metrics from the monitoring namespace only', () => {
    const byPort = Object.fromEntries(rulesFor('conflict-gate').map((r) => [(r.ports as Obj[])[0]!.port, r.from as Obj[]]));
    expect(Object.keys(byPort).sort()).toEqual(['admin', 'http', 'metrics']);
    expect(byPort.http).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'traefik' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } } }]);
    expect(byPort.admin![0]!.podSelector.matchLabels).toEqual({ 'conflict-gate.dev/publisher': 'true' });
    expect(byPort.metrics).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    // every port of the gate's Service is opened to someone, and none to everyone
    expect((gateService.spec.ports as Obj[]).map((p) => p.targetPort).sort()).toEqual(Object.keys(byPort).sort());
    for (const from of Object.values(byPort)) expect((from as Obj[]).length).toBeGreaterThan(0);
  });

  test('Redis: from the gate\'s pods only', () => {
    const [rule] = rulesFor('redis');
    expect(rule!.from).toEqual([{ podSelector: { matchLabels: deployment.spec.selector.matchLabels } }]);
  });
});
