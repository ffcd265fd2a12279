// If-Match / If-None-Match parsing and comparison (RFC 9110 §8.8.3, §13.1). Pure.
import { etagOpaque } from './versions.js';

export interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** `*`, a list of entity-tags, or null when the field value is malformed. */
export type TagList = '*' | EntityTag[];

const ETAGC_RE = /^[\x21\x23-\x7e\x80-\xff]*$/;

/**
 * Parses `If-Match` / `If-None-Match`: `*` or `#entity-tag` (RFC 9110 §13.1.1). Empty list
 * elements are allowed by the list rule (§5.6.1). A missing quote, a bare token, or a `*` inside
 * a list is malformed. Scans rather than splits: a comma is a legal etagc.
 */
export function parseTagList(value: string): TagList | null {
  const s = value.trim();
  if (s === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === ',') {
      i++;
      continue;
    }
    let weak = false;
    if (s.startsWith('W/', i)) {
      weak = true;
      i += 2;
    }
    if (s[i] !== '"') return null;
    const close = s.indexOf('"', i + 1);
    if (close === -1) return null;
    const opaque = s.slice(i + 1, close);
    if (!ETAGC_RE.test(opaque)) return null;
    tags.push({ weak, opaque });
    i = close + 1;
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i < s.length && s[i] !== ',') return null;
  }
  return tags.length > 0 ? tags : null;
}

/** Strong comparison (§8.8.3.2): both tags strong and opaque-tags identical. Used by If-Match. */
export function strongMatch(tags: EntityTag[], version: string): boolean {
  const opaque = etagOpaque(version);
  return tags.some((t) => !t.weak && t.opaque === opaque);
}

/** Weak comparison (§8.8.3.2): opaque-tags identical, weakness ignored. Used by If-None-Match. */
export function weakMatch(tags: EntityTag[], version: string): boolean {
  const opaque = etagOpaque(version);
  return tags.some((t) => t.opaque === opaque);
}
