// Builds the gate's object graph from YAML without listening, for app.request() tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { readConfigText } from '../../src/config/read.js';
import { createLogger } from '../../src/obs/log.js';
import { Metrics } from '../../src/obs/metrics.js';
import { createApps, createDeps, type Deps } from '../../src/server.js';
import type { VersionStore } from '../../src/store/port.js';

export interface TestApp {
  deps: Deps;
  gate: ReturnType<typeof createApps>['gate'];
  admin: ReturnType<typeof createApps>['admin'];
  /** Log lines written so far (JSON strings). */
  logs: string[];
  /** Calls /auth as a proxy at `peer` would. */
  auth(method: string, uri: string, headers?: Record<string, string>, peer?: string): Promise<Response>;
  close(): Promise<void>;
}

export async function buildApp(yaml: string, opts: { files?: Record<string, string>; env?: Record<string, string>; store?: VersionStore; now?: () => number; adminToken?: string } = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-app-'));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  const compiled = await readConfigText(yaml, opts.env ?? {}, { baseDir: dir });
  if (!compiled.ok) throw new Error('bad test config:\n' + compiled.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger('debug', sink);
  const deps = createDeps(compiled.compiled, { log, store: opts.store, now: opts.now, metrics: new Metrics({ defaultMetrics: false }) });
  const { gate, admin } = createApps(deps, { adminToken: opts.adminToken });
  return {
    deps,
    gate,
    admin,
    logs,
    auth: (method, uri, headers = {}, peer = '127.0.0.1') =>
      Promise.resolve(gate.request('/auth', { headers: { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, ...headers } }, { incoming: { socket: { remoteAddress: peer } } } as never)),
    close: async () => {
      deps.verifier.close();
      if (!opts.store) await deps.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
