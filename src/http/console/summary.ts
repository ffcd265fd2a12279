// The running config as the admin console shows it: rules, modes, patterns, fail modes; never a secret.
import type { Compiled } from '../../config/compile.js';

/**
 * What the console says of the config. Built field by field from an allowlist, never by copying a
 * section: a secret, a key, a Redis password or a URL's userinfo and query cannot slip in when a
 * section grows.
 */
export interface ConfigSummary {
  /** First 12 hex digits of the SHA-256 of the config file (conflict_gate_config_info); null when unknown. */
  sha256: string | null;
  store: { mode: string; endpoints: string[]; keyPrefix: string; tls: boolean; commandTimeoutMs: number };
  auth: {
    /** Where keys come from, without the key material: `jwksUrl https://issuer/jwks.json`, `jwksFile (2 keys)`, `HMAC secret`. */
    keys: string;
    algorithms: string[];
    issuer: string[];
    audience: string[];
    clientIdClaim: string;
    publicRoutes: string[];
    requireScopes: { rule: string; scopes: string[]; mode: string }[];
    forwardClaims: { header: string; claim: string }[];
  };
  rateLimit: {
    mode: string;
    onStoreError: string;
    rules: { name: string; methods: string[] | null; path: string | null; limit: number; windowS: number; by: string; overrides: number; mode: string }[];
  };
  conflict: {
    mode: string;
    onStoreError: string;
    unknownResource: string;
    ifMatchStatus: number;
    claim: { enabled: boolean; leaseMs: number };
    resources: { pattern: string; methods: string[] | null; require: string; mode: string }[];
  };
  server: { pathParameters: string; caseSensitive: boolean; methodOverride: string; watchConfig: boolean };
}

/** The store section as every store mode spells it (one node, cluster, sentinel): only what may be shown is read. */
interface StoreView {
  mode?: string;
  url?: string | undefined;
  cluster?: { nodes: readonly unknown[] } | undefined;
  sentinel?: { name: string; sentinels: readonly unknown[] } | undefined;
  tls?: boolean;
  keyPrefix: string;
  commandTimeoutMs: number;
}

/** `host:port/db` of a redis URL: no username, no password, no query. */
function redisEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparsable url)';
  }
}

/** A node address as `host:port`, whatever its shape (string or {host, port}); nothing else of it. */
function nodeEndpoint(node: unknown): string {
  if (typeof node === 'string') return node.includes('://') ? redisEndpoint(node) : node.replace(/^.*@/, '');
  if (node && typeof node === 'object') {
    const { host, port } = node as { host?: unknown; port?: unknown };
    if (typeof host === 'string') return typeof port === 'number' || typeof port === 'string' ? `${host}:${port}` : host;
  }
  return '?';
}

function storeSummary(s: StoreView): ConfigSummary['store'] {
  const base = { keyPrefix: s.keyPrefix, commandTimeoutMs: s.commandTimeoutMs, tls: s.tls ?? (s.url?.startsWith('rediss://') ?? false) };
  if (s.cluster) return { ...base, mode: 'cluster', endpoints: s.cluster.nodes.map(nodeEndpoint) };
  if (s.sentinel) return { ...base, mode: `sentinel ${s.sentinel.name}`, endpoints: s.sentinel.sentinels.map(nodeEndpoint) };
  if (s.url === undefined || s.url === 'memory') return { ...base, mode: s.url === 'memory' ? 'memory' : (s.mode ?? 'unknown'), endpoints: [] };
  return { ...base, mode: 'redis', endpoints: [redisEndpoint(s.url)] };
}

function keySource(a: Compiled['auth']): string {
  const src = a.source;
  switch (src.kind) {
    case 'remote': {
      const u = src.url;
      return `jwksUrl ${u.protocol}//${u.host}${u.pathname}`;
    }
    case 'local': {
      const n = src.jwks.keys.length;
      return `jwksFile (${n} key${n === 1 ? '' : 's'})`;
    }
    case 'static': {
      const secret = [...src.byAlg.values()].some((k) => k.type === 'secret');
      return secret ? 'HMAC secret' : 'publicKeyFile';
    }
  }
}

const list = (v: string | readonly string[] | undefined): string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : [...v]);
const methodsOf = (r: { methods: ReadonlySet<string> | null }): string[] | null => (r.methods === null ? null : [...r.methods]);
/** The summary of a compiled config. */
export function summarizeConfig(compiled: Compiled, sha256: string | null): ConfigSummary {
  const { auth, rateLimit, conflict, server } = compiled;
  const store: StoreView = compiled.store;
  return {
    sha256,
    store: storeSummary(store),
    auth: {
      keys: keySource(auth),
      algorithms: [...auth.algorithms],
      issuer: list(auth.issuer),
      audience: list(auth.audience),
      clientIdClaim: auth.clientIdClaim,
      publicRoutes: auth.publicRoutes.map((r) => r.label),
      requireScopes: auth.requireScopes.map((r) => ({ rule: r.label, scopes: [...r.scopes], mode: r.mode ?? 'enforce' })),
      forwardClaims: auth.forwardClaims.map(([header, claim]) => ({ header, claim })),
    },
    rateLimit: {
      mode: rateLimit.mode,
      onStoreError: rateLimit.onStoreError,
      rules: rateLimit.rules.map((r) => ({
        name: r.name,
        methods: methodsOf(r),
        path: r.pattern,
        limit: r.limit,
        windowS: r.windowS,
        by: r.by.kind === 'claim' ? `claim:${r.by.claim}` : r.by.kind,
        overrides: r.overrides.length,
        mode: r.mode,
      })),
    },
    conflict: {
      mode: conflict.mode,
      onStoreError: conflict.onStoreError,
      unknownResource: conflict.unknownResource,
      ifMatchStatus: conflict.ifMatchStatus,
      claim: { enabled: conflict.claim.enabled, leaseMs: conflict.claim.leaseMs },
      resources: conflict.resources.map((r) => ({ pattern: r.pattern, methods: methodsOf(r), require: r.require, mode: r.mode })),
    },
    server: { pathParameters: server.paths.parameters, caseSensitive: server.paths.caseSensitive, methodOverride: server.methodOverride, watchConfig: server.watchConfig },
  };
}
