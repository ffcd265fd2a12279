// `conflict-gate check`: the same reader as serve; exit 0 valid, 2 not.
import { readConfig, type Env } from '../config/read.js';
import { envIssues, printIssues } from './common.js';
import { SHIPPED_FORWARD_CLAIMS } from './proxy-config.js';

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
  if (result.ok) {
    // A header the proxy does not copy reaches the API as the client sent it: spoofable.
    const shipped = new Set(SHIPPED_FORWARD_CLAIMS.map((h) => h.toLowerCase()));
    for (const [header] of result.compiled.auth.forwardClaims) {
      if (shipped.has(header.toLowerCase())) continue;
      process.stderr.write(
        `warning: auth.forwardClaims.${header}: the shipped proxy configs (examples/, traefik/, kubernetes/) do not copy ${header}, so through them a client's own ${header} reaches the API; use \`conflict-gate proxy-config --for <proxy> --config ${configFile}\` for yours\n`,
      );
    }
  }
  process.stdout.write(`${configFile}: OK\n`);
  return 0;
}
