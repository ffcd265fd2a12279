// Prometheus text, parsed: samples by name and labels, for tests that count what the gate recorded.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of an exposition text (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `match`. */
export function total(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** The metrics of an app built by test/helpers/app.ts. */
export async function scrape(app: { deps: { metrics: { registry: { metrics(): Promise<string> } } } }): Promise<Sample[]> {
  return parseMetrics(await app.deps.metrics.registry.metrics());
}

/** The metrics a running gate serves on its admin listener. */
export async function metrics(adminUrl: string): Promise<Sample[]> {
  return parseMetrics(await (await fetch(`${adminUrl}/metrics`)).text());
}
