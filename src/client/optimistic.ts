// Optimistic writes for API consumers, with any fetch: read + ETag, apply, write with If-Match, retry the way the gate's answers say.
// No Node imports: runs in browsers too (fetch, crypto.randomUUID, crypto.subtle, TextEncoder).

/** One retry: why the helper sent another request, and how long it waited first. */
export interface RetryEvent {
  /** `reread`: the write was stale (412, 409 precondition_failed / stale_client_version / write_in_progress), so read again and re-apply;
   *  `resend`: the same write again (409 idempotency_in_flight, 429, 503, a network error);
   *  `read-again`: the read got 429 / 503. */
  kind: 'reread' | 'resend' | 'read-again';
  /** The status that caused it (0 for a network error). */
  status: number;
  /** The problem+json `code`, when there was one. */
  code?: string;
  /** Time the helper waits before the next request, ms (0: none). onRetry is told before the wait. */
  waitMs: number;
  /** Requests sent so far (reads and writes). */
  attempt: number;
}

export interface OptimisticStats {
  /** Requests sent, reads and writes together (bounded by maxAttempts). */
  attempts: number;
  reads: number;
  /** Reads sent again after a 429, a 503 or a network error. */
  readRetries: number;
  writes: number;
  /** Times the change was re-applied to a fresh read. */
  rereads: number;
  /** Times the same write was sent again. */
  resends: number;
  waits: number;
  waitedMs: number;
  networkErrors: number;
  /** Non-2xx answers by `<status>` or `<status> <code>`. */
  answers: Record<string, number>;
}

export interface OptimisticResult {
  /** The successful (2xx) write response, body unread. */
  response: Response;
  /** What `apply` returned for the write that succeeded. */
  value: unknown;
  /** The Idempotency-Key every write of this call carried (null with `idempotencyKey: false`). */
  idempotencyKey: string | null;
  stats: OptimisticStats;
}

export interface OptimisticOptions<T = unknown> {
  /** The resource: read with GET, written with `method`. */
  url: string | URL;
  /** The caller's change: the new representation, from the current one. Called again after each re-read. */
  apply: (current: T, info: { version: string | null; attempt: number }) => unknown;
  /**
   * Node's, a browser's, or any compatible fetch (default: globalThis.fetch; node-fetch and cross-fetch
   * too). Whatever it rejects with, but an abort, is a lost answer and retried: what the caller's own
   * inputs would make it refuse (header values, and with the default fetch the URL and method) is
   * checked before it is called, as `caller_error`.
   */
  fetch?: (input: string | URL, init: RequestInit) => Promise<Response>;
  /** Default PUT. */
  method?: string;
  /**
   * Headers for every request (Authorization...); a function is called before each request (token refresh).
   * A function that throws, or a value fetch refuses (CR, LF, NUL), is `caller_error`.
   */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** The current representation from a read (default: `res.json()`); a throw (a body that is not JSON) is `read_failed`. */
  read?: (res: Response) => Promise<T>;
  /** The version from a read: default the ETag (`"8"` → `8`); return null when there is none. A throw is `read_failed`. */
  version?: (res: Response, value: T) => string | null;
  /** Which precondition carries the version: If-Match (default) or Client-Version. */
  precondition?: 'if-match' | 'client-version';
  /** The body of a write (default: JSON, `application/json`). A throw is `caller_error`. */
  encode?: (value: unknown) => { body: string | Uint8Array; contentType?: string };
  /** The Idempotency-Key of this logical write, reused by every retry of it: a random UUID by default; false sends none. */
  idempotencyKey?: string | false;
  /**
   * Send `Content-Digest: sha-256=:…:` with each write (default true where crypto.subtle exists):
   * it is what the gate fingerprints when the proxy does not forward the body (Caddy, nginx).
   */
  contentDigest?: boolean;
  /** Requests at most, reads and writes together: an integer ≥ 1 (default 20). */
  maxAttempts?: number;
  /** The cap on one wait, ms (default 5000): Retry-After is followed up to it. From 0 to 2^31-1 (setTimeout's limit). */
  maxWaitMs?: number;
  /**
   * The wait when an answer has no Retry-After (429, 503, network error): doubled each time, default 100 ms.
   * From 0 (no wait) to 2^31-1. Options out of range are a TypeError: nothing is clamped.
   */
  baseDelayMs?: number;
  signal?: AbortSignal;
  /** Random source for the jitter (default Math.random). */
  random?: () => number;
  /** Told of every retry before its wait (abort the signal here to give up). */
  onRetry?: (e: RetryEvent) => void;
}

/**
 * - `attempts_exhausted`: `maxAttempts` requests sent, none a successful write;
 * - `refused`: the write got a final answer (4xx other than the retried ones, 5xx other than 503);
 * - `read_failed`: the read got a final non-2xx answer, or its body could not be read (`read` or `version`
 *   threw, the default read's body is not JSON: the error is the `cause`);
 * - `caller_error`: the request could not be made from the caller's inputs: `headers` or `encode` threw, a
 *   header value fetch refuses (CR, LF, NUL) or, with the default fetch, a URL or method it refuses (all
 *   checked before fetch is called). Another attempt would fail the same way, so none is made; the
 *   original error is the `cause`.
 */
export type OptimisticErrorCode = 'attempts_exhausted' | 'read_failed' | 'refused' | 'caller_error';

/** The write did not succeed: refused for good (`refused`, `read_failed`, `caller_error`) or out of attempts. */
export class OptimisticWriteError extends Error {
  constructor(
    readonly code: OptimisticErrorCode,
    message: string,
    readonly stats: OptimisticStats,
    /** The last answer (body unread, except a problem+json already parsed into `problem`, or a read's body `read` failed on). */
    readonly response?: Response,
    readonly problem?: Record<string, unknown>,
    /** The error behind it (`read_failed` from a body, `caller_error`): the standard `Error.cause`. */
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OptimisticWriteError';
  }
}

/**
 * Read-modify-write against an API behind conflict-gate, retrying the way the gate's answers say:
 *
 * | answer to the write | what the helper does |
 * |---|---|
 * | 2xx | done |
 * | 412, 409 `precondition_failed` (conflict.ifMatchStatus: 409) or `stale_client_version` | read again, re-apply, write again |
 * | 409 `write_in_progress` | wait Retry-After, then read again and re-apply (the lease holder is changing it) |
 * | 409 `idempotency_in_flight`, 429, 503, a network error | wait Retry-After, send the same write again |
 * | anything else | OptimisticWriteError `refused` |
 *
 * A failure on this side is not retried: a callback that throws or a header value fetch refuses is
 * OptimisticWriteError `caller_error`, a read body that cannot be read `read_failed`; options out of
 * range are a TypeError before anything is sent. An abort rejects with the signal's reason.
 *
 * Every wait is Retry-After (or a doubling backoff when there is none), capped at `maxWaitMs`, then
 * jittered to 50–100 % so that clients told the same Retry-After do not come back together. One
 * Idempotency-Key per call, reused by every write of it: a write whose answer was lost is sent
 * again under the same key, and the gate (and the upstream) recognise it. A write the gate refuses
 * (412, 409, 428) leaves no record, so re-applying under the same key is not a "different request".
 *
 * ```ts
 * const r = await optimisticWrite<Order>({
 *   url: 'https://api.example/api/orders/42',
 *   headers: { Authorization: `Bearer ${token}` },
 *   apply: (order) => ({ ...order, quantity: order.quantity + 1 }),
 * });
 * console.log(r.response.status, r.stats.rereads, r.stats.waitedMs);
 * ```
 */
export async function optimisticWrite<T = unknown>(opts: OptimisticOptions<T>): Promise<OptimisticResult> {
  // Checked, not clamped: NaN would make the loop endless (attempts >= NaN is never true) and setTimeout
  // takes a delay past 2^31-1 ms for 1 ms, so a bad value would fail quietly, far from its cause.
  const maxAttempts = opts.maxAttempts ?? 20;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new TypeError(`optimisticWrite: maxAttempts must be an integer ≥ 1 (got ${maxAttempts})`);
  const maxWaitMs = checkMs('maxWaitMs', opts.maxWaitMs ?? 5000);
  const baseDelayMs = checkMs('baseDelayMs', opts.baseDelayMs ?? 100);
  const doFetch = opts.fetch ?? ((input: string | URL, init: RequestInit) => globalThis.fetch(input, init));
  const method = opts.method ?? 'PUT';
  const random = opts.random ?? Math.random;
  const subtle = globalThis.crypto?.subtle;
  const digest = opts.contentDigest ?? subtle !== undefined;
  const key = opts.idempotencyKey === false ? null : (opts.idempotencyKey ?? globalThis.crypto.randomUUID());
  const stats: OptimisticStats = { attempts: 0, reads: 0, readRetries: 0, writes: 0, rereads: 0, resends: 0, waits: 0, waitedMs: 0, networkErrors: 0, answers: {} };
  const signal = opts.signal;

  /** The caller's input or callback failed: final, as another attempt would fail the same way (an abort stays an abort). */
  const callerError = (what: string, err: unknown): never => {
    signal?.throwIfAborted();
    throw new OptimisticWriteError('caller_error', `${what}: ${err instanceof Error ? err.message : String(err)}`, stats, undefined, undefined, err);
  };
  const headers = async (): Promise<Record<string, string>> => {
    try {
      return typeof opts.headers === 'function' ? await opts.headers() : (opts.headers ?? {});
    } catch (err) {
      return callerError('the headers function threw', err);
    }
  };
  const send = async (init: { method: string; headers: Record<string, string>; body?: BodyInit }): Promise<Response | null> => {
    signal?.throwIfAborted();
    // Built before fetch, outside the try below: fetch rejects a header value it refuses (CR LF) with the
    // same TypeError as a network failure, which would then be retried to the end. The default fetch's
    // own Request checks the URL and method too; a custom fetch may take URLs a Request does not (a path
    // it resolves itself), so only the headers are checked for it. fetch still gets the plain record.
    try {
      if (opts.fetch) new Headers(init.headers);
      else new Request(opts.url, init);
    } catch (err) {
      return callerError(`fetch would refuse this ${init.method}`, err);
    }
    stats.attempts++;
    try {
      return await doFetch(opts.url, { ...init, ...(signal ? { signal } : {}) });
    } catch (err) {
      // An abort is the caller's decision, not a network error to retry.
      signal?.throwIfAborted();
      if (err instanceof Error && err.name === 'AbortError') throw err;
      // A network failure (refused, reset, DNS): a TypeError from the standard fetch ("fetch failed", the
      // socket error as cause), a FetchError from node-fetch, a TimeoutError from a per-request timeout.
      // Whatever the class, the answer was lost, so the request goes again; the caller's own inputs were
      // checked above, where a refusal is final.
      stats.networkErrors++;
      return null;
    }
  };
  let backoffs = 0;
  /** How long to wait before the next request: Retry-After (else a doubling backoff), capped, jittered. */
  const waitFor = (res: Response | null): number => {
    const told = res ? retryAfterMs(res.headers.get('retry-after')) : null;
    const base = told ?? baseDelayMs * 2 ** Math.min(backoffs++, 16);
    return Math.round(Math.min(base, maxWaitMs) * (0.5 + random() * 0.5));
  };
  /** Tells onRetry first (so a caller can abort the wait itself), then waits. */
  const retry = async (e: RetryEvent): Promise<void> => {
    opts.onRetry?.(e);
    if (e.waitMs > 0) {
      stats.waits++;
      stats.waitedMs += e.waitMs;
      await sleep(e.waitMs, signal);
    }
  };
  const note = (res: Response, code?: string) => {
    const k = code ? `${res.status} ${code}` : String(res.status);
    stats.answers[k] = (stats.answers[k] ?? 0) + 1;
  };
  const exhausted = (res?: Response, problem?: Record<string, unknown>): never => {
    throw new OptimisticWriteError('attempts_exhausted', `no successful write after ${stats.attempts} requests`, stats, res, problem);
  };

  let current: { value: T; version: string | null } | null = null;
  let pending: { value: unknown; body: string | Uint8Array; contentType?: string; digest?: string } | null = null;
  for (;;) {
    if (stats.attempts >= maxAttempts) exhausted();
    if (current === null) {
      stats.reads++;
      const res = await send({ method: 'GET', headers: await headers() });
      if (res === null || res.status === 429 || res.status === 503) {
        if (res) note(res);
        await discard(res);
        stats.readRetries++;
        await retry({ kind: 'read-again', status: res?.status ?? 0, waitMs: waitFor(res), attempt: stats.attempts });
        continue;
      }
      if (!res.ok) {
        note(res);
        throw new OptimisticWriteError('read_failed', `the read answered ${res.status}`, stats, res);
      }
      try {
        const value = await (opts.read ? opts.read(res) : (res.json() as Promise<T>));
        current = { value, version: opts.version ? opts.version(res, value) : unquote(res.headers.get('etag')) };
      } catch (err) {
        // A 200 that is not the representation (an HTML maintenance page, a schema `read` rejects): final.
        signal?.throwIfAborted();
        throw new OptimisticWriteError('read_failed', `the read's body could not be read: ${err instanceof Error ? err.message : String(err)}`, stats, res, undefined, err);
      }
      continue;
    }
    if (pending === null) {
      const value = await opts.apply(current.value, { version: current.version, attempt: stats.attempts });
      let encoded: { body: string | Uint8Array; contentType?: string };
      try {
        encoded = opts.encode ? opts.encode(value) : { body: JSON.stringify(value), contentType: 'application/json' };
      } catch (err) {
        return callerError('encode threw', err);
      }
      pending = { value, ...encoded, ...(digest && subtle ? { digest: await contentDigest(subtle, encoded.body) } : {}) };
    }
    const h: Record<string, string> = { ...(await headers()) };
    if (pending.contentType) h['Content-Type'] = pending.contentType;
    if (pending.digest) h['Content-Digest'] = pending.digest;
    if (key !== null) h['Idempotency-Key'] = `"${key}"`;
    if (current.version !== null) {
      if (opts.precondition === 'client-version') h['Client-Version'] = current.version;
      else h['If-Match'] = `"${current.version}"`;
    }
    stats.writes++;
    const res = await send({ method, headers: h, body: pending.body as BodyInit });
    if (res !== null && res.ok) return { response: res, value: pending.value, idempotencyKey: key, stats };

    const problem = res !== null && res.status === 409 ? await problemOf(res) : undefined;
    const code = typeof problem?.code === 'string' ? problem.code : undefined;
    if (res !== null) note(res, code);
    // 409 precondition_failed: the same stale If-Match from a gate configured with conflict.ifMatchStatus: 409.
    if (res !== null && (res.status === 412 || code === 'precondition_failed' || code === 'stale_client_version' || code === 'write_in_progress')) {
      // Stale: read the new version and apply the change to it (after the lease, when one is held).
      await discard(res);
      stats.rereads++;
      await retry({ kind: 'reread', status: res.status, ...(code ? { code } : {}), waitMs: code === 'write_in_progress' ? waitFor(res) : 0, attempt: stats.attempts });
      current = null;
      pending = null;
      continue;
    }
    if (res === null || code === 'idempotency_in_flight' || res.status === 429 || res.status === 503) {
      await discard(res);
      stats.resends++;
      await retry({ kind: 'resend', status: res?.status ?? 0, ...(code ? { code } : {}), waitMs: waitFor(res), attempt: stats.attempts });
      continue;
    }
    throw new OptimisticWriteError('refused', `the write answered ${res.status}${code ? ` ${code}` : ''}`, stats, res, problem);
  }
}

/** A limit in ms for setTimeout: a number from 0 to 2^31-1 (past it, Node waits 1 ms instead). */
function checkMs(name: string, ms: number): number {
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= 2 ** 31 - 1)) throw new TypeError(`optimisticWrite: ${name} must be a number of ms from 0 to 2147483647 (got ${ms})`);
  return ms;
}

/**
 * Retry-After as ms (RFC 9110 §10.2.3): delay-seconds (`1*DIGIT`) or an HTTP-date; null when absent or
 * anything else (`-5`, `2.5`, an ISO date), which Date.parse would read as some past date, i.e. no wait.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = httpDate(v, now);
  return at === null ? null : Math.max(0, at - now);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MON = `(?<month>${MONTHS.join('|')})`;
const TIME = '(?<hour>\\d{2}):(?<minute>\\d{2}):(?<second>\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must still accept (RFC 850, asctime).
const HTTP_DATES = [
  new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?<day>\\d{2}) ${MON} (?<year>\\d{4}) ${TIME} GMT$`),
  new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (?<day>\\d{2})-${MON}-(?<year>\\d{2}) ${TIME} GMT$`),
  new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MON} (?<day>[ \\d]\\d) ${TIME} (?<year>\\d{4})$`),
];

/** An HTTP-date as epoch ms, all three forms GMT (asctime has no zone and means GMT); null when it is none. */
function httpDate(v: string, now: number): number | null {
  const g = HTTP_DATES.map((re) => re.exec(v)).find((m) => m !== null)?.groups;
  if (!g) return null;
  let year = Number(g.year);
  if (g.year!.length === 2) {
    // RFC 850's two-digit year: the one with those digits within 50 years of now (§5.6.7: never more than 50 ahead).
    const thisYear = new Date(now).getUTCFullYear();
    year += thisYear - (thisYear % 100);
    if (year > thisYear + 50) year -= 100;
    else if (year <= thisYear - 50) year += 100;
  }
  const [day, hour, minute, second] = [g.day, g.hour, g.minute, g.second].map(Number) as [number, number, number, number];
  if (hour > 23 || minute > 59 || second > 60) return null;
  const at = Date.UTC(year, MONTHS.indexOf(g.month!), day, hour, minute, second);
  // Date.UTC rolls 31 Feb over into March: a day the month does not have is no date.
  return new Date(at).getUTCDate() === day ? at : null;
}

function unquote(etag: string | null): string | null {
  if (etag === null) return null;
  const m = /^(?:W\/)?"([^"]*)"$/.exec(etag.trim());
  return m ? m[1]! : etag.trim();
}

async function problemOf(res: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body = (await res.json()) as unknown;
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Frees the connection of an answer the helper does not read. */
async function discard(res: Response | null): Promise<void> {
  if (res && !res.bodyUsed) await res.body?.cancel().catch(() => undefined);
}

/** RFC 9530 Content-Digest, sha-256, of exactly the bytes sent. */
async function contentDigest(subtle: SubtleCrypto, body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const hash = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let bin = '';
  for (const b of hash) bin += String.fromCharCode(b);
  return `sha-256=:${btoa(bin)}:`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
