// The pure auth decision as tables: bearerToken, scopesOf, the identity-header encoding, decideAuth.
import { describe, expect, test } from 'vitest';
import { DENY } from '../../../src/core/decision.js';
import {
  anonymousHeaders,
  bearerToken,
  claimHeaderValue,
  claimItems,
  decideAuth,
  encodeHeaderItem,
  headerList,
  missingToken,
  scopesOf,
  type AuthPolicy,
  type Claims,
  type VerifyOutcome,
} from '../../../src/gates/auth/decide.js';

describe('bearerToken (RFC 6750 §2.1)', () => {
  test.each<[string, string | undefined, string | null]>([
    ['no Authorization field', undefined, null],
    ['empty field', '', null],
    ['a plain token', 'Bearer abc.def.ghi', 'abc.def.ghi'],
    ['the scheme is case-insensitive (RFC 9110 §11.1)', 'bEaReR abc', 'abc'],
    ['several spaces or a tab after the scheme', 'Bearer \t  abc', 'abc'],
    ['trailing whitespace', 'Bearer abc  ', 'abc'],
    ['b64token characters - . _ ~ + /', 'Bearer A-z0.9_~+/x', 'A-z0.9_~+/x'],
    ['trailing = padding', 'Bearer abc==', 'abc=='],
    ['= inside the token is not b64token', 'Bearer a=b', null],
    ['Basic is not Bearer', 'Basic YTpi', null],
    ['scheme only', 'Bearer', null],
    ['scheme and a space only', 'Bearer ', null],
    ['no space after the scheme', 'Bearerabc', null],
    ['two tokens', 'Bearer abc def', null],
    ['a comma-joined second field', 'Bearer abc, Bearer def', null],
    ['a quoted token', 'Bearer "abc"', null],
    ['non-ASCII in the token', 'Bearer abcé', null],
    ['leading whitespace before the scheme', ' Bearer abc', null],
  ])('%s', (_name, field, token) => {
    expect(bearerToken(field)).toBe(token);
  });
});

describe('scopesOf', () => {
  test.each<[string, Claims, string[]]>([
    ['no scope claim', {}, []],
    ['scope: space-separated string (RFC 8693 §4.2)', { scope: 'a b c' }, ['a', 'b', 'c']],
    ['scope: repeated spaces make no empty scope', { scope: '  a   b ' }, ['a', 'b']],
    ['scope: empty string', { scope: '' }, []],
    ['scope: a tab is part of a scope, not a separator (RFC 6749 §3.3 separates by SP)', { scope: 'a\tb' }, ['a\tb']],
    ['scp: array', { scp: ['a', 'b'] }, ['a', 'b']],
    ['scp: an array entry with a space is one scope', { scp: ['orders:write admin'] }, ['orders:write admin']],
    ['scp: non-strings and empty entries are dropped', { scp: ['a', 1, null, '', { x: 1 }, 'b'] }, ['a', 'b']],
    ['scp: a string is read like scope', { scp: 'a b' }, ['a', 'b']],
    ['scopes: array', { scopes: ['x'] }, ['x']],
    ['scope wins over scp', { scope: 'a', scp: ['b'] }, ['a']],
    ['a scope that is neither string nor array falls through to scp', { scope: 5, scp: ['b'] }, ['b']],
    ['scope as an array is read too', { scope: ['a', 'b c'] }, ['a', 'b c']],
  ])('%s', (_name, claims, scopes) => {
    expect(scopesOf(claims)).toEqual(scopes);
  });
});

describe('encodeHeaderItem: one item of an identity header', () => {
  test.each<[string, string, string]>([
    ['printable ASCII is kept', 'alice@example.com', 'alice@example.com'],
    ['every printable ASCII byte but % is kept', '!"#$&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~', '!"#$&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~'],
    ['empty', '', ''],
    ['space', 'a b', 'a%20b'],
    ['% itself', '100%', '100%25'],
    ['an already percent-encoded string is encoded again', '%C3%A9', '%25C3%25A9'],
    ['é is its UTF-8 bytes', 'é', '%C3%A9'],
    ['a 3-byte character', '€', '%E2%82%AC'],
    ['a 4-byte character (surrogate pair)', '😀', '%F0%9F%98%80'],
    ['a lone high surrogate as WTF-8', '\ud800', '%ED%A0%80'],
    ['a lone low surrogate as WTF-8', '\udc00x', '%ED%B0%80x'],
    ['U+FFFD is not a lone surrogate', '\ufffd', '%EF%BF%BD'],
    ['CR LF cannot split the header', 'a\r\nX-Evil: 1', 'a%0D%0AX-Evil:%201'],
    ['NUL and tab', '\0\t', '%00%09'],
    ['DEL', '\x7f', '%7F'],
    ['Latin-1 byte range is UTF-8 too', '\xff', '%C3%BF'],
  ])('%s', (_name, item, encoded) => {
    expect(encodeHeaderItem(item)).toBe(encoded);
  });
});

describe('claimItems and claimHeaderValue: a claim as a list of items', () => {
  test.each<[string, unknown, string[], string]>([
    ['absent', undefined, [], ''],
    ['null', null, [], ''],
    ['empty string', '', [], ''],
    ['empty array', [], [], ''],
    ['a string is one item', 'acme', ['acme'], 'acme'],
    ['a string with a space is one item', 'a b', ['a b'], 'a%20b'],
    ['an array is a list', ['a', 'b'], ['a', 'b'], 'a b'],
    ['an array element with a space stays one item', ['a b', 'c'], ['a b', 'c'], 'a%20b c'],
    ['a number', 42, ['42'], '42'],
    ['a boolean', false, ['false'], 'false'],
    ['numbers in an array', [1, 2.5], ['1', '2.5'], '1 2.5'],
    ['null and "" elements carry no value', ['a', null, '', 'b'], ['a', 'b'], 'a b'],
    ['an object is one item, as JSON', { role: 'admin', org: 'a b' }, ['{"role":"admin","org":"a b"}'], '{"role":"admin","org":"a%20b"}'],
    ['an object in an array is one item', [{ a: 1 }, 'x'], ['{"a":1}', 'x'], '{"a":1} x'],
    ['a nested array is one item', [['a', 'b']], ['["a","b"]'], '["a","b"]'],
    ['non-ASCII in a string', 'é', ['é'], '%C3%A9'],
  ])('%s', (_name, value, items, header) => {
    expect(claimItems(value)).toEqual(items);
    expect(claimHeaderValue(value)).toBe(header);
  });

  test.each<[string, unknown, unknown]>([
    ['é vs the literal %C3%A9 (issue 13 item 8)', 'é', '%C3%A9'],
    ['["a","b"] vs "a b" (issue 13 item 8)', ['a', 'b'], 'a b'],
    ['"a%20b" vs "a b"', 'a%20b', 'a b'],
    ['["a b"] vs ["a","b"]', ['a b'], ['a', 'b']],
    ['a lone surrogate vs U+FFFD', '\ud800', '\ufffd'],
    ['["a","b c"] vs ["a b","c"]', ['a', 'b c'], ['a b', 'c']],
  ])('no collision: %s', (_name, a, b) => {
    expect(claimHeaderValue(a)).not.toBe(claimHeaderValue(b));
  });
});

/** What an upstream does with the header: split on spaces, percent-decode each item (UTF-8). */
function decodeHeader(value: string): string[] {
  if (value === '') return [];
  return value.split(' ').map((item) => decodeURIComponent(item));
}

/** A seeded generator (mulberry32), so a failure names its case and repeats. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('headerList is injective on lists of non-empty strings', () => {
  // Characters chosen to hit every branch: plain, space, %, controls, 2-, 3- and 4-byte UTF-8.
  const alphabet = ['a', 'Z', '0', ' ', '%', '%2', '%20', '+', ',', '"', '\t', '\n', '\0', 'é', '€', '😀', '\x7f', '~'];

  test('5 000 seeded random lists decode back to themselves, in one line of printable ASCII', () => {
    const random = rng(13);
    const seen = new Map<string, string>();
    for (let n = 0; n < 5000; n++) {
      const items = Array.from({ length: Math.floor(random() * 4) }, () =>
        Array.from({ length: 1 + Math.floor(random() * 5) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
      );
      const header = headerList(items);
      expect(header).toMatch(/^(?:[\x21-\x7e]+(?: [\x21-\x7e]+)*)?$/);
      expect(decodeHeader(header), JSON.stringify(items)).toEqual(items);
      const key = JSON.stringify(items);
      const other = seen.get(header);
      if (other !== undefined) expect(other).toBe(key);
      seen.set(header, key);
    }
  });
});

const policy: AuthPolicy = { realm: 'conflict-gate', clientIdClaim: 'sub', forwardClaims: [['X-Auth-Tenant', 'tenant'], ['X-Auth-Groups', 'groups']] };
const valid = (claims: Claims): VerifyOutcome => ({ kind: 'valid', claims });

describe('decideAuth', () => {
  test.each<[string, VerifyOutcome, string[], AuthPolicy, { status: number; code: string; wwwAuth: string }]>([
    [
      'an invalid token is 401 invalid_token with its reason (RFC 6750 §3.1)',
      { kind: 'invalid', reason: 'token expired' }, [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token expired"' },
    ],
    [
      'a reason cannot break out of its quoted string',
      { kind: 'invalid', reason: 'a"b\\c' }, [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="abc"' },
    ],
    [
      'a token issued in the future (issue 13 item 14)',
      { kind: 'invalid', reason: 'token issued in the future' }, [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token issued in the future"' },
    ],
    [
      'a valid token without the client id claim is 401',
      valid({ scope: 'a' }), [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token has no sub claim"' },
    ],
    [
      'an empty client id is 401',
      valid({ sub: '' }), [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token has no sub claim"' },
    ],
    [
      'a client id that is an object is 401',
      valid({ sub: { id: 1 } }), [], policy,
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token has no sub claim"' },
    ],
    [
      'another clientIdClaim is named in the reason',
      valid({ sub: 'alice' }), [], { ...policy, clientIdClaim: 'client_id' },
      { status: 401, code: 'invalid_token', wwwAuth: 'Bearer realm="conflict-gate", error="invalid_token", error_description="token has no client_id claim"' },
    ],
    [
      'a missing required scope is 403 insufficient_scope, naming every required scope (RFC 6750 §3.1)',
      valid({ sub: 'alice', scope: 'orders:read admin' }), ['admin', 'orders:write'], policy,
      { status: 403, code: 'insufficient_scope', wwwAuth: 'Bearer realm="conflict-gate", error="insufficient_scope", error_description="missing scope", scope="admin orders:write"' },
    ],
    [
      'an scp entry "orders:write admin" is not the scope admin',
      valid({ sub: 'alice', scp: ['orders:write admin'] }), ['admin'], policy,
      { status: 403, code: 'insufficient_scope', wwwAuth: 'Bearer realm="conflict-gate", error="insufficient_scope", error_description="missing scope", scope="admin"' },
    ],
    [
      'a scope is compared exactly: no prefix, no case folding',
      valid({ sub: 'alice', scope: 'Admin admins' }), ['admin'], policy,
      { status: 403, code: 'insufficient_scope', wwwAuth: 'Bearer realm="conflict-gate", error="insufficient_scope", error_description="missing scope", scope="admin"' },
    ],
  ])('%s', (_name, outcome, required, p, want) => {
    const d = decideAuth(outcome, required, p);
    expect(d).toMatchObject({ kind: 'deny', gate: 'auth', code: want.code });
    if (d.kind !== 'deny') return;
    expect(d.status ?? DENY[d.code].status).toBe(want.status);
    expect(d.headers?.['WWW-Authenticate']).toBe(want.wwwAuth);
  });

  test.each<[string, Claims, string[], { clientId: string; headers: Record<string, string> }]>([
    [
      'identity headers; an absent forwarded claim is present and empty',
      { sub: 'alice', scope: 'a b', tenant: 'acme' }, ['a'],
      { clientId: 'alice', headers: { 'X-Auth-Subject': 'alice', 'X-Auth-Scopes': 'a b', 'X-Auth-Tenant': 'acme', 'X-Auth-Groups': '' } },
    ],
    [
      'a numeric client id is its string',
      { sub: 7 }, [],
      { clientId: '7', headers: { 'X-Auth-Subject': '7', 'X-Auth-Scopes': '', 'X-Auth-Tenant': '', 'X-Auth-Groups': '' } },
    ],
    [
      'every identity header is encoded item by item',
      { sub: 'é b', scp: ['orders:write admin', 'x'], tenant: '%C3%A9', groups: ['a', 'b c'] }, ['x'],
      { clientId: 'é b', headers: { 'X-Auth-Subject': '%C3%A9%20b', 'X-Auth-Scopes': 'orders:write%20admin x', 'X-Auth-Tenant': '%25C3%25A9', 'X-Auth-Groups': 'a b%20c' } },
    ],
    [
      'every required scope present: allowed',
      { sub: 'alice', scope: 'admin audit' }, ['audit', 'admin'],
      { clientId: 'alice', headers: { 'X-Auth-Subject': 'alice', 'X-Auth-Scopes': 'admin audit', 'X-Auth-Tenant': '', 'X-Auth-Groups': '' } },
    ],
  ])('allow: %s', (_name, claims, required, want) => {
    const d = decideAuth(valid(claims), required, policy);
    expect(d).toEqual({ kind: 'allow', identity: { clientId: want.clientId, claims }, headers: want.headers });
  });

  test('a public route carries every identity header, empty', () => {
    expect(anonymousHeaders(policy)).toEqual({ 'X-Auth-Subject': '', 'X-Auth-Scopes': '', 'X-Auth-Tenant': '', 'X-Auth-Groups': '' });
  });

  test('no token: 401 missing_token with a bare challenge', () => {
    expect(missingToken(policy)).toMatchObject({ kind: 'deny', gate: 'auth', code: 'missing_token', headers: { 'WWW-Authenticate': 'Bearer realm="conflict-gate"' } });
  });
});
