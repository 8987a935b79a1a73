import { constants } from 'node:os';

/**
 * A repeat of a signal this soon after it is the same one: Ctrl-C in a terminal signals the
 * whole process group, so `npm run …` and the program it runs both get it, and npm then passes
 * it on to the program again.
 */
export const SIGNAL_REPEAT_MS = 1000;

/**
 * Calls `first` on the first `signal`, and `again` on a later one: a repeat of the first
 * within SIGNAL_REPEAT_MS is passed over, so that one Ctrl-C through npm is not taken for two.
 * Returns what removes the handler. Removed within SIGNAL_REPEAT_MS of a first signal, it
 * still passes over that signal until the window ends: npm's repeat can come after the work
 * the first one stopped has ended, and would otherwise end the process as a signal's default
 * does, before it has said what it did.
 */
export function onSignalTwice(signal: NodeJS.Signals, first: () => void, again: () => void): () => void {
  let firstAt: number | null = null;
  const handler = () => {
    if (firstAt === null) {
      firstAt = Date.now();
      first();
    } else if (Date.now() - firstAt >= SIGNAL_REPEAT_MS) {
      again();
    }
  };
  process.on(signal, handler);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    process.off(signal, handler);
    const left = firstAt === null ? 0 : firstAt + SIGNAL_REPEAT_MS - Date.now();
    if (left <= 0) return;
    const passOver = () => {};
    process.on(signal, passOver);
    // Unref'd: a process with nothing else to do ends without waiting for the window.
    setTimeout(() => process.off(signal, passOver), left).unref();
  };
}

/**
 * The signals that ask a command to stop: Ctrl-C (SIGINT), `kill`, `timeout` or a cancelled CI
 * job (SIGTERM), and a closed terminal (SIGHUP). A long command stops the same way on each.
 */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** A process stopped by a signal exits 128 + its number, as a shell reports one killed by it: 130, 143, 129. */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}

/** How a stop is named in what a command says: Ctrl-C, or the signal. */
export function stopName(signal: StopSignal): string {
  return signal === 'SIGINT' ? 'Ctrl-C' : signal;
}

/**
 * What a command says as a first stop signal comes: `import: stopping once … (Ctrl-C again
 * stops at once)`, a signal other than Ctrl-C named after the command.
 */
export function stoppingLine(command: string, signal: StopSignal, until: string): string {
  return `${command}: ${signal === 'SIGINT' ? '' : `${signal}: `}stopping ${until} (${stopName(signal)} again stops at once)\n`;
}

/** A command's stop signals, as onStopSignals watches them. */
export interface StopSignals {
  /** Aborted at the first stop signal, before `first` is called: the work under way stops on it. */
  signal: AbortSignal;
  /** The code to exit with once stopped: the first stop signal's (130 before any came, as Ctrl-C's). */
  exitCode(): number;
  /** Removes every handler. */
  remove(): void;
}

/**
 * onSignalTwice for every stop signal at once: `first` on the first of them, `again` on any
 * later one (npm's repeat of the first within SIGNAL_REPEAT_MS passed over).
 */
export function onStopSignals(first: (signal: StopSignal) => void, again: (signal: StopSignal) => void): StopSignals {
  const stop = new AbortController();
  let by: StopSignal | undefined;
  const removers = STOP_SIGNALS.map((signal) =>
    onSignalTwice(
      signal,
      () => {
        if (by !== undefined) {
          again(signal);
          return;
        }
        by = signal;
        stop.abort();
        first(signal);
      },
      () => again(signal),
    ),
  );
  return {
    signal: stop.signal,
    exitCode: () => signalExitCode(by ?? 'SIGINT'),
    remove: () => {
      for (const remove of removers) remove();
    },
  };
}
