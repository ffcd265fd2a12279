// What one gate did for one request: the decision, the rule behind it, what it read. Pure data.
import type { Decision, Deny } from './decision.js';

export type GateName = 'auth' | 'ratelimit' | 'conflict';

/**
 * `live` answers a request: points are consumed, leases taken. `explain` answers "what would the
 * gate do": it reads the same state and changes nothing (no point, no lease, no replay entry).
 */
export type RunMode = 'live' | 'explain';

export type Mode = 'enforce' | 'shadow';

/** A value a gate read, shown in a trace (`version: "7"`, `used: 3`). */
export type Seen = Record<string, string | number | boolean | null>;

export interface Step {
  gate: GateName;
  /** The rule that applied, as written in the config (`writes`, `/api/orders/:id`); null when none did. */
  rule: string | null;
  mode: Mode;
  /** An allow (with headers for the upstream) or an enforced denial. */
  decision: Decision;
  /** A denial that `mode: shadow` turned into the allow above. */
  shadowed?: Deny;
  /** What the gate read or concluded, for `explain` and the console (never a token or secret). */
  seen: Seen;
}

/** Who is asking, for the later gates: a verified client, or an anonymous caller (clientId null) on a public route. */
export interface Caller {
  clientId: string | null;
  claims: Record<string, unknown> | null;
}

/** A step for a gate with no rule for this request. */
export function noRule(gate: GateName, why: string): Step {
  return { gate, rule: null, mode: 'enforce', decision: { kind: 'allow', headers: {} }, seen: { skipped: why } };
}

/**
 * Applies a rule's mode to its decision: in `shadow`, a denial becomes an allow carrying
 * `headersIfShadowed`, and the denial is kept to be reported (X-Gate-Shadow, the shadow metric, a
 * log line). The store was read and written exactly as in enforce: only the answer changes.
 */
export function withMode(gate: GateName, rule: string, mode: Mode, decision: Decision, seen: Seen, headersIfShadowed: Record<string, string> = {}): Step {
  if (decision.kind === 'deny' && mode === 'shadow') {
    return { gate, rule, mode, decision: { kind: 'allow', headers: headersIfShadowed }, shadowed: decision, seen };
  }
  return { gate, rule, mode, decision, seen };
}
