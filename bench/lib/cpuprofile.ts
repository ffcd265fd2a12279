// Summarises a V8 .cpuprofile (node --cpu-prof): self and inclusive time per function and per area.
import { readFileSync } from 'node:fs';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of busy time (idle excluded) per area: src file, node_modules package, node internals, GC. */
  areas: ProfileRow[];
  /** Functions by self time. */
  self: ProfileRow[];
  /** src/ functions by inclusive time (self + callees): where a request's time goes, seen from our code. */
  inclusive: ProfileRow[];
  /** Every area's self time in ms (for per-request comparisons). */
  allAreas: Record<string, number>;
}

/** `src/gates/auth/verify.ts`-like for our code, `jose`/`ioredis` for packages, `node:internal` for the runtime. */
export function areaOf(url: string, fn: string): string {
  if (url === '') return fn === '' ? '(native)' : `(${fn.replace(/[()]/g, '')})`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const dist = /\/dist\/(.+)\.js$/.exec(url);
  if (dist) return `src/${dist[1]}.ts`;
  const src = /\/(src\/.+)$/.exec(url);
  if (src) return src[1]!;
  if (url.startsWith('node:')) {
    const m = /^node:(internal\/[^/]+|[^/]+)/.exec(url);
    return `node:${m ? m[1] : url.slice(5)}`;
  }
  return url;
}

/** Our own code (src/ or its build in dist/), not a package's. */
export function isOurs(url: string): boolean {
  return /\/(src|dist)\//.test(url) && !url.includes('node_modules');
}

/** `fn src/file.ts:line` for a frame of code, the area alone for natives and V8's own entries. */
export function frameName(f: CallFrame): string {
  const area = areaOf(f.url, f.functionName);
  return f.url === '' ? area : `${f.functionName || '(anonymous)'} ${area}:${f.lineNumber + 1}`;
}

/**
 * `fromMs`/`toMs`: only samples in that window after the profile's start (the process start), so
 * startup and warm-up (first-time token verification, JIT) do not blur the steady state.
 */
export function summarize(file: string, top = 15, window: { fromMs?: number; toMs?: number } = {}): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const from = (window.fromMs ?? 0) * 1000;
  const to = (window.toMs ?? Infinity) * 1000;
  let clock = 0;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    clock += p.timeDeltas[i] ?? 0;
    if (clock < from || clock > to) continue;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(p.samples[i]!);
    if (!leaf) continue;
    const fn = leaf.callFrame.functionName;
    if (leaf.callFrame.url === '' && fn === '(idle)') continue;
    busy += dt;
    const name = frameName(leaf.callFrame);
    self.set(name, (self.get(name) ?? 0) + dt);
    const area = areaOf(leaf.callFrame.url, fn);
    areas.set(area, (areas.get(area) ?? 0) + dt);
    // Inclusive time for our own functions: each distinct src frame on the stack counts once.
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (!isOurs(f.url)) continue;
      const key = frameName(f);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  const rows = (m: Map<string, number>, n: number): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((ms / busy) * 1000) / 10 }));
  return { totalMs: Math.round(busy), areas: rows(areas, top), self: rows(self, top), inclusive: rows(inclusive, top), allAreas: Object.fromEntries(areas) };
}

export function renderSummary(s: ProfileSummary): string {
  const block = (title: string, rows: ProfileRow[]) => [`  ${title}`, ...rows.map((r) => `    ${r.pct.toFixed(1).padStart(5)} %  ${r.name}`)].join('\n');
  return [`  busy ${s.totalMs} ms (idle excluded)`, block('by area (self time):', s.areas), block('by function (self time):', s.self), block('our code, inclusive:', s.inclusive)].join('\n');
}

/**
 * CPU µs per request by area, gate minus bare: what the gate adds on top of serving HTTP with Hono.
 * Both profiles cover their measured run only.
 */
export function perRequestDiff(gate: ProfileSummary, gateRequests: number, bare: ProfileSummary, bareRequests: number, top = 12): { area: string; gateUs: number; bareUs: number; extraUs: number }[] {
  const names = new Set([...Object.keys(gate.allAreas), ...Object.keys(bare.allAreas)]);
  const us = (ms: number | undefined, n: number) => ((ms ?? 0) * 1000) / Math.max(1, n);
  const rows = [...names].map((area) => {
    const g = us(gate.allAreas[area], gateRequests);
    const b = us(bare.allAreas[area], bareRequests);
    return { area, gateUs: Math.round(g * 10) / 10, bareUs: Math.round(b * 10) / 10, extraUs: Math.round((g - b) * 10) / 10 };
  });
  const total = { area: 'TOTAL', gateUs: Math.round(us(gate.totalMs, gateRequests) * 10) / 10, bareUs: Math.round(us(bare.totalMs, bareRequests) * 10) / 10, extraUs: 0 };
  total.extraUs = Math.round((total.gateUs - total.bareUs) * 10) / 10;
  return [total, ...rows.sort((a, b) => b.extraUs - a.extraUs).slice(0, top)];
}
