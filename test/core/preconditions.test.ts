import { describe, expect, test } from 'vitest';
import { parseTagList, strongMatch, weakMatch } from '../../src/core/preconditions.js';
import { compareOrdered, etagOf, isPublishAllowed, isStaleClientVersion } from '../../src/core/versions.js';

describe('If-Match / If-None-Match field values (RFC 9110 §13.1.1)', () => {
  test.each([
    ['*', '*'],
    [' * ', '*'],
    ['"8"', [{ weak: false, opaque: '8' }]],
    ['W/"8"', [{ weak: true, opaque: '8' }]],
    ['"7", W/"8" ,"9"', [{ weak: false, opaque: '7' }, { weak: true, opaque: '8' }, { weak: false, opaque: '9' }]],
    ['"a,b"', [{ weak: false, opaque: 'a,b' }]],
    [', "8",,', [{ weak: false, opaque: '8' }]],
    ['""', [{ weak: false, opaque: '' }]],
  ])('%s parses', (value, expected) => {
    expect(parseTagList(value)).toEqual(expected);
  });

  test.each(['8', '"8', 'W/8', '"8" "9"', '*, "8"', '', ' , ', 'w/"8"', '"a b"'])('%j is malformed', (value) => {
    expect(parseTagList(value)).toBeNull();
  });

  test('strong comparison: a weak tag never matches (§8.8.3.2)', () => {
    expect(strongMatch([{ weak: false, opaque: '8' }], '8')).toBe(true);
    expect(strongMatch([{ weak: true, opaque: '8' }], '8')).toBe(false);
    expect(strongMatch([{ weak: false, opaque: '7' }], '8')).toBe(false);
  });
  test('weak comparison ignores weakness (used by If-None-Match)', () => {
    expect(weakMatch([{ weak: true, opaque: '8' }], '8')).toBe(true);
    expect(weakMatch([{ weak: false, opaque: '7' }], '8')).toBe(false);
  });
});

describe('version order', () => {
  test.each([
    ['12', '12', 0],
    ['9', '12', -1],
    ['1.0', '1', 0],
    ['1.10', '1.9', 1],
    ['2.4.1', '2.4', 1],
    ['007', '7', 0],
    ['18446744073709551616', '18446744073709551615', 1],
  ])('compare(%s, %s) = %i', (a, b, c) => {
    expect(compareOrdered(a, b)).toBe(c);
  });

  test.each([
    ['11', '12', true],
    ['12', '12', false],
    ['13', '12', false],
    ['1.0', '1', false],
    ['1.4.1', '1.4.2', true],
    ['abc', 'abd', true],
    ['abc', 'abc', false],
    ['12', 'v12', true],
  ])('Client-Version %s against %s is stale: %s', (client, current, stale) => {
    expect(isStaleClientVersion(client, current)).toBe(stale);
  });

  test.each([
    ['8', null, true],
    ['8', '7', true],
    ['7', '7', true],
    ['6', '7', false],
    ['1.9', '1.10', false],
    ['etag-b', 'etag-a', true],
  ])('publish %s over %s allowed: %s', (next, current, ok) => {
    expect(isPublishAllowed(next, current)).toBe(ok);
  });

  test('ETag of a version', () => {
    expect(etagOf('8')).toBe('"8"');
    expect(etagOf('a b"c')).toBe('"a%20b%22c"');
    // a lone surrogate (a raw SET can hold one) is encoded, not thrown on as encodeURIComponent did
    expect(etagOf('v\uD800')).toBe('"v%ED%A0%80"');
  });
});
