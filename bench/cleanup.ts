import type { ChildProcess } from 'node:child_process';

/**
 * Everything the benchmark starts registers how to stop it here. The registry runs in reverse
 * order at the end, on an error, and on Ctrl-C or SIGTERM; a last synchronous pass at process
 * exit kills any process group still registered, so nothing outlives the run.
 */

interface Entry {
  name: string;
  stop: () => Promise<void>;
  /** Process groups to SIGKILL synchronously if the async stop never ran. */
  children: ChildProcess[];
}

const entries: Entry[] = [];
let running: Promise<void> | null = null;

export function onCleanup(
  name: string,
  stop: () => Promise<void>,
  children: ChildProcess | ChildProcess[] = [],
): () => Promise<void> {
  const entry: Entry = { name, stop, children: Array.isArray(children) ? children : [children] };
  entries.push(entry);
  // Stopping it early takes it out of the registry.
  return async () => {
    const i = entries.indexOf(entry);
    if (i >= 0) entries.splice(i, 1);
    await entry.stop();
  };
}

/**
 * Covers processes from the moment they are spawned until whoever started them has registered
 * a stop of its own (an emulator still starting, a service not yet listening): on Ctrl-C or an
 * error meanwhile, their process groups are killed. `release()` hands them over.
 */
export function guardSpawned(name: string): { onSpawn: (child: ChildProcess) => void; release: () => void } {
  const children: ChildProcess[] = [];
  const entry: Entry = {
    name,
    children,
    stop: async () => {
      for (const child of children) killGroupSync(child);
    },
  };
  entries.push(entry);
  return {
    onSpawn: (child) => {
      children.push(child);
    },
    release: () => {
      const i = entries.indexOf(entry);
      if (i >= 0) entries.splice(i, 1);
    },
  };
}

export async function cleanupAll(say: (line: string) => void = () => undefined): Promise<void> {
  if (running) return running;
  running = (async () => {
    while (entries.length > 0) {
      const entry = entries.pop() as Entry;
      const timer = new Promise<void>((r) => setTimeout(r, 15_000).unref());
      try {
        await Promise.race([entry.stop(), timer]);
      } catch (err) {
        say(`cleanup of ${entry.name} failed: ${(err as Error).message}`);
      }
    }
  })();
  return running;
}

function killGroupSync(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Ctrl-C and SIGTERM stop everything, then exit 130; process exit kills any group left behind. */
export function installSignalHandlers(say: (line: string) => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`\n${signal}: stopping every process the benchmark started…`);
      void cleanupAll(say).finally(() => process.exit(130));
    });
  }
  process.once('exit', () => {
    for (const entry of entries) for (const child of entry.children) killGroupSync(child);
  });
}
