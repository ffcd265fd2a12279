// Reads the original request from a forward-auth call's headers (X-Forwarded-*, nginx's X-Original-*). Pure.
import { deny, type Deny } from './decision.js';
import { METHOD_OVERRIDE_HEADERS, R, SINGLE_VALUED } from './http.js';
import { normalizePath, type NormalizeResult, type PathSemantics, type Segments } from './paths.js';

/** The client request as the proxy saw it: all the gates know of it. */
export interface RequestFacts {
  method: string;
  /** The forwarded request-target as sent (still encoded, with its query). */
  uri: string;
  /** Percent-decoded, dot-segments removed; what patterns match against. */
  path: string;
  segments: Segments;
  /** `segments` with ASCII letters folded, for case-insensitive patterns. */
  lower: Segments;
  host: string;
  proto: string;
  /** Rightmost X-Forwarded-For address that is not a trusted proxy (the peer when there is none). */
  clientIp: string;
  authorization: string | undefined;
  ifMatch: string | undefined;
  ifNoneMatch: string | undefined;
  clientVersion: string | undefined;
  /** Idempotency-Key and what fingerprints a request's body without reading it (conflict.idempotency). */
  idempotencyKey: string | undefined;
  contentType: string | undefined;
  contentLength: string | undefined;
  contentDigest: string | undefined;
  reprDigest: string | undefined;
}

/** The headers of the /auth call, by lower-case name. */
export interface HeaderSource {
  get(name: string): string | undefined;
  /** True when the field was sent more than once (joined values would read as one). */
  repeated(name: string): boolean;
}

/** Validates an address and says whether it is a trusted proxy; null when it is not an IP address. */
export type IpClassifier = (raw: string) => { ip: string; trusted: boolean } | null;

export interface ForwardedOptions {
  classifyIp: IpClassifier;
  paths: PathSemantics;
  /** normalizePath for `paths`, usually memoised (paths.ts#memoNormalizer); normalizePath itself when absent. */
  normalize?: (target: string) => NormalizeResult;
  /** `reject`: a method-override header naming another method is a 400 (see readForwarded). */
  methodOverride: 'reject' | 'ignore';
}

const METHOD_RE = /^[A-Za-z]{1,16}$/;

/**
 * Builds RequestFacts, or a 400 `bad_forward_request` when the proxy sent no original method or
 * URI or a header is malformed. `peerIp` is the already-validated address of the caller.
 *
 * Refused as ambiguous, because an upstream could read the request differently from the gate:
 * a second copy of a forwarded field (two `X-Forwarded-Uri` would otherwise be joined and matched
 * as one), and a method-override header (`X-HTTP-Method-Override: DELETE` on a POST) that
 * Express's method-override, Rails or Google-style APIs would honour, unless told to ignore it.
 */
export function readForwarded(h: HeaderSource, peerIp: string, opts: ForwardedOptions): RequestFacts | Deny {
  for (const name of SINGLE_VALUED) {
    if (h.repeated(name)) return deny('forward', 'bad_forward_request', `${name} was sent more than once`);
  }
  const method = h.get(R.forwardedMethod) ?? h.get(R.originalMethod);
  if (method === undefined || method === '') return deny('forward', 'bad_forward_request', 'X-Forwarded-Method (or X-Original-Method) is missing');
  if (!METHOD_RE.test(method)) return deny('forward', 'bad_forward_request', 'X-Forwarded-Method is not an HTTP method');
  const upper = method.toUpperCase();
  if (opts.methodOverride === 'reject') {
    for (const name of METHOD_OVERRIDE_HEADERS) {
      const o = h.get(name);
      if (o !== undefined && o.trim().toUpperCase() !== upper) return deny('forward', 'bad_forward_request', `${name} asks for another method than the request's`);
    }
  }
  const uri = h.get(R.forwardedUri) ?? h.get(R.originalUri);
  if (uri === undefined || uri === '') return deny('forward', 'bad_forward_request', 'X-Forwarded-Uri (or X-Original-URI) is missing');
  const norm = opts.normalize ? opts.normalize(uri) : normalizePath(uri, opts.paths);
  if (!norm.ok) return deny('forward', 'bad_forward_request', norm.reason);

  let clientIp = peerIp;
  const xff = h.get(R.forwardedFor);
  if (xff !== undefined && xff.trim() !== '') {
    const hops = xff.split(',');
    let leftmost: string | undefined;
    let found: string | undefined;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = opts.classifyIp(hops[i]!.trim());
      if (hop === null) return deny('forward', 'bad_forward_request', 'X-Forwarded-For holds something that is not an IP address');
      leftmost = hop.ip;
      if (!hop.trusted) {
        found = hop.ip;
        break;
      }
    }
    // Every hop is a trusted proxy: the client is the first of them.
    clientIp = found ?? leftmost ?? peerIp;
  }

  return {
    method: upper,
    uri,
    path: norm.path,
    segments: norm.segments,
    lower: norm.lower,
    host: h.get(R.forwardedHost) ?? h.get(R.host) ?? '',
    proto: h.get(R.forwardedProto) ?? 'http',
    clientIp,
    authorization: h.get(R.authorization),
    ifMatch: h.get(R.ifMatch),
    ifNoneMatch: h.get(R.ifNoneMatch),
    clientVersion: h.get(R.clientVersion),
    idempotencyKey: h.get(R.idempotencyKey),
    contentType: h.get(R.contentType),
    contentLength: h.get(R.contentLength),
    contentDigest: h.get(R.contentDigest),
    reprDigest: h.get(R.reprDigest),
  };
}
