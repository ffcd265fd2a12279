#!/usr/bin/env node
// The CLI: argv → serve | check | explain | proxy-config | schema; exit 0 (ok), 1 (runtime failure / would deny), 2 (bad config or usage).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Env } from './config/read.js';
import { configJsonSchema } from './config/schema.js';
import { USAGE, usageError, version } from './cli/common.js';

const COMMON = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;

/** Each command's own options: a flag of another command is a usage error, not silently ignored. */
const COMMANDS = {
  serve: { ...COMMON, dev: { type: 'boolean' }, watch: { type: 'boolean' }, version: { type: 'boolean', short: 'v' } },
  check: COMMON,
  schema: { help: COMMON.help },
  explain: {
    ...COMMON,
    method: { type: 'string', short: 'X' },
    uri: { type: 'string', short: 'u' },
    header: { type: 'string', short: 'H', multiple: true },
    ip: { type: 'string' },
    json: { type: 'boolean' },
  },
  'proxy-config': { ...COMMON, for: { type: 'string' }, gate: { type: 'string' } },
} as const satisfies Record<string, ParseArgsConfig['options']>;

type Command = keyof typeof COMMANDS;

export async function main(argv: string[], env: Env): Promise<number> {
  const first = argv[0];
  const command: Command = first !== undefined && first in COMMANDS ? (first as Command) : 'serve';
  const args = first === command ? argv.slice(1) : argv;
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    const parsed = parseArgs({ args, allowPositionals: true, options: COMMANDS[command] });
    if (parsed.positionals.length > 0) return usageError(`unknown command "${parsed.positionals.join(' ')}"`);
    values = parsed.values as typeof values;
  } catch (err) {
    // parseArgs' own wording, without its internals (an unbalanced shell quote lands here as an unknown option).
    return usageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const config = (values.config as string | undefined) ?? (env.GATE_CONFIG || undefined);
  switch (command) {
    case 'schema':
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
      return 0;
    case 'check':
      return (await import('./cli/check.js')).check(config, env);
    case 'explain':
      return (await import('./cli/explain.js')).explainCommand({ ...(values as object), config } as Parameters<typeof import('./cli/explain.js').explainCommand>[0], env);
    case 'proxy-config':
      return (await import('./cli/proxy-config.js')).proxyConfigCommand({ config, for: values.for as string | undefined, gate: values.gate as string | undefined }, env);
    case 'serve':
      return (await import('./cli/serve.js')).serve({ config, dev: values.dev as boolean | undefined, watch: values.watch as boolean | undefined }, env);
  }
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`conflict-gate: unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}\n`);
});

// A fault no command caught ends the process with one line, never a stack trace.
const code = await main(process.argv.slice(2), process.env).catch((err: unknown) => {
  process.stderr.write(`conflict-gate: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
// Let stdout/stderr drain (pipes are asynchronous), then leave even if a handle lingers.
process.exitCode = code;
setTimeout(() => process.exit(code), 1000).unref();
