// `conflict-gate --config F` (and `--dev`): start both listeners, drain on SIGTERM.
import type { Env } from '../config/read.js';
import { readConfig, readConfigText } from '../config/read.js';
import type { ReloadOutcome } from '../server.js';
import { envIssues, printIssues } from './common.js';
import { applyV8Flags } from './v8-flags.js';

export interface ServeArgs {
  config: string | undefined;
  dev: boolean | undefined;
  watch: boolean | undefined;
}

export async function serve(a: ServeArgs, env: Env): Promise<number> {
  applyV8Flags();
  // Signals are caught from here on: a SIGTERM during start-up still exits 0, once started.
  let signalled: string | undefined;
  let onSignal: (signal: string) => void = (signal) => {
    signalled = signal;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  // SIGHUP reloads (Node's default would end the process at once, without a drain).
  let onHangup: () => void = () => undefined;
  process.on('SIGHUP', () => onHangup());

  // The server's modules load only here, so check/schema/--help start fast.
  const [{ createDevKit, devBanner, devConfigYaml, DEV_SEEDED }, { createProcessLogger }, { createDeps, startServer }, { MemoryStore }, { watchFiles }] = await Promise.all([
    import('../dev.js'),
    import('../obs/log.js'),
    import('../server.js'),
    import('../store/memory.js'),
    import('../watch.js'),
  ]);
  const envProblems = envIssues(env);
  if (envProblems.length > 0) {
    printIssues('environment', envProblems);
    return 2;
  }
  const { log, flushLogs } = createProcessLogger(env.LOG_LEVEL || 'info');
  process.once('exit', flushLogs);
  if (!a.config && !a.dev) {
    process.stderr.write('conflict-gate: no config: pass --config FILE or set GATE_CONFIG (or --dev for dev mode)\n');
    return 2;
  }
  const dev = a.config ? undefined : await createDevKit();
  const result = dev ? await readConfigText(devConfigYaml(dev.jwksFile), env, { source: '(dev mode)' }) : await readConfig(a.config!, env);
  if (!result.ok) {
    printIssues(a.config ?? '(dev mode)', result.issues);
    dev?.cleanup();
    return 2;
  }
  const { compiled, warnings } = result;

  const store = dev && compiled.store.url === 'memory' ? new MemoryStore() : undefined;
  if (store) await store.publish(DEV_SEEDED.key, DEV_SEEDED.version);
  const deps = createDeps(compiled, { log, store, sha256: result.sha256 });
  // Store boot check: a Redis that answers but is not the kind configured is a config error.
  const { bootProblem } = await import('../store/create.js');
  const storeProblem = await bootProblem(deps.store, compiled.store, compiled.store.connectTimeoutMs);
  if (storeProblem) {
    printIssues(a.config ?? '(dev mode)', [storeProblem]);
    await deps.store.close();
    dev?.cleanup();
    return 2;
  }
  const adminToken = env.GATE_ADMIN_TOKEN || dev?.adminToken || undefined;
  const devJwks = dev?.jwks;
  // One reload at a time, each reading the file afresh (SIGHUP, POST /reload and --watch alike).
  // A reload never rejects: one that failed unexpectedly is refused like an invalid file and
  // logged, and the next one runs (a rejection kept in the chain would refuse every later one).
  let reloading: Promise<ReloadOutcome> = Promise.resolve({ ok: true, sha256: result.sha256, changed: false });
  const reloadOnce = (file: string): Promise<ReloadOutcome> =>
    readConfig(file, env)
      .then((r) => deps.reload(r))
      .catch((err: unknown) => {
        log.error({ err }, 'config reload failed');
        return { ok: false, issues: [{ path: file, message: 'the reload failed unexpectedly (see the log); the running config stays' }] };
      });
  const reload = a.config ? () => (reloading = reloading.then(() => reloadOnce(a.config!))) : undefined;
  let server;
  try {
    server = await startServer(deps, {
      adminToken,
      extra: devJwks ? (app) => app.get('/.well-known/jwks.json', (c) => c.json(devJwks)) : undefined,
      reload,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number; address?: string; listener?: string };
    const at = e.address === undefined ? '' : ` on ${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;
    const where = `${at}${e.listener ? ` (${e.listener})` : ''}`;
    process.stderr.write(`conflict-gate: cannot listen${where}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`);
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

  if (reload) onHangup = () => void reload();
  else onHangup = () => log.warn('SIGHUP ignored: dev mode has no config file to reload');
  const watcher = reload && (a.watch || compiled.server.watchConfig) ? watchFiles([result.file!, ...result.keyFiles], () => void reload()) : undefined;
  if (watcher) log.info({ files: [result.file, ...result.keyFiles] }, 'watching the config for changes');

  return new Promise<number>((resolvePromise) => {
    const stop = (signal: string) => {
      watcher?.close();
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
