import { describe, expect, test } from 'vitest';
import { fieldValue, percentEncode } from '../../src/core/percent.js';

describe('fieldValue: a string as a header field value', () => {
  test.each([
    ['8', '8'],
    ['', ''],
    ['Wed, 02 Dec 2026 10:00:00 GMT', 'Wed, 02 Dec 2026 10:00:00 GMT'],
    ['tab\there', 'tab\there'],
    ['50%', '50%'],
    ['a\nb', 'a%0Ab'],
    ['a\r\nSet-Cookie: x', 'a%0D%0ASet-Cookie: x'],
    ['100%\u0001', '100%25%01'],
    ['é', '%C3%A9'],
    ['v€1', 'v%E2%82%AC1'],
    ['\u{1F600}', '%F0%9F%98%80'],
    ['\uDC00x', '%ED%B0%80x'],
    ['\u007f', '%7F'],
  ])('%j → %j', (raw, sent) => {
    expect(fieldValue(raw)).toBe(sent);
    // whatever it held, Node takes it as a header value
    expect(/[^\t\x20-\x7e]/.test(fieldValue(raw))).toBe(false);
  });
});

test('percentEncode encodes % and what keep refuses, as UTF-8', () => {
  expect(percentEncode('a%b c', (c) => c !== 0x20)).toBe('a%25b%20c');
  expect(percentEncode('ß', () => true)).toBe('ß');
});
