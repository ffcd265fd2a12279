// deploy/gate.yaml through the real CLI (`conflict-gate check`), its Kubernetes copy, and every YAML
// file of the deploy kit parsing cleanly.
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/gate.js';
import { YAML_FILES, gateYamlVars, readText, yamlDocs } from './files.js';

/** What an operator sets for deploy/gate.yaml (docker-compose.yml and the Deployment set the same names). */
const ENV = {
  JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example.com/',
  JWT_AUDIENCE: 'orders-api',
};

describe('every YAML file of the deploy kit', () => {
  test.each(YAML_FILES)('%s parses, without duplicate keys', (file) => {
    expect(yamlDocs(file).length).toBeGreaterThan(0);
  });
});

describe('deploy/gate.yaml', () => {
  test('needs exactly JWKS_URL, JWT_ISSUER and JWT_AUDIENCE from the environment', () => {
    expect(gateYamlVars()).toEqual(Object.keys(ENV).sort());
  });

  test('passes `conflict-gate check` with them set', async () => {
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK');
  });

  test.each([
    ['JWKS_URL', 'auth.jwksUrl'],
    ['JWT_ISSUER', 'auth.issuer'],
    ['JWT_AUDIENCE', 'auth.audience'],
  ])('fails `check` (exit 2) when %s is unset, naming %s', async (name, path) => {
    const env: Record<string, string> = { ...ENV };
    delete env[name];
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path}: environment variable ${name} is not set`);
  });

  test('REDIS_URL overrides its store.url (what compose and the Deployment rely on)', async () => {
    const r = await runCli(['check', '--config', 'deploy/gate.yaml'], { ...ENV, REDIS_URL: 'not-a-url' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('store.url');
  });
});

test('kubernetes/gate-configmap.yaml carries deploy/gate.yaml byte for byte', () => {
  const cm = yamlDocs('kubernetes/gate-configmap.yaml').filter((d) => d.kind === 'ConfigMap' && d.data?.['gate.yaml'] !== undefined);
  expect(cm).toHaveLength(1);
  expect(cm[0]!.data['gate.yaml']).toBe(readText('deploy/gate.yaml'));
});
