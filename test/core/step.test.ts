import { expect, test } from 'vitest';
import { deny } from '../../src/core/decision.js';
import { withMode } from '../../src/core/step.js';

const d = deny('ratelimit', 'rate_limited', 'over');

test.each([
  ['enforce keeps a denial', 'enforce', d, { decision: d, shadowed: undefined }],
  ['shadow turns a denial into an allow with the given headers and keeps the denial', 'shadow', d, { decision: { kind: 'allow', headers: { RateLimit: 'x' } }, shadowed: d }],
  ['shadow leaves an allow alone', 'shadow', { kind: 'allow' as const, headers: { A: '1' } }, { decision: { kind: 'allow', headers: { A: '1' } }, shadowed: undefined }],
] as const)('%s', (_n, mode, decision, expected) => {
  const s = withMode('ratelimit', 'r', mode, decision, {}, { RateLimit: 'x' });
  expect(s.decision).toEqual(expected.decision);
  expect(s.shadowed).toEqual(expected.shadowed);
  expect(s.mode).toBe(mode);
});
