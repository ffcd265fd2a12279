// The body a proxy forwards to /auth (Traefik forwardBody), hashed for Idempotency-Key fingerprints: bounded in size and time.
import { createHash } from 'node:crypto';

/** What the reader needs of Node's IncomingMessage (structural, so the pipeline stays free of node:http). */
export interface BodyStream {
  readonly httpVersion: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly readableEnded: boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  off(event: string, fn: (...a: any[]) => void): unknown;
  resume(): unknown;
}

export type BodyRead =
  | { kind: 'hashed'; sha256: Buffer; bytes: number }
  /** No body came with the auth call (Caddy, nginx, Traefik without forwardBody). */
  | { kind: 'none' }
  /** A body was announced but not used: larger than maxBytes, not complete within the timeout, or the call broke off. */
  | { kind: 'unavailable'; why: 'too_large' | 'timeout' | 'error' };

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Reads and hashes the auth call's body, only when one is announced (Content-Length above 0 or
 * Transfer-Encoding), and never for longer than `timeoutMs`: nginx's auth_request subrequest
 * inherits the client's Content-Length but sends no bytes (FORWARDAUTH.md §6), and waiting for
 * them turned every request into a 60 s timeout there. An HTTP/1.0 call (nginx's default
 * proxy_http_version) is not waited on at all: nginx never forwards a body to auth_request.
 * Once it stops reading, the rest of the body is discarded so the connection can carry on.
 */
export function readBody(stream: BodyStream | undefined, limits: BodyLimits): Promise<BodyRead> {
  if (!stream || stream.readableEnded) return Promise.resolve({ kind: 'none' });
  const te = stream.headers['transfer-encoding'];
  const cl = stream.headers['content-length'];
  const announced = typeof cl === 'string' ? Number(cl) : 0;
  if (te === undefined && !(announced > 0)) return Promise.resolve({ kind: 'none' });
  if (stream.httpVersion === '1.0') return Promise.resolve({ kind: 'none' });
  if (announced > limits.maxBytes) return Promise.resolve({ kind: 'unavailable', why: 'too_large' });
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let settled = false;
    const finish = (r: BodyRead) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      stream.off('error', onError);
      if (r.kind !== 'hashed') {
        // Keep the stream flowing: what is left is dropped, as Node does for an unread body.
        stream.on('error', () => undefined);
        stream.resume();
      }
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) return finish({ kind: 'unavailable', why: 'too_large' });
      hash.update(chunk);
    };
    const onEnd = () => finish({ kind: 'hashed', sha256: hash.digest(), bytes });
    const onClose = () => finish({ kind: 'unavailable', why: 'error' });
    const onError = () => finish({ kind: 'unavailable', why: 'error' });
    const timer = setTimeout(() => finish({ kind: 'unavailable', why: 'timeout' }), limits.timeoutMs);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onClose);
    stream.on('error', onError);
  });
}
