// `conflict-gate explain`: the trace of one described request against a config's store, changing nothing.
import { isIP } from 'node:net';
import { readConfig, type Env } from '../config/read.js';
import { explain, renderTrace, type ExplainRequest } from '../explain.js';
import { createLogger } from '../obs/log.js';
import { createDeps, forwardedOptions } from '../server.js';
import { printIssues, usageError } from './common.js';

export interface ExplainArgs {
  config: string | undefined;
  method: string | undefined;
  uri: string | undefined;
  header: string[] | undefined;
  ip: string | undefined;
  json: boolean | undefined;
}

const HEADER_RE = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+):[ \t]*(.*?)[ \t]*$/;

/** Exit 0 when the gate would allow, 1 when it would deny, 2 for a usage or config error. */
export async function explainCommand(a: ExplainArgs, env: Env): Promise<number> {
  if (!a.config) return usageError('explain needs --config FILE (or GATE_CONFIG)');
  if (!a.method || !a.uri) return usageError('explain needs --method and --uri');
  // The client's address as the proxy would forward it: a value that is none is a usage error.
  if (a.ip !== undefined && isIP(a.ip) === 0) return usageError(`--ip expects an IP address, got ${JSON.stringify(a.ip.length > 60 ? `${a.ip.slice(0, 60)}…` : a.ip)}`);
  const headers: Record<string, string> = {};
  for (const h of a.header ?? []) {
    const m = HEADER_RE.exec(h);
    if (!m) return usageError(`-H expects "Name: value", got ${JSON.stringify(h.length > 60 ? `${h.slice(0, 60)}…` : h)}`);
    headers[m[1]!] = m[2]!;
  }
  const result = await readConfig(a.config, env);
  if (!result.ok) {
    printIssues(a.config, result.issues);
    return 2;
  }
  const { compiled } = result;
  const deps = createDeps(compiled, { log: createLogger('silent') });
  try {
    // Read the state a live request would: wait (bounded) for the store and the signing keys.
    deps.verifier.start();
    const until = Date.now() + Math.max(compiled.store.connectTimeoutMs, compiled.auth.source.kind === 'remote' ? compiled.auth.jwksTimeoutMs : 0);
    while (Date.now() < until && !(deps.store.available() && deps.verifier.ready)) await new Promise((r) => setTimeout(r, 20));
    const req: ExplainRequest = { method: a.method, uri: a.uri, headers, ip: a.ip };
    const trace = await explain(req, deps.gates, forwardedOptions(compiled));
    process.stdout.write((a.json ? JSON.stringify(trace, null, 2) : renderTrace(trace)) + '\n');
    return trace.answer.status < 300 ? 0 : 1;
  } finally {
    deps.verifier.close();
    await deps.store.close();
  }
}
