// Config → Compiled: each section compiled (matchers, milliseconds, CIDR sets, imported keys), then frozen.
import { BlockList } from 'node:net';
import type { RouteOptions } from '../core/routes.js';
import type { ConfigIssue, IssueSink } from './primitives.js';
import type { Config } from './schema.js';
import { compileAuth, type CompiledAuth } from './sections/auth.js';
import { compileConflict, type CompiledConflict } from './sections/conflict.js';
import { compileRateLimit, type CompiledRateLimit } from './sections/ratelimit.js';
import { compileServer, type CompiledServer } from './sections/server.js';
import { compileStore, type CompiledStore } from './sections/store.js';

export type { CompiledAuth, CompiledConflict, CompiledRateLimit, CompiledServer, CompiledStore };
export type { CompiledRateRule } from './sections/ratelimit.js';
export type { CompiledResource } from './sections/conflict.js';
export type { KeySource, ScopeRule } from './sections/auth.js';

export interface Compiled {
  server: CompiledServer;
  store: CompiledStore;
  auth: CompiledAuth;
  rateLimit: CompiledRateLimit;
  conflict: CompiledConflict;
}

/** `warnings`: choices that work but are weaker than they should be (a short HMAC secret). */
export type CompileResult = { ok: true; compiled: Compiled; warnings: ConfigIssue[] } | { ok: false; issues: ConfigIssue[] };

/** Compiles a validated config. Reads key files; collects every problem. */
export async function compileConfig(config: Config, opts: { baseDir?: string } = {}): Promise<CompileResult> {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const sink: IssueSink = {
    issue: (path, message) => issues.push({ path, message }),
    warn: (path, message) => warnings.push({ path, message }),
    resolveFile: (f) => (opts.baseDir && !f.startsWith('/') ? `${opts.baseDir}/${f}` : f),
  };
  const routes: RouteOptions = { caseSensitive: config.server.paths.caseSensitive };
  const server = compileServer(config.server);
  const store = compileStore(config.store);
  const auth = await compileAuth(config.auth, sink, routes);
  const rateLimit = compileRateLimit(config.rateLimit, routes);
  const conflict = compileConflict(config.conflict, routes);
  if (issues.length > 0 || auth === undefined) return { ok: false, issues };
  const compiled: Compiled = { server, store, auth, rateLimit, conflict };
  return { ok: true, compiled: deepFreeze(compiled), warnings };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof Map) && !(o instanceof Set) && !(o instanceof URL) && !(o instanceof BlockList)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
