// The one way to read a config: file (or text) → load (YAML, ${VAR}, env) → compile. Used by serve,
// check, explain, reload, the tests and the benchmarks.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { compileConfig, type Compiled } from './compile.js';
import { loadConfigText, type Env } from './load.js';
import type { ConfigIssue } from './primitives.js';

export type { ConfigIssue, Env };

export type ReadResult =
  | {
      ok: true;
      compiled: Compiled;
      warnings: ConfigIssue[];
      /** First 12 hex digits of the SHA-256 of the config's bytes (conflict_gate_config_info). */
      sha256: string;
      /** The file read, absolute; undefined for text. */
      file: string | undefined;
      /** Key files the config names (jwksFile, publicKeyFile), absolute: a reload re-reads them, --watch watches them. */
      keyFiles: string[];
    }
  | { ok: false; issues: ConfigIssue[] };

/** Reads, validates and compiles a config file. Never throws for bad input. */
export async function readConfig(file: string, env: Env): Promise<ReadResult> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : 'cannot be read';
    return { ok: false, issues: [{ path: file, message: why }] };
  }
  const abs = resolve(file);
  return readConfigText(bytes.toString('utf8'), env, { baseDir: dirname(abs), source: file, file: abs, bytes });
}

/** The same from YAML text (dev mode, tests); relative key files resolve against `baseDir`. */
export async function readConfigText(
  text: string,
  env: Env,
  opts: { baseDir?: string; source?: string; file?: string; bytes?: Buffer } = {},
): Promise<ReadResult> {
  const loaded = loadConfigText(text, env, opts.source);
  if (!loaded.ok) return loaded;
  const result = await compileConfig(loaded.config, { baseDir: opts.baseDir });
  if (!result.ok) return result;
  const sha256 = createHash('sha256').update(opts.bytes ?? text).digest('hex').slice(0, 12);
  const a = loaded.config.auth;
  const keyFiles = [a.jwksFile, a.publicKeyFile].filter((f): f is string => f !== undefined).map((f) => resolve(opts.baseDir ?? '.', f));
  return { ok: true, compiled: result.compiled, warnings: result.warnings, sha256, file: opts.file, keyFiles };
}
