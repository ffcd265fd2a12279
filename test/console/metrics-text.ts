// Reads the decision counters out of /metrics text, keyed as the console keys its series (`outcome/gate/code`).

/**
 * `deny/auth/missing_token` → count, `allow//` for allows, `shadow/<gate>/<code>` for shadowed
 * denials, `replay//` for nginx replays served from a kept denial (conflict_gate_replays_total{result="served"}). Reads the contract's names (conflict_gate_decisions_total
 * with an `outcome` label) and the first round's (gate_decisions_total, allows as gate="pipeline"
 * code="allow"), so it holds across the metrics rename of issue 11. Zero counts are left out.
 */
export function decisionCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (id: string, v: number) => {
    if (v > 0) out[id] = (out[id] ?? 0) + v;
  };
  for (const line of text.split('\n')) {
    const m = /^(conflict_gate_decisions_total|gate_decisions_total|conflict_gate_shadow_denials_total|conflict_gate_replays_total)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const v = Number(m[3]);
    const { gate = '', code = '' } = labels;
    if (m[1] === 'conflict_gate_shadow_denials_total') add(`shadow/${gate}/${code}`, v);
    // A replay served from a kept denial is not a decision: counted in conflict_gate_replays_total.
    else if (m[1] === 'conflict_gate_replays_total') {
      if (labels.result === 'served') add('replay//', v);
    }
    else if (labels.outcome === 'allow' || (gate === 'pipeline' && code === 'allow')) add('allow//', v);
    else if (labels.outcome === 'replay' || gate === 'replay') add('replay//', v);
    else add(`deny/${gate}/${code}`, v);
  }
  return out;
}
