// Version strings: ordering of numeric / dotted-numeric versions and their ETags. Pure.
import { percentEncode } from './percent.js';

const DOTTED_RE = /^\d+(?:\.\d+)*$/;

/** `12`, `1.0`, `2.4.1`: versions that have an order. */
export function isOrdered(v: string): boolean {
  return DOTTED_RE.test(v);
}

function compareComponent(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two ordered versions component by component, as arbitrarily large integers, with
 * missing components read as 0 (`1.0` equals `1`, `1.10` is above `1.9`). -1, 0 or 1.
 */
export function compareOrdered(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = compareComponent(pa[i] ?? '0', pb[i] ?? '0');
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * A client that says it has `client` is stale against `current` when both are ordered and
 * client < current; otherwise when the two differ.
 */
export function isStaleClientVersion(client: string, current: string): boolean {
  if (isOrdered(client) && isOrdered(current)) return compareOrdered(client, current) < 0;
  return client !== current;
}

/** Publish-if-newer: an ordered version may not replace a higher ordered one. */
export function isPublishAllowed(next: string, current: string | null): boolean {
  if (current === null || !isOrdered(next) || !isOrdered(current)) return true;
  return compareOrdered(next, current) >= 0;
}

/** What a published version may be (the admin API and the client library): it goes into ETags and headers as it is. */
export const VERSION_RULE = '1 to 256 visible ASCII characters, no double quote';
const PUBLISHABLE_RE = /^[\x21\x23-\x7e]{1,256}$/;

/** A version to publish: a string by VERSION_RULE, or a non-negative safe integer (as its digits); else null. */
export function publishableVersion(raw: unknown): string | null {
  const v = typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? String(raw) : raw;
  return typeof v === 'string' && PUBLISHABLE_RE.test(v) ? v : null;
}

/** The longest resource key the admin API and the client library take. */
export const RESOURCE_KEY_MAX = 512;

/** A resource key as published and read back: 1 to RESOURCE_KEY_MAX characters, no control characters. */
export function isResourceKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0 && key.length <= RESOURCE_KEY_MAX && !/[\x00-\x1f\x7f]/.test(key);
}

// etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3); we keep to ASCII.
const ETAGC_RE = /^[\x21\x23-\x7e]*$/;
const etagc = (c: number) => c === 0x21 || (c >= 0x23 && c <= 0x7e);

/**
 * The opaque-tag of a version: the version itself when every character may stand in an ETag,
 * else the version with the others percent-encoded (a raw Redis SET can hold anything).
 */
export function etagOpaque(version: string): string {
  return ETAGC_RE.test(version) ? version : percentEncode(version, etagc);
}

/** The strong ETag of a version: version `8` → `"8"`. */
export function etagOf(version: string): string {
  return `"${etagOpaque(version)}"`;
}
