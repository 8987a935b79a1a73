import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Each `npm start` logs to a directory of its own under `.local/logs/` (`2026-12-02T15-57-17Z-4242`:
 * when it started, and its process id), so two runs side by side never write to one file, and a
 * run's log holds that run alone. The newest `keep` are kept; an older one goes once the run that
 * wrote it has ended.
 */

const NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-(\d+)$/;

/** Whether a process with this id is running (a process of another user counts as running). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function runLogDir(root: string, now: Date, pid: number, keep: number, isRunning = running): string {
  mkdirSync(root, { recursive: true });
  const stamp = now.toISOString().slice(0, 19).replace(/:/g, '-');
  const dir = join(root, `${stamp}Z-${pid}`);
  mkdirSync(dir, { recursive: true });
  // The names sort by when each run started: the oldest first.
  const runs = readdirSync(root)
    .filter((name) => NAME.test(name))
    .sort();
  for (const name of runs.slice(0, Math.max(0, runs.length - keep))) {
    // This run's own is kept; an older one of the same process id (a container's npm start is
    // often pid 7 every time) is another run's, ended.
    const owner = Number(NAME.exec(name)?.[1]);
    const ended = owner === pid || !isRunning(owner);
    if (join(root, name) !== dir && ended) rmSync(join(root, name), { recursive: true, force: true });
  }
  return dir;
}
