// The layout's rules, checked: pure cores import no framework, client or Node module (STYLE.md §2).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ROOT } from './helpers/gate.js';

const FORBIDDEN = /^(hono|@hono\/|ioredis|jose|rate-limiter-flexible|pino|prom-client|node:|fs$|net$|crypto$)/;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

const pure = [
  ...readdirSync(join(ROOT, 'src/core')).map((f) => `src/core/${f}`),
  ...readdirSync(join(ROOT, 'src/gates')).map((g) => `src/gates/${g}/decide.ts`),
];

describe('pure decision cores', () => {
  test.each(pure)('%s imports no framework, client or node: module', (file) => {
    const bad = importsOf(join(ROOT, file)).filter((spec) => FORBIDDEN.test(spec) || (spec.startsWith('.') && !/^\.\.?\/.*\.js$/.test(spec)));
    expect(bad).toEqual([]);
    // and only other pure modules of this project
    for (const spec of importsOf(join(ROOT, file)).filter((s) => s.startsWith('.'))) {
      expect(spec).toMatch(/(core\/|\.\/)[\w-]+\.js$|decide\.js$/);
    }
  });
});

function sourceFiles(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('Redis keys are built only in store/keys.ts', () => {
  const offenders = sourceFiles().filter((p) => !p.endsWith('store/keys.ts') && /`[^`]*\b(ver|claim|replay):\{/.test(readFileSync(p, 'utf8')));
  expect(offenders).toEqual([]);
});

test('process.exit is called only by the CLI', () => {
  const offenders = sourceFiles().filter((p) => !p.endsWith('src/main.ts') && readFileSync(p, 'utf8').includes('process.exit'));
  expect(offenders).toEqual([]);
});
