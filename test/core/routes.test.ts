import { describe, expect, test } from 'vitest';
import { normalizePath } from '../../src/core/paths.js';
import { compileRoute, compileRouteEntry, firstMatch, routeMatches } from '../../src/core/routes.js';

const target = (method: string, path: string) => {
  const r = normalizePath(path);
  if (!r.ok) throw new Error(path);
  return { method, segments: r.segments, lower: r.lower };
};

describe('routes: a method set plus a pattern', () => {
  test('a rule that lists GET also applies to HEAD (RFC 9110 §9.3.2: upstreams run the GET handler)', () => {
    const r = compileRoute(['GET'], '/api/admin/*');
    expect(routeMatches(r, target('HEAD', '/api/admin/x'))).toEqual({});
    expect(routeMatches(r, target('GET', '/api/admin/x'))).toEqual({});
    expect(routeMatches(r, target('POST', '/api/admin/x'))).toBeNull();
  });

  test('a rule without GET does not gain HEAD', () => {
    expect(routeMatches(compileRoute(['POST'], '/x'), target('HEAD', '/x'))).toBeNull();
  });

  test('"GET /public/*" entries: method and pattern; a bare pattern is any method', () => {
    expect(routeMatches(compileRouteEntry('GET /public/*'), target('HEAD', '/public/a'))).toEqual({});
    expect(routeMatches(compileRouteEntry('GET /public/*'), target('POST', '/public/a'))).toBeNull();
    expect(routeMatches(compileRouteEntry('/public/*'), target('DELETE', '/Public/a'))).toEqual({});
  });

  test('firstMatch returns the first route that applies, with its captures', () => {
    const routes = [compileRoute(['PUT'], '/a/:id'), compileRoute(null, '/a/:x')];
    expect(firstMatch(routes, target('POST', '/A/7'))?.route).toBe(routes[1]);
    expect(firstMatch(routes, target('PUT', '/a/7'))?.params).toEqual({ id: '7' });
    expect(firstMatch(routes, target('PUT', '/b/7'))).toBeNull();
  });
});
