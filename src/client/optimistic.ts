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
  /** Node's, a browser's, or any compatible fetch (default: globalThis.fetch). */
  fetch?: (input: string | URL, init: RequestInit) => Promise<Response>;
  /** Default PUT. */
  method?: string;
  /** Headers for every request (Authorization...); a function is called before each request (token refresh). */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** The current representation from a read (default: `res.json()`). */
  read?: (res: Response) => Promise<T>;
  /** The version from a read: default the ETag (`"8"` → `8`); return null when there is none. */
  version?: (res: Response, value: T) => string | null;
  /** Which precondition carries the version: If-Match (default) or Client-Version. */
  precondition?: 'if-match' | 'client-version';
  /** The body of a write (default: JSON, `application/json`). */
  encode?: (value: unknown) => { body: string | Uint8Array; contentType?: string };
  /** The Idempotency-Key of this logical write, reused by every retry of it: a random UUID by default; false sends none. */
  idempotencyKey?: string | false;
  /**
   * Send `Content-Digest: sha-256=:…:` with each write (default true where crypto.subtle exists):
   * it is what the gate fingerprints when the proxy does not forward the body (Caddy, nginx).
   */
  contentDigest?: boolean;
  /** Requests at most, reads and writes together (default 20). */
  maxAttempts?: number;
  /** The cap on one wait, ms (default 5000): Retry-After is followed up to it. */
  maxWaitMs?: number;
  /** The wait when an answer has no Retry-After (429, 503, network error): doubled each time, default 100 ms. */
  baseDelayMs?: number;
  signal?: AbortSignal;
  /** Random source for the jitter (default Math.random). */
  random?: () => number;
  /** Told of every retry before its wait (abort the signal here to give up). */
  onRetry?: (e: RetryEvent) => void;
}

export type OptimisticErrorCode = 'attempts_exhausted' | 'read_failed' | 'refused';

/** The write did not succeed: refused for good (`refused`, `read_failed`) or out of attempts. */
export class OptimisticWriteError extends Error {
  constructor(
    readonly code: OptimisticErrorCode,
    message: string,
    readonly stats: OptimisticStats,
    /** The last answer (body unread, except a problem+json already parsed into `problem`). */
    readonly response?: Response,
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
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
  const doFetch = opts.fetch ?? ((input: string | URL, init: RequestInit) => globalThis.fetch(input, init));
  const method = opts.method ?? 'PUT';
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 20);
  const maxWaitMs = Math.max(0, opts.maxWaitMs ?? 5000);
  const baseDelayMs = Math.max(1, opts.baseDelayMs ?? 100);
  const random = opts.random ?? Math.random;
  const subtle = globalThis.crypto?.subtle;
  const digest = opts.contentDigest ?? subtle !== undefined;
  const key = opts.idempotencyKey === false ? null : (opts.idempotencyKey ?? globalThis.crypto.randomUUID());
  const stats: OptimisticStats = { attempts: 0, reads: 0, readRetries: 0, writes: 0, rereads: 0, resends: 0, waits: 0, waitedMs: 0, networkErrors: 0, answers: {} };
  const signal = opts.signal;

  const headers = async (): Promise<Record<string, string>> => (typeof opts.headers === 'function' ? await opts.headers() : (opts.headers ?? {}));
  const send = async (init: RequestInit): Promise<Response | null> => {
    signal?.throwIfAborted();
    stats.attempts++;
    try {
      return await doFetch(opts.url, { ...init, ...(signal ? { signal } : {}) });
    } catch (err) {
      // An abort is the caller's decision, not a network error to retry.
      signal?.throwIfAborted();
      if (err instanceof Error && err.name === 'AbortError') throw err;
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
      const value = await (opts.read ? opts.read(res) : (res.json() as Promise<T>));
      current = { value, version: opts.version ? opts.version(res, value) : unquote(res.headers.get('etag')) };
      continue;
    }
    if (pending === null) {
      const value = await opts.apply(current.value, { version: current.version, attempt: stats.attempts });
      const encoded = opts.encode ? opts.encode(value) : { body: JSON.stringify(value), contentType: 'application/json' };
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

/** Retry-After as ms: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
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
