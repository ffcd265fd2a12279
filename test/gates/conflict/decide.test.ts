// The conflict gate's pure core as a table: (headers, cached version, lease, policy) → (status, code).
import { describe, expect, test } from 'vitest';
import { DENY, type Decision } from '../../../src/core/decision.js';
import { cacheBehind, checkRequirement, decideConflict, parsePreconditions, type ConflictPolicy, type LeaseOutcome, type Requirement, type VersionOutcome } from '../../../src/gates/conflict/decide.js';

const P: ConflictPolicy = { ifMatchStatus: 412, unknownResource: 'allow', onStoreError: 'allow' };
const found = (version: string): VersionOutcome => ({ kind: 'found', version });
const missing: VersionOutcome = { kind: 'missing' };
const off: LeaseOutcome = { kind: 'off' };

type H = { ifMatch?: string; ifNoneMatch?: string; clientVersion?: string };

function run(h: H, v: VersionOutcome, lease: LeaseOutcome = off, policy: Partial<ConflictPolicy> = {}, require: Requirement = 'none'): Decision {
  const pre = parsePreconditions(h);
  if ('kind' in pre) return pre;
  return checkRequirement(require, pre) ?? decideConflict('orders:42', pre, v, lease, { ...P, ...policy });
}

const status = (d: Decision) => (d.kind === 'allow' ? 200 : d.status ?? DENY[d.code].status);
const code = (d: Decision) => (d.kind === 'allow' ? 'allow' : d.code);

describe('decideConflict', () => {
  test.each<[string, H, VersionOutcome, number, string]>([
    ['§13.1.1 If-Match equal strong tag passes', { ifMatch: '"8"' }, found('8'), 200, 'allow'],
    ['§13.1.1 If-Match stale tag fails', { ifMatch: '"7"' }, found('8'), 412, 'precondition_failed'],
    ['§13.1.1 If-Match list with one current tag passes', { ifMatch: '"6", "8"' }, found('8'), 200, 'allow'],
    ['§8.8.3.2 If-Match weak tag never matches (strong comparison)', { ifMatch: 'W/"8"' }, found('8'), 412, 'precondition_failed'],
    ['§13.1.1 If-Match * passes on an existing resource', { ifMatch: '*' }, found('8'), 200, 'allow'],
    ['§13.1.1 If-Match malformed is a 400', { ifMatch: '8' }, found('8'), 400, 'bad_forward_request'],
    ['§13.1.2 If-None-Match * on an existing resource fails', { ifNoneMatch: '*' }, found('8'), 412, 'precondition_failed'],
    ['§13.1.2 If-None-Match * on an unknown resource passes (create)', { ifNoneMatch: '*' }, missing, 200, 'allow'],
    ['§13.1.2 If-None-Match matching tag fails for an unsafe method', { ifNoneMatch: 'W/"8"' }, found('8'), 412, 'precondition_failed'],
    ['§13.1.2 If-None-Match other tag passes', { ifNoneMatch: '"7"' }, found('8'), 200, 'allow'],
    ['§13.1.2 If-None-Match malformed is a 400', { ifNoneMatch: 'x' }, found('8'), 400, 'bad_forward_request'],
    ['§13.2.2 If-None-Match is evaluated after a passing If-Match', { ifMatch: '"8"', ifNoneMatch: '*' }, found('8'), 412, 'precondition_failed'],
    ['§13.2.2 a failing If-Match is reported first', { ifMatch: '"7"', ifNoneMatch: '"9"' }, found('8'), 412, 'precondition_failed'],
    ['§13.2.2 If-Match and a non-matching If-None-Match both pass', { ifMatch: '"8"', ifNoneMatch: '"7"' }, found('8'), 200, 'allow'],
    ['Client-Version equal passes', { clientVersion: '8' }, found('8'), 200, 'allow'],
    ['Client-Version lower is stale', { clientVersion: '7' }, found('8'), 409, 'stale_client_version'],
    ['Client-Version higher passes (cache behind upstream)', { clientVersion: '9' }, found('8'), 200, 'allow'],
    ['Client-Version dotted lower is stale', { clientVersion: '2.4.0' }, found('2.4.1'), 409, 'stale_client_version'],
    ['Client-Version 1.0 equals 1', { clientVersion: '1.0' }, found('1'), 200, 'allow'],
    ['Client-Version non-numeric different is stale', { clientVersion: 'abc' }, found('abd'), 409, 'stale_client_version'],
    ['If-Match passes but Client-Version is stale', { ifMatch: '"8"', clientVersion: '7' }, found('8'), 409, 'stale_client_version'],
    ['No precondition, known resource, require none', {}, found('8'), 200, 'allow'],
    ['Unknown resource with unknownResource allow', { ifMatch: '"3"' }, missing, 200, 'allow'],
  ])('%s', (_name, h, v, st, c) => {
    const d = run(h, v);
    expect([status(d), code(d)]).toEqual([st, c]);
  });

  test('a stale If-Match carries ETag and currentVersion', () => {
    const d = run({ ifMatch: '"7"' }, found('8'));
    expect(d).toMatchObject({ kind: 'deny', headers: { ETag: '"8"' }, members: { currentVersion: '8' } });
  });
  test('a stale Client-Version carries ETag and currentVersion', () => {
    expect(run({ clientVersion: '7' }, found('8'))).toMatchObject({ headers: { ETag: '"8"' }, members: { currentVersion: '8' } });
  });
  test('ifMatchStatus 409 switches the If-Match denial only; the code stays precondition_failed', () => {
    const d = run({ ifMatch: '"7"' }, found('8'), off, { ifMatchStatus: 409 });
    expect([status(d), code(d)]).toEqual([409, 'precondition_failed']);
    const inm = run({ ifNoneMatch: '*' }, found('8'), off, { ifMatchStatus: 409 });
    expect(status(inm)).toBe(412);
  });
  test('an allow carries X-Resource-Key and X-Resource-Version', () => {
    expect(run({ ifMatch: '"8"' }, found('8'))).toEqual({ kind: 'allow', headers: { 'X-Resource-Key': 'orders:42', 'X-Resource-Version': '8' } });
    expect(run({}, missing)).toEqual({ kind: 'allow', headers: { 'X-Resource-Key': 'orders:42', 'X-Resource-Version': '' } });
  });

  describe('unknownResource: deny', () => {
    test.each<[string, H, number, string]>([
      ['If-Match on an unknown resource is 412', { ifMatch: '"1"' }, 412, 'precondition_failed'],
      ['If-Match * on an unknown resource is 412', { ifMatch: '*' }, 412, 'precondition_failed'],
      ['Client-Version on an unknown resource is 412', { clientVersion: '1' }, 412, 'precondition_failed'],
      ['no precondition on an unknown resource is 412', {}, 412, 'precondition_failed'],
      ['a create guarded by If-None-Match * passes', { ifNoneMatch: '*' }, 200, 'allow'],
    ])('%s', (_n, h, st, c) => {
      const d = run(h, missing, off, { unknownResource: 'deny' });
      expect([status(d), code(d)]).toEqual([st, c]);
    });
  });

  describe('store errors', () => {
    test('onStoreError allow lets the write through with an empty version', () => {
      expect(run({ ifMatch: '"8"' }, { kind: 'store_error' })).toEqual({ kind: 'allow', headers: { 'X-Resource-Key': 'orders:42', 'X-Resource-Version': '' } });
    });
    test('onStoreError deny is 503 store_unavailable with Retry-After', () => {
      const d = run({ ifMatch: '"8"' }, { kind: 'store_error' }, off, { onStoreError: 'deny' });
      expect([status(d), code(d)]).toEqual([503, 'store_unavailable']);
      expect(d).toMatchObject({ headers: { 'Retry-After': '1' } });
    });
  });

  describe('claim mode', () => {
    test('a held lease is 409 write_in_progress, Retry-After rounded up to whole seconds', () => {
      const d = run({ ifMatch: '"8"' }, found('8'), { kind: 'held', remainingMs: 1200 });
      expect([status(d), code(d)]).toEqual([409, 'write_in_progress']);
      expect(d).toMatchObject({ headers: { 'Retry-After': '2' }, members: { retryAfter: 2 } });
    });
    test('Retry-After is at least 1', () => {
      expect(run({}, found('8'), { kind: 'held', remainingMs: 3 })).toMatchObject({ headers: { 'Retry-After': '1' } });
    });
    test('a stale write gets its 412 even while another write holds the lease', () => {
      expect(code(run({ ifMatch: '"7"' }, found('8'), { kind: 'held', remainingMs: 1000 }))).toBe('precondition_failed');
    });
    test('the lease taker is allowed', () => {
      expect(code(run({ ifMatch: '"8"' }, found('8'), { kind: 'taken' }))).toBe('allow');
    });
  });
});

describe('versions that heal: an ordered version ahead of the cache means the cache is behind', () => {
  test.each<[string, H, string, number, string, boolean]>([
    ['If-Match one ahead passes (a lost publish)', { ifMatch: '"4"' }, '3', 200, 'allow', true],
    ['If-Match far ahead passes', { ifMatch: '"40"' }, '3', 200, 'allow', true],
    ['If-Match dotted ahead passes', { ifMatch: '"2.5"' }, '2.4.9', 200, 'allow', true],
    ['If-Match big integers compare as numbers', { ifMatch: '"100000000000000000000001"' }, '100000000000000000000000', 200, 'allow', true],
    ['If-Match behind is still refused', { ifMatch: '"2"' }, '3', 412, 'precondition_failed', false],
    ['If-Match 1.0 against 1 is neither equal as a tag nor ahead', { ifMatch: '"1.0"' }, '1', 412, 'precondition_failed', false],
    ['a list with one tag ahead passes', { ifMatch: '"1", "5"' }, '3', 200, 'allow', true],
    ['a weak tag ahead never matches (§13.1.1 strong comparison)', { ifMatch: 'W/"4"' }, '3', 412, 'precondition_failed', false],
    ['opaque versions keep exact matching', { ifMatch: '"b"' }, 'a', 412, 'precondition_failed', false],
    ['an ordered tag against an opaque cached version is refused', { ifMatch: '"9"' }, 'abc', 412, 'precondition_failed', false],
    ['an opaque tag against an ordered cached version is refused', { ifMatch: '"abc"' }, '3', 412, 'precondition_failed', false],
    ['Client-Version ahead passes', { clientVersion: '4' }, '3', 200, 'allow', true],
    ['Client-Version opaque and different is stale', { clientVersion: 'zz' }, '3', 409, 'stale_client_version', false],
    ['If-Match ahead with If-None-Match * on an existing resource still fails (§13.2.2)', { ifMatch: '"4"', ifNoneMatch: '*' }, '3', 412, 'precondition_failed', true],
    ['If-Match ahead with a stale Client-Version is stale', { ifMatch: '"4"', clientVersion: '2' }, '3', 409, 'stale_client_version', true],
  ])('%s', (_n, h, cached, st, c, behind) => {
    const d = run(h, found(cached));
    expect([status(d), code(d)]).toEqual([st, c]);
    const pre = parsePreconditions(h);
    if ('kind' in pre) throw new Error('bad row');
    expect(cacheBehind(pre, cached)).toBe(behind);
  });

  test('a healed write carries the cached version, and in claim mode takes the lease like any write', () => {
    expect(run({ ifMatch: '"4"' }, found('3'))).toEqual({ kind: 'allow', headers: { 'X-Resource-Key': 'orders:42', 'X-Resource-Version': '3' } });
    expect(code(run({ ifMatch: '"4"' }, found('3'), { kind: 'taken' }))).toBe('allow');
    expect(code(run({ ifMatch: '"4"' }, found('3'), { kind: 'held', remainingMs: 900 }))).toBe('write_in_progress');
  });
});

describe('require: 428 when the demanded header is absent (RFC 6585 §3)', () => {
  test.each<[Requirement, H, string]>([
    ['if-match', {}, 'precondition_required'],
    ['if-match', { clientVersion: '8' }, 'precondition_required'],
    ['if-match', { ifMatch: '"8"' }, 'allow'],
    ['client-version', { ifMatch: '"8"' }, 'precondition_required'],
    ['client-version', { clientVersion: '8' }, 'allow'],
    ['any', {}, 'precondition_required'],
    ['any', { ifNoneMatch: '"1"' }, 'allow'],
    ['any', { clientVersion: '8' }, 'allow'],
    ['none', {}, 'allow'],
  ])('require %s with %j → %s', (req, h, c) => {
    const d = run(h, found('8'), off, {}, req);
    expect(code(d)).toBe(c);
    if (c === 'precondition_required') expect(status(d)).toBe(428);
  });
});
