// docs/DEPLOY.md stays copy-paste correct: the files it names exist, and its snippets equal the shipped files.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { GATE_DEFAULTS, ROOT, composeInterpolate, gateYamlVars, readText, yamlDoc, yamlDocs } from './files.js';

const doc = readText('docs/DEPLOY.md');
const yamlBlocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as Record<string, any>);
const fileRefs = [...new Set([...doc.matchAll(/`([\w./-]+\.(?:ya?ml|ts|md)|Dockerfile|\.dockerignore)`/g)].map((m) => m[1]!))];

describe('docs/DEPLOY.md', () => {
  test.each(fileRefs)('names %s, which exists', (ref) => {
    const places = ref.includes('/') ? [ROOT] : [ROOT, join(ROOT, 'kubernetes'), join(ROOT, 'deploy')];
    expect(places.some((dir) => existsSync(join(dir, ref)))).toBe(true);
  });

  test('its forwardAuth snippet is the one in traefik/dynamic.yml', () => {
    const snippet = yamlBlocks.find((b) => b.http?.middlewares)!.http.middlewares;
    expect(snippet).toEqual(yamlDoc('traefik/dynamic.yml').http.middlewares);
  });

  test('its IngressRoute snippet is kubernetes/ingressroute.yaml\'s routes', () => {
    const snippet = yamlBlocks.find((b) => Array.isArray(b.routes))!.routes;
    expect(snippet).toEqual(yamlDocs('kubernetes/ingressroute.yaml')[0]!.spec.routes);
  });

  test('its Ingress annotation is kubernetes/ingress.yaml\'s', () => {
    const snippet = yamlBlocks.find((b) => b.metadata?.annotations)!.metadata.annotations;
    expect(yamlDocs('kubernetes/ingress.yaml')[0]!.metadata.annotations).toMatchObject(snippet);
  });

  test('its compose URLs use the published ports of docker-compose.yml', () => {
    const services = composeInterpolate(yamlDoc('docker-compose.yml'), {}).services;
    const traefikPort = (services.traefik.ports as string[])[0]!.split(':')[0];
    const adminPort = (services['conflict-gate'].ports as string[])[0]!.split(':')[1];
    expect(doc).toContain(`http://localhost:${traefikPort}/api/orders/42`);
    expect(adminPort).toBe(String(GATE_DEFAULTS.adminPort));
    expect(doc).toContain(`http://localhost:${adminPort}/versions/`);
  });

  test.each(gateYamlVars())('documents %s, which deploy/gate.yaml needs', (name) => {
    expect(doc).toContain(`\`${name}\``);
  });
});
