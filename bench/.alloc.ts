import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
const s = new Session(); s.connect();
await s.post('HeapProfiler.enable');
await s.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.argv.push('--rounds', '2', '--waves', '2000');
await import('./decision-cpu.js');
const { profile } = await s.post('HeapProfiler.stopSampling');
const totals = new Map<string, number>();
const walk = (n: any, stack: string[]) => {
  const f = n.callFrame; const name = `${f.functionName || '(anon)'} ${f.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/main\//, '')}:${f.lineNumber}`;
  const self = n.selfSize as number;
  totals.set(name, (totals.get(name) ?? 0) + self);
  for (const c of n.children) walk(c, [...stack, name]);
};
walk(profile.head, []);
const all = [...totals.values()].reduce((a, b) => a + b, 0);
for (const [k, v] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(((v / all) * 100).toFixed(1).padStart(5) + '%  ' + k);
