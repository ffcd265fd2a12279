// What the CLI's commands share: usage text, problem printing, the LOG_LEVEL check.
import { readFileSync } from 'node:fs';
import type { ConfigIssue, Env } from '../config/read.js';
import { isLogLevel } from '../obs/log.js';

export const USAGE = `conflict-gate: forward-auth sidecar (JWT, shared rate limits, stale-write protection)

Usage:
  conflict-gate --config gate.yaml [--watch]   serve (or GATE_CONFIG=gate.yaml); --watch reloads on change
  conflict-gate --dev                           dev mode when no config is given (what npm start runs)
  conflict-gate check --config gate.yaml       validate a config; exit 0 when valid, 2 when not
  conflict-gate explain --config gate.yaml --method PUT --uri /api/orders/42
                [-H 'If-Match: "6"']... [--ip 10.0.0.7] [--json]
                                                what the gate would answer, gate by gate, changing nothing;
                                                exit 0 allow, 1 deny, 2 usage or config error
  conflict-gate proxy-config --for traefik|traefik-crd|caddy|nginx --config gate.yaml [--gate ADDRESS]
                                                print the proxy's config for this gate config: every
                                                allow header and forwardClaims header, nginx's replay
  conflict-gate schema                          print the config's JSON Schema
  conflict-gate --help | --version

Environment: PORT (8080), ADMIN_PORT (9090), METRICS_PORT, HOST (::, or 0.0.0.0 without IPv6), the store mode
(REDIS_URL | REDIS_CLUSTER_NODES | REDIS_SENTINELS + REDIS_SENTINEL_NAME), GATE_ADMIN_TOKEN, LOG_LEVEL (info), GATE_CONFIG.
Signals: SIGTERM / SIGINT drain and exit 0; SIGHUP reloads the config.
Exit codes: 0 ok, 1 runtime failure (a port in use; explain: would deny), 2 bad config or usage.`;

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

export function printIssues(source: string, issues: readonly ConfigIssue[]): void {
  process.stderr.write(`conflict-gate: invalid config ${source} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
  for (const i of issues) process.stderr.write(`${i.path}: ${i.message}\n`);
}

export function envIssues(env: Env): ConfigIssue[] {
  if (env.LOG_LEVEL !== undefined && env.LOG_LEVEL !== '' && !isLogLevel(env.LOG_LEVEL)) {
    return [{ path: 'LOG_LEVEL', message: 'expected one of fatal, error, warn, info, debug, trace, silent' }];
  }
  return [];
}

/** A usage mistake: said on stderr with the usage text; exit 2. */
export function usageError(message: string): number {
  process.stderr.write(`conflict-gate: ${message}\n\n${USAGE}\n`);
  return 2;
}
