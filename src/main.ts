#!/usr/bin/env node
// The CLI: argv → serve | check | schema; exit 0 (ok), 1 (runtime failure), 2 (bad config or usage).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readConfig, readConfigText, type ConfigIssue, type Env } from './config/read.js';
import { configJsonSchema } from './config/schema.js';
import { isLogLevel } from './obs/log.js';

const USAGE = `conflict-gate: forward-auth sidecar (JWT, shared rate limits, stale-write protection)

Usage:
  conflict-gate --config gate.yaml        serve (or GATE_CONFIG=gate.yaml)
  conflict-gate --dev                      dev mode when no config is given (what npm start runs)
  conflict-gate check --config gate.yaml  validate a config; exit 0 when valid, 2 when not
  conflict-gate schema                     print the config's JSON Schema
  conflict-gate --help | --version

Environment: PORT (8080), ADMIN_PORT (9090), HOST (0.0.0.0), REDIS_URL, GATE_ADMIN_TOKEN, LOG_LEVEL (info), GATE_CONFIG.
Exit codes: 0 ok, 1 runtime failure (a port in use), 2 bad config or usage.`;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

function printIssues(source: string, issues: ConfigIssue[]): void {
  process.stderr.write(`conflict-gate: invalid config ${source} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
  for (const i of issues) process.stderr.write(`${i.path}: ${i.message}\n`);
}

function envIssues(env: Env): ConfigIssue[] {
  if (env.LOG_LEVEL !== undefined && env.LOG_LEVEL !== '' && !isLogLevel(env.LOG_LEVEL)) {
    return [{ path: 'LOG_LEVEL', message: 'expected one of fatal, error, warn, info, debug, trace, silent' }];
  }
  return [];
}

export async function main(argv: string[], env: Env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, dev: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
    });
  } catch (err) {
    process.stderr.write(`conflict-gate: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (positionals.length > 1 || !['serve', 'check', 'schema'].includes(command)) {
    process.stderr.write(`conflict-gate: unknown command "${positionals.join(' ')}"\n\n${USAGE}\n`);
    return 2;
  }
  if (command === 'schema') {
    process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    return 0;
  }
  const configFile = values.config ?? (env.GATE_CONFIG || undefined);

  if (command === 'check') {
    if (!configFile) {
      process.stderr.write('conflict-gate: check needs --config FILE (or GATE_CONFIG)\n');
      return 2;
    }
    const result = await readConfig(configFile, env);
    const issues = [...envIssues(env), ...(result.ok ? [] : result.issues)];
    if (issues.length > 0) {
      printIssues(configFile, issues);
      return 2;
    }
    for (const w of result.ok ? result.warnings : []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
    process.stdout.write(`${configFile}: OK\n`);
    return 0;
  }

  // serve. Signals are caught from here on: a SIGTERM during start-up still exits 0, once started.
  let signalled: string | undefined;
  let onSignal: (signal: string) => void = (signal) => {
    signalled = signal;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));

  // The server's modules load only here, so check/schema/--help start fast.
  const [{ createDevKit, devBanner, devConfigYaml, DEV_SEEDED }, { createProcessLogger }, { createDeps, startServer }, { MemoryStore }] = await Promise.all([
    import('./dev.js'),
    import('./obs/log.js'),
    import('./server.js'),
    import('./store/memory.js'),
  ]);
  const envProblems = envIssues(env);
  if (envProblems.length > 0) {
    printIssues('environment', envProblems);
    return 2;
  }
  const { log, flushLogs } = createProcessLogger(env.LOG_LEVEL || 'info');
  process.once('exit', flushLogs);
  if (!configFile && !values.dev) {
    process.stderr.write('conflict-gate: no config: pass --config FILE or set GATE_CONFIG (or --dev for dev mode)\n');
    return 2;
  }
  const dev = configFile ? undefined : await createDevKit();
  const result = dev ? await readConfigText(devConfigYaml(dev.jwksFile), env, { source: '(dev mode)' }) : await readConfig(configFile!, env);
  if (!result.ok) {
    printIssues(configFile ?? '(dev mode)', result.issues);
    dev?.cleanup();
    return 2;
  }
  const { compiled, warnings } = result;

  const store = dev && compiled.store.url === 'memory' ? new MemoryStore() : undefined;
  if (store) await store.publish(DEV_SEEDED.key, DEV_SEEDED.version);
  const deps = createDeps(compiled, { log, store });
  const adminToken = env.GATE_ADMIN_TOKEN || dev?.adminToken || undefined;
  const devJwks = dev?.jwks;
  let server;
  try {
    server = await startServer(deps, {
      adminToken,
      extra: devJwks ? (app) => app.get('/.well-known/jwks.json', (c) => c.json(devJwks)) : undefined,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`conflict-gate: cannot listen: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`);
    await deps.store.close();
    dev?.cleanup();
    return 1;
  }
  for (const w of warnings) log.warn({ field: w.path, problem: w.message }, 'config warning');
  log.info({ port: server.port, adminPort: server.adminPort, store: compiled.store.url === 'memory' ? 'memory' : 'redis', dev: Boolean(dev) }, 'conflict-gate listening');
  if (dev) {
    log.warn('DEV MODE: in-memory store and a throwaway signing key; never use in production');
    process.stdout.write(devBanner({ host: compiled.server.host, port: server.port, adminPort: server.adminPort, token: dev.token, adminToken: adminToken! }) + '\n');
  }

  return new Promise<number>((resolvePromise) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: draining in-flight requests');
      const hard = setTimeout(() => {
        log.error('shutdown took too long; exiting');
        resolvePromise(0);
      }, 9500);
      hard.unref();
      void server.close(8000).then(() => {
        clearTimeout(hard);
        dev?.cleanup();
        log.info('stopped');
        resolvePromise(0);
      });
    };
    onSignal = stop;
    if (signalled) stop(signalled);
  });
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`conflict-gate: unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}\n`);
});

const code = await main(process.argv.slice(2), process.env);
// Let stdout/stderr drain (pipes are asynchronous), then leave even if a handle lingers.
process.exitCode = code;
setTimeout(() => process.exit(code), 1000).unref();
