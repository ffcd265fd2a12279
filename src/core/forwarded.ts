// Reads the original request from a forward-auth call's headers (X-Forwarded-*, nginx's X-Original-*). Pure.
import { deny, type Deny } from './decision.js';
import { normalizePath, type Segments } from './paths.js';

/** The client request as the proxy saw it: all the gates know of it. */
export interface RequestFacts {
  method: string;
  /** The forwarded request-target as sent (still encoded, with its query). */
  uri: string;
  /** Percent-decoded, dot-segments removed; what patterns match against. */
  path: string;
  segments: Segments;
  host: string;
  proto: string;
  /** Rightmost X-Forwarded-For address that is not a trusted proxy (the peer when there is none). */
  clientIp: string;
  authorization: string | undefined;
  ifMatch: string | undefined;
  ifNoneMatch: string | undefined;
  clientVersion: string | undefined;
}

/** Header lookup by lower-case name. */
export type HeaderGetter = (name: string) => string | undefined;

/** Validates an address and says whether it is a trusted proxy; null when it is not an IP address. */
export type IpClassifier = (raw: string) => { ip: string; trusted: boolean } | null;

const METHOD_RE = /^[A-Za-z]{1,16}$/;

/**
 * Builds RequestFacts, or a 400 `bad_forward_request` when the proxy sent no original method or
 * URI or a header is malformed. `peerIp` is the already-validated address of the caller.
 */
export function readForwarded(get: HeaderGetter, peerIp: string, classify: IpClassifier): RequestFacts | Deny {
  const method = get('x-forwarded-method') ?? get('x-original-method');
  if (method === undefined || method === '') return deny('forward', 'bad_forward_request', 'X-Forwarded-Method (or X-Original-Method) is missing');
  if (!METHOD_RE.test(method)) return deny('forward', 'bad_forward_request', 'X-Forwarded-Method is not an HTTP method');
  const uri = get('x-forwarded-uri') ?? get('x-original-uri');
  if (uri === undefined || uri === '') return deny('forward', 'bad_forward_request', 'X-Forwarded-Uri (or X-Original-URI) is missing');
  const norm = normalizePath(uri);
  if (!norm.ok) return deny('forward', 'bad_forward_request', norm.reason);

  let clientIp = peerIp;
  const xff = get('x-forwarded-for');
  if (xff !== undefined && xff.trim() !== '') {
    const hops = xff.split(',');
    let leftmost: string | undefined;
    let found: string | undefined;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = classify(hops[i]!.trim());
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
    method: method.toUpperCase(),
    uri,
    path: norm.path,
    segments: norm.segments,
    host: get('x-forwarded-host') ?? get('host') ?? '',
    proto: get('x-forwarded-proto') ?? 'http',
    clientIp,
    authorization: get('authorization'),
    ifMatch: get('if-match'),
    ifNoneMatch: get('if-none-match'),
    clientVersion: get('client-version'),
  };
}
