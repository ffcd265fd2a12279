// Whose Idempotency-Key a record is: a fixed-length hash of (client, key), shared by the gate, the admin API and the client library.
import { createHash } from 'node:crypto';

/** The owner of a key: the token's client id (auth.clientIdClaim), or the client IP on a public route. */
export type KeyOwner = { client: string } | { ip: string };

/**
 * The record's scope: 128 bits of SHA-256 over owner and key, base64url (22 characters). Keys are
 * per client, so two clients with the same key never share a record; hashing keeps the Redis key
 * short whatever the client id's length, free of hash-tag braces, and free of the client's identity.
 * The key (printable ASCII) holds no newline, so the last "\n" always splits owner from key.
 */
export function idempotencyScope(owner: KeyOwner, key: string): string {
  const who = 'client' in owner ? `c:${owner.client}` : `ip:${owner.ip}`;
  return createHash('sha256').update(`${who}\n${key}`).digest('base64url').slice(0, 22);
}
