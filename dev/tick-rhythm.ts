/**
 * When `npm start` ticks: on the clock, every `--interval` seconds, as Cloud Scheduler sends
 * its ticks (at 60, on every minute, as `* * * * *`), whatever the last tick's deliveries took.
 * A tick due while the runner still watched the last one's deliveries is sent when they have
 * landed, with the time it was due: the dispatcher sends only the latest due occurrence of a
 * schedule, so a tick left out would pass an occurrence over.
 */

export interface NextTick {
  /** When the next tick is due: the schedule time it is sent with. */
  dueMs: number;
  /** Ticks due too long ago to send (older than the catch-up window), left out. */
  passedOver: number;
}

/** The last tick time on the clock at or before `ms`: a whole number of intervals since the epoch. */
export function slotAtOrBefore(ms: number, intervalSeconds: number): number {
  const step = intervalSeconds * 1000;
  return Math.floor(ms / step) * step;
}

/**
 * The tick after the one due at `lastDueMs`. One due longer ago than the catch-up window is
 * left out: the dispatcher would find every occurrence it holds too old to send, and the tick
 * after it counts them as skipped all the same.
 */
export function nextTick(lastDueMs: number, nowMs: number, intervalSeconds: number, windowSeconds: number): NextTick {
  const step = intervalSeconds * 1000;
  let dueMs = lastDueMs + step;
  let passedOver = 0;
  if (nowMs - dueMs > windowSeconds * 1000) {
    const oldestKept = slotAtOrBefore(nowMs - windowSeconds * 1000, intervalSeconds) + step;
    passedOver = Math.round((oldestKept - dueMs) / step);
    dueMs = oldestKept;
  }
  return { dueMs, passedOver };
}
