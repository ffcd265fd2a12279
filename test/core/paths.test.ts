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
    return r.segments;
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
    expect(compilePattern(pattern)(seg(path))).toEqual(params);
  });
});
