// The Redis key layout, in one place. Braces are Redis Cluster hash tags: a resource's keys share a slot.

export interface KeyLayout {
  /** `<prefix>ver:{<resourceKey>}`: the resource's current version, a string. */
  version(resourceKey: string): string;
  /** `<prefix>claim:{<resourceKey>}`: the write lease, `<token>:<version it was bound to>`. */
  claim(resourceKey: string): string;
  /** `<prefix>replay:{<requestId>}`: a denial kept for a proxy's replay of the same request. */
  replay(requestId: string): string;
  /**
   * `<prefix>idem:{<scope>}`: an Idempotency-Key record, `<in-flight until ms>|<token>|<fingerprint>`.
   * The scope is a hash of (client, key) (gates/idempotency/scope.ts): fixed length, no braces.
   */
  idempotency(scope: string): string;
  /** `<prefix>rl:<rule>`: rate-limiter-flexible's key prefix for a rule (it appends `:<client>`). */
  rateLimit(rule: string): string;
}

export function keyLayout(prefix: string): KeyLayout {
  return {
    version: (k) => `${prefix}ver:{${k}}`,
    claim: (k) => `${prefix}claim:{${k}}`,
    replay: (id) => `${prefix}replay:{${id}}`,
    idempotency: (scope) => `${prefix}idem:{${scope}}`,
    rateLimit: (rule) => `${prefix}rl:${rule}`,
  };
}
