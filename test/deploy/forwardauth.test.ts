// The Traefik forwardAuth middleware, in both shipped forms: the file provider (traefik/dynamic.yml)
// and the CRD (kubernetes/middleware.yaml). Same checks for each, plus: the two agree.
import { describe, expect, test } from 'vitest';
import { RATE_LIMIT_HEADERS, upstreamHeaders } from '../../src/http/headers.js';
import { FORWARD_AUTH_OPTIONS, GATE_DEFAULTS, gateForwardClaimHeaders, yamlDoc, yamlDocs } from './files.js';

type ForwardAuth = Record<string, any>;

function fileProviderMiddleware(): ForwardAuth {
  const mws = yamlDoc('traefik/dynamic.yml').http.middlewares as Record<string, { forwardAuth?: ForwardAuth }>;
  const withForwardAuth = Object.values(mws).filter((m) => m.forwardAuth);
  expect(withForwardAuth).toHaveLength(1);
  return withForwardAuth[0]!.forwardAuth!;
}

function crdMiddleware(): ForwardAuth {
  const mws = yamlDocs('kubernetes/middleware.yaml').filter((d) => d.kind === 'Middleware' && d.spec?.forwardAuth);
  expect(mws).toHaveLength(1);
  return mws[0]!.spec.forwardAuth as ForwardAuth;
}

const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());

describe.each([
  ['traefik/dynamic.yml (file provider)', fileProviderMiddleware],
  ['kubernetes/middleware.yaml (CRD)', crdMiddleware],
])('forwardAuth in %s', (_name, load) => {
  test('uses only option names Traefik v3 knows (FORWARDAUTH.md §3)', () => {
    const unknown = Object.keys(load()).filter((k) => !FORWARD_AUTH_OPTIONS.includes(k));
    expect(unknown).toEqual([]);
  });

  test("calls the gate's /auth on its default main port, over plain HTTP inside the network", () => {
    const url = new URL(load().address as string);
    expect(url.protocol).toBe('http:');
    expect(Number(url.port)).toBe(GATE_DEFAULTS.port);
    expect(url.pathname).toBe('/auth');
    expect(url.search).toBe('');
  });

  test('sets trustForwardHeader explicitly to false (unset is deprecated and logs a warning)', () => {
    expect(load().trustForwardHeader).toBe(false);
  });

  test('bounds the auth response body (unset = unlimited)', () => {
    const max = load().maxResponseBodySize as unknown;
    expect(Number.isInteger(max)).toBe(true);
    expect(max as number).toBeGreaterThanOrEqual(4096);
  });

  test("authResponseHeaders copies every header the gate sends upstream on an allow, given deploy/gate.yaml's forwardClaims", () => {
    const listed = lower(load().authResponseHeaders as string[]);
    const missing = upstreamHeaders(gateForwardClaimHeaders()).filter((h) => !listed.includes(h.toLowerCase()));
    expect(missing).toEqual([]);
  });

  test('authResponseHeaders lists nothing the gate does not emit, and no name twice', () => {
    const listed = load().authResponseHeaders as string[];
    const emitted = lower([...upstreamHeaders(gateForwardClaimHeaders()), ...RATE_LIMIT_HEADERS]);
    expect(listed.filter((h) => !emitted.includes(h.toLowerCase()))).toEqual([]);
    expect(new Set(lower(listed)).size).toBe(listed.length);
  });

  test('does not forward the body or rewrite the method (the gate reads X-Forwarded-Method, never a body)', () => {
    const fa = load();
    expect(fa.forwardBody ?? false).toBe(false);
    expect(fa.preserveRequestMethod ?? false).toBe(false);
  });
});

test('the file-provider and CRD middlewares carry the same options apart from the address', () => {
  const { address: _a, ...file } = fileProviderMiddleware();
  const { address: _b, ...crd } = crdMiddleware();
  expect(crd).toEqual(file);
});
