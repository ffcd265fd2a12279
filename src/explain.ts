// Explain: runs the pipeline for a described request without side effects and reports each gate's reasoning.
import type { Deny } from './core/decision.js';
import { renderProblem } from './core/problem.js';
import { readForwarded, type ForwardedOptions, type HeaderSource } from './core/forwarded.js';
import { R } from './core/http.js';
import type { GateName, Seen, Step } from './core/step.js';
import { firstCallAnswer, LOST_FIRST_CALL, reachesApi, replayPlan } from './http/replay.js';
import { runPipeline, shadowLabel, type Gates } from './pipeline.js';

/** A request to explain: what the proxy would have forwarded. */
export interface ExplainRequest {
  method: string;
  /** The request-target as the client sent it (`/api/orders/42?x=1`). */
  uri: string;
  /** Client headers (Authorization, If-Match, Client-Version, Idempotency-Key, ...). */
  headers?: Record<string, string>;
  /** The client's IP address (else 127.0.0.1). */
  ip?: string;
}

export interface GateTrace {
  gate: GateName | 'forward';
  /** `allow`; `deny` (the answer); `shadow` (would deny; shadow mode allowed it); `skip` (no rule); `not_reached`. */
  result: 'allow' | 'deny' | 'shadow' | 'skip' | 'not_reached';
  mode?: 'enforce' | 'shadow';
  rule?: string | null;
  code?: string;
  /** Why, in words (the denial's detail). */
  detail?: string;
  /** What the gate read or concluded. */
  seen?: Seen;
}

export interface Trace {
  request: { method: string; uri: string; path?: string; clientIp: string };
  gates: GateTrace[];
  answer: {
    status: number;
    code?: string;
    headers: Record<string, string>;
    body?: unknown;
    shadowed: string[];
    /** nginx's first call (X-Auth-Replay: first): `status` is the 403 /auth sends it; the replay answers this one. */
    replayStatus?: number;
  };
}

const ORDER: readonly GateName[] = ['auth', 'ratelimit', 'conflict'];

function headerSource(req: ExplainRequest): HeaderSource {
  const h = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers ?? {})) h.set(k.toLowerCase(), v);
  h.set(R.forwardedMethod, req.method);
  h.set(R.forwardedUri, req.uri);
  if (req.ip) h.set(R.forwardedFor, req.ip);
  return { get: (n) => h.get(n), repeated: () => false };
}

function traceOf(step: Step): GateTrace {
  const t: GateTrace = { gate: step.gate, result: 'allow', mode: step.mode, rule: step.rule, seen: step.seen };
  if ('skipped' in step.seen) t.result = 'skip';
  if (step.decision.kind === 'deny') Object.assign(t, { result: 'deny', code: step.decision.code, detail: step.decision.detail });
  if (step.shadowed) Object.assign(t, { result: 'shadow', code: step.shadowed.code, detail: step.shadowed.detail });
  return t;
}

/**
 * What the gate would answer, gate by gate, reading the store as a live request would but changing
 * nothing in it: no rate-limit point, no lease, no replay entry.
 */
export async function explain(req: ExplainRequest, gates: Gates, forwarded: ForwardedOptions): Promise<Trace> {
  const clientIp = req.ip ?? '127.0.0.1';
  const h = headerSource(req);
  const facts = readForwarded(h, '127.0.0.1', forwarded);
  const plan = replayPlan(h);
  // A denial as /auth sends it: to nginx's first call, as a 403 that keeps its body (http/replay.ts).
  const denial = (d: Deny, shadowed: string[]): Trace['answer'] => {
    const res = renderProblem(d);
    const sent = firstCallAnswer(plan, res);
    const answer: Trace['answer'] = { status: sent.status, code: d.code, headers: sent.headers, body: JSON.parse(res.body) as unknown, shadowed };
    if (sent.status !== res.status) answer.replayStatus = res.status;
    return answer;
  };
  if ('kind' in facts) {
    return {
      request: { method: req.method, uri: req.uri, clientIp },
      gates: [{ gate: 'forward', result: 'deny', code: facts.code, detail: facts.detail }, ...ORDER.map((g) => ({ gate: g, result: 'not_reached' as const }))],
      answer: denial(facts, []),
    };
  }
  const { decision, steps, shadowed } = await runPipeline(facts, gates, 'explain');
  const traced = steps.map(traceOf);
  for (const g of ORDER.slice(steps.length)) traced.push({ gate: g, result: 'not_reached' });
  const request = { method: facts.method, uri: req.uri, path: facts.path, clientIp: facts.clientIp };
  if (decision.kind === 'deny') return { request, gates: traced, answer: denial(decision, shadowed.map(shadowLabel)) };
  // An allow carrying nginx's replay marker: /auth answers it 503 (http/replay.ts#reachesApi).
  if (!reachesApi(plan)) return { request, gates: traced, answer: denial(LOST_FIRST_CALL, shadowed.map(shadowLabel)) };
  return { request, gates: traced, answer: { status: 200, headers: decision.headers, shadowed: shadowed.map(shadowLabel) } };
}

/** The trace as the CLI prints it. */
export function renderTrace(t: Trace): string {
  const lines = [`${t.request.method} ${t.request.uri}${t.request.path && t.request.path !== t.request.uri ? `  (path ${t.request.path})` : ''}  client ${t.request.clientIp}`, ''];
  for (const g of t.gates) {
    let line = `${g.gate.padEnd(10)} ${g.result.padEnd(11)}`;
    if (g.rule) line += ` rule ${JSON.stringify(g.rule)}${g.mode === 'shadow' ? ' (shadow)' : ''}`;
    if (g.code) line += `  ${g.code}: ${g.detail ?? ''}`;
    lines.push(line.trimEnd());
    const seen = Object.entries(g.seen ?? {}).map(([k, v]) => `${k}=${v === null ? 'none' : String(v)}`);
    if (seen.length > 0) lines.push(`${''.padEnd(22)} ${seen.join(', ')}`);
  }
  const replay = t.answer.replayStatus !== undefined ? `  (nginx's first call: the replay answers ${t.answer.replayStatus})` : '';
  lines.push('', `answer: ${t.answer.status}${t.answer.code ? ` ${t.answer.code}` : ''}${replay}`);
  for (const [k, v] of Object.entries(t.answer.headers)) lines.push(`  ${k}: ${v}`);
  if (t.answer.body !== undefined) lines.push(`  ${JSON.stringify(t.answer.body)}`);
  return lines.join('\n');
}
