// The main listener's answer to a request Node's parser gave up on: a problem+json 431 for headers over the limit.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { problemResponse, type ProblemResponse } from '../core/problem.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';

/**
 * The most header bytes the main listener reads (Node's default is 16 KiB). Traefik and Caddy send
 * /auth every header the client sent, a big Cookie too: over 16 KiB, Node answered a bare 431 that
 * nginx turned into a 500, and nothing was logged or counted. 64 KiB is twice what nginx itself
 * accepts (large_client_header_buffers, 4 × 8k by default); Go's limit, Traefik's and Caddy's, is
 * 1 MB, so more can still come: it gets the problem+json 431 below.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

/** One line at most per this long for a run of oversized headers (a client resending its Cookie must not flood the log). */
export const HEADERS_TOO_LARGE_LOG_EVERY_MS = 60_000;

/** Unanswered, a socket whose 431 the client does not read and close is cut after this. */
const LINGER_MS = 2000;

const HEADERS_TOO_LARGE = problemResponse({
  status: 431,
  code: 'headers_too_large',
  title: 'Request header fields too large',
  detail: `The request's headers are over ${MAX_HEADER_BYTES} bytes, the most the gate reads.`,
});

/** A whole HTTP/1.1 response, written straight to a socket the HTTP server no longer frames. */
function raw(p: ProblemResponse): string {
  const head = [`HTTP/1.1 ${p.status} ${STATUS_CODES[p.status]}`, ...Object.entries(p.headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${Buffer.byteLength(p.body)}`, 'Connection: close'];
  return `${head.join('\r\n')}\r\n\r\n${p.body}`;
}

const HEADERS_TOO_LARGE_RAW = raw(HEADERS_TOO_LARGE);

/** What Node answers the other parse errors with (a clientError listener replaces its answer for all of them). */
const NODE_ANSWER: Record<string, string> = {
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
};
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

/**
 * The main listener's `clientError` handler. Headers over MAX_HEADER_BYTES get a problem+json 431,
 * counted in conflict_gate_decisions_total as a denial (gate `forward`, code `headers_too_large`:
 * the proxy's call was answered, as any denial is) and logged at most once per
 * HEADERS_TOO_LARGE_LOG_EVERY_MS, with how many were refused since the last line. The headers
 * themselves are never logged (a Cookie, a token). Other parse errors get Node's own answer.
 */
export function clientErrorHandler(metrics: Metrics, log: Logger, now: () => number = Date.now): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  // The parser reports its error again for each later chunk of a connection it gave up on: answer once.
  const answered = new WeakSet<Duplex>();
  let loggedAt: number | undefined;
  let unlogged = 0;
  return (err, socket) => {
    if (answered.has(socket)) return;
    answered.add(socket);
    // As Node does: never write into a response already under way, nor to a socket that is gone.
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    if (err.code !== 'HPE_HEADER_OVERFLOW') {
      socket.write(NODE_ANSWER[err.code ?? ''] ?? BAD_REQUEST);
      socket.destroy();
      return;
    }
    metrics.decision('deny', 'forward', 'headers_too_large');
    unlogged++;
    const t = now();
    if (loggedAt === undefined || t - loggedAt >= HEADERS_TOO_LARGE_LOG_EVERY_MS) {
      log.warn({ status: 431, peer: (socket as Socket).remoteAddress, limitBytes: MAX_HEADER_BYTES, refused: unlogged }, 'request headers too large: refused with 431 (at most one line a minute)');
      loggedAt = t;
      unlogged = 0;
    }
    // end(), not destroy(): the rest of the headers is still arriving; closing on unread bytes would
    // reset the connection, and a client could lose the 431 before reading it.
    socket.end(HEADERS_TOO_LARGE_RAW);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}
