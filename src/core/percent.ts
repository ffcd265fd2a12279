// Percent-encoding for values a header field cannot carry as they are (claims, cached versions, path captures). Pure.

const HEX = '0123456789ABCDEF';
const pct = (byte: number) => `%${HEX[byte >> 4]}${HEX[byte & 15]}`;

/**
 * `s` with every character that `keep` refuses, and `%` itself, percent-encoded as its UTF-8 bytes
 * (`é` → `%C3%A9`, `\n` → `%0A`). A lone UTF-16 surrogate (which JSON and Redis strings can hold
 * and UTF-8 cannot) is sent as its 3-byte WTF-8 form, so that no two strings share an encoding.
 */
export function percentEncode(s: string, keep: (code: number) => boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp !== 0x25 && keep(cp)) {
      out += s[i];
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp < 0x80) out += pct(cp);
    else if (cp < 0x800) out += pct(0xc0 | (cp >> 6)) + pct(0x80 | (cp & 63));
    else if (cp < 0x10000) out += pct(0xe0 | (cp >> 12)) + pct(0x80 | ((cp >> 6) & 63)) + pct(0x80 | (cp & 63));
    else out += pct(0xf0 | (cp >> 18)) + pct(0x80 | ((cp >> 12) & 63)) + pct(0x80 | ((cp >> 6) & 63)) + pct(0x80 | (cp & 63));
  }
  return out;
}

/** What a field value may hold as it is: visible ASCII, space and tab (RFC 9110 §5.5, without obs-text). */
const FIELD_VALUE_RE = /^[\t\x20-\x7e]*$/;
const inFieldValue = (c: number) => c === 0x09 || (c >= 0x20 && c <= 0x7e);

/** True when `s` may stand in a header field value as it is. */
export function isFieldValue(s: string): boolean {
  return FIELD_VALUE_RE.test(s);
}

/**
 * A string as a header field value: itself when every character may stand in one, else with the
 * others (and `%`) percent-encoded (`a\nb` → `a%0Ab`, `v€1` → `v%E2%82%AC1`). Node refuses a
 * control character or one beyond Latin-1 in a header, and would send Latin-1 as single bytes;
 * a version an upstream SET, or a key built from a decoded path, can hold any of them.
 */
export function fieldValue(s: string): string {
  return FIELD_VALUE_RE.test(s) ? s : percentEncode(s, inFieldValue);
}
