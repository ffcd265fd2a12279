// Drives one server with autocannon: a warm-up, then a measured run; latency kept in µs, CPU read from /proc.
import autocannon, { type AcRequest, type AcResult } from 'autocannon';
import { cpuSeconds } from './procs.js';
import { round, Samples } from './stats.js';

export type { AcRequest };

export interface LoadSpec {
  url: string;
  connections: number;
  durationS: number;
  warmupS: number;
  /** The request list connection `i` loops over (static: built once, no per-request setup cost). */
  requestsFor: (connection: number) => AcRequest[];
  /** The server under load, for its CPU use during the measured run. */
  serverPid: number;
  /**
   * A fixed rate (requests/s, all connections together) instead of as fast as the server answers.
   * With connections to spare (each one sends far less often than its requests take), a slow answer
   * does not hold back the next send: the latencies are those of an open-loop load.
   */
  rate?: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  /** Server CPU during the measured run, in % of one core (100 = the core was saturated). */
  serverCpu: number;
  /** Server CPU time per answered request, µs: the per-request cost, much less sensitive than req/s to a busy machine. */
  cpuUsPerReq: number;
  /** Load generator CPU (this process), in % of one core. */
  loadCpu: number;
  /** The measured run, in performance.now() ms of this process (to cut a CPU profile to it). */
  window: { start: number; end: number };
}

function run(spec: LoadSpec, durationS: number, samples: Samples | null): Promise<AcResult> {
  return new Promise((resolve, reject) => {
    let next = 0;
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: durationS,
        timeout: 10,
        // Latency of denials counts too (the 401/429 scenarios are about them).
        excludeErrorStats: false,
        ...(spec.rate !== undefined ? { overallRate: spec.rate } : {}),
        setupClient: (client) => client.setRequests(spec.requestsFor(next++)),
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    if (samples) instance.on('response', (_c, _status, _bytes, ms) => samples.add(ms));
  });
}

/** Warm-up (discarded), then the measured run. */
export async function drive(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmupS > 0) await run(spec, spec.warmupS, null);
  const samples = new Samples();
  const cpu0 = cpuSeconds(spec.serverPid);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await run(spec, spec.durationS, samples);
  const t1 = performance.now();
  const wall = (t1 - t0) / 1000;
  const cpu1 = cpuSeconds(spec.serverPid);
  const self = process.cpuUsage(self0);
  const [p50, p90, p99, p999, max] = samples.percentiles([50, 90, 99, 99.9, 100]);
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statuses[code] = s.count;
  return {
    rps: round(r.requests.total / spec.durationS, 0),
    p50: round(p50!, 2),
    p90: round(p90!, 2),
    p99: round(p99!, 2),
    p999: round(p999!, 2),
    max: round(max!, 2),
    requests: r.requests.total,
    statuses,
    errors: r.errors,
    timeouts: r.timeouts,
    serverCpu: round(((cpu1 - cpu0) / wall) * 100, 0),
    cpuUsPerReq: round(((cpu1 - cpu0) * 1e6) / Math.max(1, r.requests.total), 1),
    loadCpu: round(((self.user + self.system) / 1e6 / wall) * 100, 0),
    window: { start: round(t0, 0), end: round(t1, 0) },
  };
}
