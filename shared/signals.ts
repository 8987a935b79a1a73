/**
 * A repeat of a signal this soon after it is the same one: Ctrl-C in a terminal signals the
 * whole process group, so `npm run …` and the program it runs both get it, and npm then passes
 * it on to the program again.
 */
export const SIGNAL_REPEAT_MS = 1000;

/**
 * Calls `first` on the first `signal`, and `again` on a later one: a repeat of the first
 * within SIGNAL_REPEAT_MS is passed over, so that one Ctrl-C through npm is not taken for two.
 * Returns what removes the handler.
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
  return () => {
    process.off(signal, handler);
  };
}
