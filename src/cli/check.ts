// `conflict-gate check`: the same reader as serve; exit 0 valid, 2 not.
import { readConfig, type Env } from '../config/read.js';
import { envIssues, printIssues } from './common.js';

export async function check(configFile: string | undefined, env: Env): Promise<number> {
  if (!configFile) {
    process.stderr.write('conflict-gate: check needs --config FILE (or GATE_CONFIG)\n');
    return 2;
  }
  const result = await readConfig(configFile, env);
  const issues = [...envIssues(env), ...(result.ok ? [] : result.issues)];
  if (issues.length > 0) {
    printIssues(configFile, issues);
    return 2;
  }
  for (const w of result.ok ? result.warnings : []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  process.stdout.write(`${configFile}: OK\n`);
  return 0;
}
