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
