// One decision, recorded once: its metrics and its log line (denials, shadowed denials).
import type { Deny } from '../core/decision.js';
import type { Step } from '../core/step.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

/** Everything known of one answered /auth request. */
export interface DecisionEvent {
  outcome: 'allow' | 'deny';
  /** The denial answered (outcome deny). */
  deny?: Deny;
  status: number;
  /** Denials shadow mode turned into allows. */
  shadowed: readonly Deny[];
  steps: readonly Step[];
  method?: string;
  path?: string;
  clientIp?: string;
  clientId?: string | null;
  seconds: number;
}

export class DecisionRecorder {
  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  record(e: DecisionEvent): void {
    const { metrics, log } = this;
    for (const s of e.shadowed) {
      metrics.shadowDenial(s.gate, s.code);
      log.info({ gate: s.gate, code: s.code, shadow: true, method: e.method, path: e.path, client: e.clientIp }, 'denied');
    }
    if (e.outcome === 'allow') {
      metrics.decision('pipeline', 'allow');
      metrics.observeLatency(true, e.seconds);
      return;
    }
    const d = e.deny!;
    metrics.decision(d.gate, d.code);
    metrics.observeLatency(false, e.seconds);
    log.info({ gate: d.gate, code: d.code, status: e.status, method: e.method, path: e.path, client: e.clientIp }, 'denied');
  }

  /** A replay answered from a kept denial (nginx): recorded when it was first decided. */
  replayed(): void {
    this.metrics.decision('replay', 'replayed');
  }
}
