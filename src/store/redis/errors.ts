// What a failed Redis call means, read from the error's type and the reply's error code, never from free text.
import { ReplyError } from 'ioredis';
import { STORE_NOT_READY, StoreError } from '../port.js';

/** One instance per outcome: an outage must not cost an Error (and its stack) per request. */
export const STORE_TIMEOUT = new StoreError('timeout', 'store command timed out');

/** `p`, or a rejection with `error` after `ms` (the timer is cleared either way). */
export function within<T>(p: Promise<T>, ms: number, error: Error = STORE_TIMEOUT): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
const OTHER = new StoreError('other', 'store error');
const SCRIPT = new StoreError('script', 'store script error');

/**
 * Replies Redis Cluster gives instead of executing a command, because the key's slot is elsewhere
 * or moving. None of them ran the command, so re-sending one through the cluster client (which
 * follows them) is safe.
 */
export const REDIRECTS: ReadonlySet<string> = new Set(['MOVED', 'ASK', 'TRYAGAIN']);
const CLUSTER_REPLIES: ReadonlySet<string> = new Set([...REDIRECTS, 'CLUSTERDOWN', 'CROSSSLOT']);
/** A node that cannot serve writes now: loading its dataset, a replica (a demoted master), or a replica cut off from its master. */
const UNAVAILABLE_REPLIES: ReadonlySet<string> = new Set(['LOADING', 'READONLY', 'MASTERDOWN', 'BUSY']);
/**
 * Replies of a node that answers but refuses writes (READONLY: a replica; OOM: full under
 * `noeviction`; MISCONF: its last save failed; NOREPLICAS: min-replicas-to-write unmet). The health
 * probe's write check reports them with the reply as the reason (a replica as down, the others as
 * refusing writes while reads go on); a call that meets one asks for such a probe.
 */
export const WRITE_REFUSALS: ReadonlySet<string> = new Set(['READONLY', 'OOM', 'MISCONF', 'NOREPLICAS', 'LOADING', 'MASTERDOWN']);

const byReply = new Map<string, StoreError>();
function clusterError(code: string): StoreError {
  let e = byReply.get(code);
  if (!e) byReply.set(code, (e = new StoreError('cluster', `store answered ${code}`)));
  return e;
}

/**
 * The error code of a Redis error reply: its first word (RESP: "-MOVED 3999 10.0.0.2:6379").
 * That prefix is the protocol's machine-readable code; the rest is prose.
 */
export function replyCode(err: unknown): string | undefined {
  if (!(err instanceof ReplyError)) return undefined;
  const message = (err as Error).message;
  const space = message.indexOf(' ');
  return space === -1 ? message : message.slice(0, space);
}

export interface FailureContext {
  /** The call ran a Lua script (an ERR reply is then the script's own failure). */
  script: boolean;
  /** The connection was up when the call failed (else a generic client error is "not connected"). */
  connected: boolean;
}

/**
 * Turns whatever ioredis or rate-limiter-flexible rejected with into a StoreError, by type:
 * - a ReplyError (Redis answered an error) by its reply code: MOVED / ASK / TRYAGAIN / CLUSTERDOWN /
 *   CROSSSLOT are `cluster`, LOADING / READONLY / MASTERDOWN / BUSY are `not_ready`, OOM / MISCONF /
 *   NOREPLICAS (writes refused) `other`, also from a script; NOSCRIPT or a failing script are `script`;
 * - ioredis' typed errors (MaxRetriesPerRequestError and AbortError: the command was dropped when
 *   the connection went; ClusterAllFailedError: no node answered) are `not_ready`;
 * - anything else thrown while the connection was down is `not_ready`.
 * Two ioredis errors have no type of their own and are read by their fixed message: its
 * commandTimeout ("Command timed out", normally pre-empted by the store's own deadline) and its
 * cluster redirection limit ("Too many Cluster redirections").
 */
export function classify(err: unknown, ctx: FailureContext): StoreError {
  if (err instanceof StoreError) return err;
  const reply = replyCode(err);
  if (reply !== undefined) {
    if (CLUSTER_REPLIES.has(reply)) return clusterError(reply);
    // Before the script test: a script the node refused to run did not fail.
    if (UNAVAILABLE_REPLIES.has(reply)) return STORE_NOT_READY;
    if (WRITE_REFUSALS.has(reply)) return OTHER;
    if (reply === 'NOSCRIPT' || ctx.script) return SCRIPT;
    return OTHER;
  }
  if (err instanceof Error) {
    if (err.name === 'MaxRetriesPerRequestError' || err.name === 'AbortError' || err.name === 'ClusterAllFailedError') return STORE_NOT_READY;
    if (err.message === 'Command timed out') return STORE_TIMEOUT;
    if (err.message.startsWith('Too many Cluster redirections')) return clusterError('MOVED');
    if (err instanceof TypeError || err instanceof RangeError) return OTHER;
  }
  return ctx.connected ? OTHER : STORE_NOT_READY;
}

