// Bytes allocated per decision, by site: V8's sampling heap profiler over one measured round, counting
// the objects later collected by a scavenge or a full GC too (without that it reports only what is
// still alive at the end, which for a request is nearly nothing).
import { Session } from 'node:inspector/promises';
import { areaOf, frameName, isOurs, type CallFrame } from './cpuprofile.js';

interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

export interface AllocRow {
  name: string;
  bytes: number;
}

export interface AllocSummary {
  totalBytes: number;
  /** Bytes by area of the allocating frame: src file, node_modules package, node internals. */
  areas: AllocRow[];
  /** Bytes by allocating function. */
  sites: AllocRow[];
  /** Bytes by the innermost frame of our own code on the allocating stack (where our code caused it). */
  ours: AllocRow[];
}

/**
 * Runs `work` under the sampling heap profiler (one sample per `intervalBytes` on average).
 * `promotedOnly`: leaves out what a scavenge collected, so what remains is what outlived the young
 * generation (promoted, then collected by a full GC, or alive at the end): what makes full GCs.
 */
export async function profileAllocations(work: () => Promise<void>, intervalBytes = 256, promotedOnly = false): Promise<SamplingNode> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !promotedOnly });
    await work();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
    return profile.head;
  } finally {
    session.disconnect();
  }
}

export function summarizeAllocations(head: SamplingNode, top = 15): AllocSummary {
  const areas = new Map<string, number>();
  const sites = new Map<string, number>();
  const ours = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const walk = (n: SamplingNode, innermostOurs: string) => {
    const f = n.callFrame;
    const area = areaOf(f.url, f.functionName);
    const name = frameName(f);
    const here = isOurs(f.url) ? name : innermostOurs;
    if (n.selfSize > 0) {
      total += n.selfSize;
      add(areas, area, n.selfSize);
      add(sites, name, n.selfSize);
      add(ours, here, n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(head, '(outside our code)');
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, bytes]) => ({ name, bytes }));
  return { totalBytes: total, areas: rows(areas), sites: rows(sites), ours: rows(ours) };
}

export function renderAllocations(s: AllocSummary, decisions: number, promotedOnly = false): string {
  const per = (b: number) => `${(b / decisions).toFixed(0).padStart(6)} B`;
  const block = (title: string, rows: AllocRow[]) => [`  ${title}`, ...rows.map((r) => `    ${per(r.bytes)}  ${r.name}`)].join('\n');
  return [
    `  ${per(s.totalBytes).trim()} ${promotedOnly ? 'outlived the young generation' : 'allocated'} per decision (sampled${promotedOnly ? '' : ', collected objects included'})`,
    block('by area of the allocating frame:', s.areas),
    block('by allocating function:', s.sites),
    block('by the innermost frame of our code on the stack:', s.ours),
  ].join('\n');
}
