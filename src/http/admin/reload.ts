// Admin POST /reload: re-read the config file and the key files it names; 422 with the problems when invalid.
import type { Hono } from 'hono';
import type { ReloadOutcome } from '../../server.js';
import { sendProblem } from './guard.js';

/** `reload` is undefined when there is no file to re-read (dev mode, embedded use). */
export function mountReload(app: Hono, reload: (() => Promise<ReloadOutcome>) | undefined): void {
  app.post('/reload', async (c) => {
    if (!reload) return sendProblem(c, { status: 409, code: 'reload_unavailable', title: 'Nothing to reload', detail: 'This gate was not started from a config file.' });
    const r = await reload();
    if (r.ok) return c.json({ result: 'ok', sha256: r.sha256, changed: r.changed }, 200);
    return sendProblem(c, {
      status: 422,
      code: 'invalid_config',
      title: 'Config not reloaded',
      detail: `The running config stays: ${r.issues.length} problem${r.issues.length === 1 ? '' : 's'}.`,
      members: { problems: r.issues.map((i) => `${i.path}: ${i.message}`) as unknown as string },
    });
  });
}
