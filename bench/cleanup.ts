import type { ChildProcess } from 'node:child_process';
import { type Reaper, startReaper } from '../dev/processes';
import { SIGNAL_REPEAT_MS, STOP_SIGNALS, signalExitCode } from '../shared/signals';

/**
 * Everything the benchmark starts registers how to stop it here. The registry runs in reverse
 * order at the end, on an error, and on Ctrl-C, SIGTERM or SIGHUP; a last synchronous pass at
 * process exit kills any process group still registered; and a watchdog (dev/processes.ts
 * startReaper) kills the groups of every process it started should the benchmark die without
 * either (SIGKILL, a crash), so nothing outlives the run.
 */

let reaper: Reaper | null = null;

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
  for (const child of entry.children) reaper?.watch(child);
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
      reaper?.watch(child);
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
      // A stop that failed or ran out of time leaves nothing behind either.
      for (const child of entry.children) killGroupSync(child);
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

let stopping = false;
/** The signal that started the stop, and when. */
let first: { signal: NodeJS.Signals; at: number } | null = null;

/** True once a signal has started stopping the benchmark. */
export function stoppingOnSignal(): boolean {
  return stopping;
}

/**
 * Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop everything, then exit 128 + the
 * signal's number (130 for Ctrl-C); a second signal while stopping (not the first one again
 * within SIGNAL_REPEAT_MS, npm passing a Ctrl-C on) kills every process group left at once and exits. Process exit kills any group left behind, and the watchdog any the
 * benchmark could not (it died outright).
 */
export function installSignalHandlers(say: (line: string) => void): void {
  reaper ??= startReaper();
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      const code = signalExitCode(signal);
      if (stopping && first?.signal === signal && Date.now() - first.at < SIGNAL_REPEAT_MS) return;
      if (stopping) {
        say(`${signal} ${first ? 'again' : 'while stopping'}: killing what is left now`);
        killAllSync();
        process.exit(code);
      }
      first = { signal, at: Date.now() };
      stopAndExit(signal, code, say);
    });
  }
  process.once('exit', killAllSync);
}

/**
 * Stops everything the benchmark started, as a signal does, and exits `code`: for a stop that
 * is not a signal's (standard output closed by its reader). Once only.
 */
export function stopAndExit(why: string, code: number, say: (line: string) => void): void {
  if (stopping) return;
  stopping = true;
  say(`\n${why}: stopping every process the benchmark started…`);
  void cleanupAll(say).finally(() => {
    say('stopped: nothing the benchmark started is left running');
    releaseReaper();
    process.exit(code);
  });
}

function killAllSync(): void {
  for (const entry of entries) for (const child of entry.children) killGroupSync(child);
}

/** Everything the benchmark started is stopped: the watchdog exits without killing anything. */
export function releaseReaper(): void {
  reaper?.release();
  reaper = null;
}
