import { describe, expect, test } from 'vitest';
import { compilePattern, normalizePath } from '../../src/core/paths.js';

describe('normalizePath: decode, then remove dot-segments (RFC 3986 §5.2.4)', () => {
  test.each([
    ['/api/orders/42', '/api/orders/42'],
    ['/api/orders/42?x=1&y=2', '/api/orders/42'],
    ['/api/orders/42#frag', '/api/orders/42'],
    ['/', '/'],
    ['/api/', '/api'],
    ['//api/orders/42', '/api/orders/42'],
    ['/api//orders/42', '/api/orders/42'],
    ['/api/orders/42/', '/api/orders/42'],
    ['/api/orders/%2e/42', '/api/orders/42'],
    ['/a/./b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/..', '/a'],
    ['/../../etc', '/etc'],
    ['/public/%2e%2e/api/orders/1', '/api/orders/1'],
    ['/public/%2E%2E/admin', '/admin'],
    ['/api/%6Frders/1', '/api/orders/1'],
    ['/caf%C3%A9', '/café'],
    ['http://host.example/api/x?y', '/api/x'],
  ])('%s → %s', (raw, path) => {
    const r = normalizePath(raw);
    expect(r.ok && r.path).toBe(path);
  });

  test.each([
    ['/api/orders%2F42', 'encoded slash'],
    ['/api/%00', 'NUL'],
    ['/api/a%0Ab', 'control byte'],
    ['/api/%7F', 'DEL'],
    ['/api\\orders\\42', 'raw backslash (WHATWG URL reads it as /)'],
    ['/api/orders%5C42', 'encoded backslash'],
    ['/public/..\\api/admin', 'backslash dot-segment'],
    ['/api/orders/caf\u00c3\u00a9', 'raw UTF-8 bytes (read as Latin-1)'],
    ['/api/orders/café', 'raw non-ASCII'],
    ['/api/%zz', 'broken escape'],
    ['/api/%E0%A4%A', 'truncated UTF-8'],
    ['api/orders', 'relative'],
    ['*', 'asterisk-form'],
  ])('%s is refused (%s)', (raw) => {
    expect(normalizePath(raw).ok).toBe(false);
  });
});

describe('patterns: `:name` is one segment, a final `*` the rest', () => {
  const seg = (p: string) => {
    const r = normalizePath(p);
    if (!r.ok) throw new Error(p);
    return r;
  };
  test.each([
    ['/api/orders/:id', '/api/orders/42', { id: '42' }],
    ['/api/orders/:id', '/api/orders/', null],
    ['/api/orders/:id', '/api/orders/42/', { id: '42' }],
    ['/api/orders/:id', '//api//orders/42', { id: '42' }],
    ['/api/orders/:id', '/api/orders/42/items', null],
    ['/api/orders/:id', '/api/orders', null],
    ['/api/:kind/:id', '/api/users/7', { kind: 'users', id: '7' }],
    ['/api/*', '/api', {}],
    ['/api/*', '/api/', {}],
    ['/api/*', '/api/a/b/c', {}],
    ['/api/*', '/apix', null],
    ['/*', '/anything/at/all', {}],
    ['/public/*', '/public/%2e%2e/api/orders/1', null],
    ['/exact', '/exact', {}],
    ['/exact', '/exact/', {}],
    ['/exact', '/exact/more', null],
    ['/', '/', {}],
    ['/', '/x', null],
    ['/orders/:id/*', '/orders/9/lines/2', { id: '9' }],
  ])('%s vs %s', (pattern, path, params) => {
    const r = seg(path);
    expect(compilePattern(pattern)(r.segments, r.lower)).toEqual(params);
  });
});

describe('`;` path parameters: refused by default, stripped on request (never an escape from a pattern)', () => {
  test.each([
    ['/api/orders;x=1/42'],
    ['/api/orders/77;v=1'],
    ['/public/..;/api/orders/42'],
    ['/api/orders/42%3B'],
    ['/api/orders/42%3bv=1'],
  ])('%s is refused by default', (raw) => {
    const r = normalizePath(raw);
    expect(r.ok).toBe(false);
  });

  test.each([
    ['/api/orders;x=1/42', '/api/orders/42'],
    ['/api/orders/77;v=1', '/api/orders/77'],
    ['/public/..;/api/orders/42', '/api/orders/42'],
    ['/a;b/c;d;e/f', '/a/c/f'],
  ])('with parameters: strip, %s reads as %s (as Jetty and Tomcat route it)', (raw, path) => {
    const r = normalizePath(raw, { parameters: 'strip' });
    expect(r.ok && r.path).toBe(path);
  });

  test('with parameters: strip, a ";" that only appears after decoding is still refused', () => {
    expect(normalizePath('/api/orders/42%3Bv=1', { parameters: 'strip' }).ok).toBe(false);
  });
});

describe('case: literal segments match ASCII case-insensitively, captures keep their case', () => {
  const m = (pattern: string, path: string, caseSensitive = false) => {
    const r = normalizePath(path);
    if (!r.ok) throw new Error(path);
    return compilePattern(pattern, { caseSensitive })(r.segments, r.lower);
  };
  test.each([
    ['/api/orders/:id', '/API/Orders/AbC', { id: 'AbC' }],
    ['/api/orders/:id', '/api/ORDERS/42', { id: '42' }],
    ['/Public/*', '/public/x', {}],
    ['/public/*', '/PUBLIC/X', {}],
    // no non-ASCII folding: `ı` (dotless i) and the Kelvin sign are not ASCII letters to a RegExp `i` router either
    ['/public/*', '/publ%C4%B1c/x', null],
    ['/api/*', '/%E2%84%AApi/x', null],
  ])('%s vs %s', (pattern, path, params) => {
    expect(m(pattern, path)).toEqual(params);
  });
  test('caseSensitive: true compares literals as they are', () => {
    expect(m('/api/orders/:id', '/API/orders/1', true)).toBeNull();
    expect(m('/api/orders/:id', '/api/orders/1', true)).toEqual({ id: '1' });
  });
});
