// Watching the config (and the key files it names) for changes, including a Kubernetes ConfigMap's symlink swap.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onChange` (debounced) when any of `files` may have changed. The folders are watched, not
 * the files: a ConfigMap volume updates by swapping the `..data` symlink, which replaces every file
 * at once and would leave a watcher on the old inode silent. Any event in a watched folder that
 * names a watched file, or a `..`-prefixed entry (the ConfigMap's own), counts.
 */
export function watchFiles(files: readonly string[], onChange: () => void, debounceMs = 200): { close(): void } {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const d = dirname(f);
    if (!byDir.has(d)) byDir.set(d, new Set());
    byDir.get(d)!.add(basename(f));
  }
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(name.toString()) || name.toString().startsWith('..')) fire();
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // A folder that cannot be watched: SIGHUP and POST /reload still work.
    }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
