// The contract's HTTP names in one place: methods, the headers the gate reads and the headers it sends. Pure.

/** Methods the config may name. */
export const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'CONNECT'] as const;
export type Method = (typeof METHODS)[number];

/** Unsafe methods (RFC 9110 §9.2.1) that the conflict gate guards. */
export const UNSAFE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const UNSAFE: ReadonlySet<string> = new Set(UNSAFE_METHODS);

/** Headers the gate sends on an allow, each always present (empty when it has no value). */
export const H = {
  subject: 'X-Auth-Subject',
  scopes: 'X-Auth-Scopes',
  resourceKey: 'X-Resource-Key',
  resourceVersion: 'X-Resource-Version',
  shadow: 'X-Gate-Shadow',
  idempotencyKey: 'X-Idempotency-Key',
  rateLimit: 'RateLimit',
  rateLimitPolicy: 'RateLimit-Policy',
  retryAfter: 'Retry-After',
  etag: 'ETag',
  wwwAuthenticate: 'WWW-Authenticate',
} as const;

/**
 * The allow headers that are always present, in the order a proxy config lists them. A proxy told
 * to copy one of them must never fall back to a value the client sent, so none is ever omitted.
 */
export const ALLOW_HEADERS = [H.subject, H.scopes, H.resourceKey, H.resourceVersion, H.shadow, H.idempotencyKey] as const;

/** Rate-limit headers on an allow when a rule applied (IETF httpapi ratelimit-headers draft). */
export const RATE_LIMIT_HEADERS = [H.rateLimit, H.rateLimitPolicy] as const;

/** Request headers the gate reads, by their lower-case names (Node's parsed-header keys). */
export const R = {
  forwardedMethod: 'x-forwarded-method',
  forwardedUri: 'x-forwarded-uri',
  forwardedHost: 'x-forwarded-host',
  forwardedProto: 'x-forwarded-proto',
  forwardedFor: 'x-forwarded-for',
  originalMethod: 'x-original-method',
  originalUri: 'x-original-uri',
  host: 'host',
  authorization: 'authorization',
  ifMatch: 'if-match',
  ifNoneMatch: 'if-none-match',
  clientVersion: 'client-version',
  idempotencyKey: 'idempotency-key',
  contentType: 'content-type',
  contentLength: 'content-length',
  contentDigest: 'content-digest',
  reprDigest: 'repr-digest',
  requestId: 'x-request-id',
  traceparent: 'traceparent',
  /** The nginx replay protocol's marker (http/replay.ts). */
  replay: 'x-auth-replay',
} as const;

/**
 * Fields of which a second copy is a 400: two values mean two readings of one request. The
 * forwarded fields, and Authorization: the gate (as Node) reads the first credential, an upstream
 * that reads the last or joins them (a WSGI server) would act on another, and an API that decodes
 * the token the gate verified without verifying it again would take an unchecked one.
 */
export const SINGLE_VALUED: readonly string[] = [
  R.forwardedMethod, R.forwardedUri, R.forwardedHost, R.forwardedProto, R.originalMethod, R.originalUri, R.authorization,
];

/** Method-override headers some frameworks honour (Express method-override, Rails, Google APIs). */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];
