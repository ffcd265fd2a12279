// The V8 flags `serve` sets for itself: each one this Node's V8 knows (an unknown one would be ignored
// with a line on stderr, and the gate would run without it unnoticed).
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { V8_FLAGS } from '../../src/cli/v8-flags.js';

const known = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;

describe('V8 flags of the serving process', () => {
  test.each(V8_FLAGS)('%s is a flag of this V8', (flag) => {
    const name = flag.replace(/^--(no-)?/, '');
    expect(known).toMatch(new RegExp(`^\\s+--${name} `, 'm'));
  });

  test('node accepts them all on its command line: the CLI runs with them (`schema`)', () => {
    const r = spawnSync(process.execPath, [...V8_FLAGS, 'dist/main.js', 'schema'], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/unrecognized|bad option/i);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('$schema');
  });
});
