// traefik/traefik.yml (static) and traefik/dynamic.yml (file provider): internally consistent routing.
import { describe, expect, test } from 'vitest';
import { yamlDoc } from './files.js';

const staticCfg = yamlDoc('traefik/traefik.yml');
const dynamic = yamlDoc('traefik/dynamic.yml');
const routers = Object.entries(dynamic.http.routers as Record<string, any>);
const middlewares = dynamic.http.middlewares as Record<string, any>;
const services = dynamic.http.services as Record<string, any>;
const gateMiddleware = Object.keys(middlewares).find((name) => middlewares[name].forwardAuth)!;

describe('traefik/traefik.yml (static)', () => {
  test('has a "web" entrypoint on :80', () => {
    expect(staticCfg.entryPoints.web.address).toBe(':80');
  });

  test('loads dynamic.yml through the file provider, and no other provider is active', () => {
    expect(Object.keys(staticCfg.providers)).toEqual(['file']);
    expect(staticCfg.providers.file.filename).toBe('/etc/traefik/dynamic.yml');
  });

  test('keeps the dashboard off and the API not insecure', () => {
    expect(staticCfg.api?.dashboard ?? false).toBe(false);
    expect(staticCfg.api?.insecure ?? false).toBe(false);
  });

  test('drops underscore spellings of headers at every entrypoint (X_Auth_Subject would survive authResponseHeaders)', () => {
    for (const ep of Object.values(staticCfg.entryPoints as Record<string, any>)) {
      expect(ep.http?.underscoreHeadersStrategy).toMatch(/^(delete|reject)$/);
    }
  });
});

describe('traefik/dynamic.yml', () => {
  test('has exactly one forwardAuth middleware', () => {
    expect(Object.values(middlewares).filter((m) => m.forwardAuth)).toHaveLength(1);
  });

  test.each(routers)('router %s runs the gate middleware first', (_name, router) => {
    expect(router.middlewares?.[0]).toBe(gateMiddleware);
  });

  test.each(routers)('router %s only references defined middlewares, services and entrypoints', (_name, router) => {
    for (const m of router.middlewares ?? []) expect(Object.keys(middlewares)).toContain(m);
    expect(Object.keys(services)).toContain(router.service);
    for (const ep of router.entryPoints ?? []) expect(Object.keys(staticCfg.entryPoints)).toContain(ep);
  });

  test.each(Object.entries(services))('service %s has at least one http server URL', (_name, svc) => {
    const servers = svc.loadBalancer.servers as { url: string }[];
    expect(servers.length).toBeGreaterThan(0);
    for (const s of servers) expect(new URL(s.url).protocol).toBe('http:');
  });
});
