import { LATE_TICK_MS } from '../shared/schedule';

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
  /** Ticks due too long ago for the dispatcher to send anything of theirs, left out. */
  passedOver: number;
}

/** The last tick time on the clock at or before `ms`: a whole number of intervals since the epoch. */
export function slotAtOrBefore(ms: number, intervalSeconds: number): number {
  const step = intervalSeconds * 1000;
  return Math.floor(ms / step) * step;
}

/**
 * How late a tick may be sent and still be of use. The dispatcher ages a tick's occurrences at
 * the tick's own time unless it comes more than LATE_TICK_MS after it, and then at its arrival,
 * against the catch-up window (planOccurrence): so only past both bounds does it send nothing.
 */
export function usefulLatenessMs(windowSeconds: number): number {
  return Math.max(windowSeconds * 1000, LATE_TICK_MS);
}

/**
 * The tick after the one due at `lastDueMs`, at `nowMs`. One due longer ago than
 * usefulLatenessMs is left out: the dispatcher would find every occurrence it holds too old to
 * send, and the tick after it counts them as skipped all the same. A clock set back (the next
 * tick more than an interval away) ticks on from the clock's new time, not an interval's wait
 * past the old one.
 */
export function nextTick(lastDueMs: number, nowMs: number, intervalSeconds: number, windowSeconds: number): NextTick {
  const step = intervalSeconds * 1000;
  let dueMs = lastDueMs + step;
  if (dueMs - nowMs > step) return { dueMs: slotAtOrBefore(nowMs, intervalSeconds) + step, passedOver: 0 };
  let passedOver = 0;
  const useful = usefulLatenessMs(windowSeconds);
  if (nowMs - dueMs > useful) {
    const oldestKept = slotAtOrBefore(nowMs - useful, intervalSeconds) + step;
    passedOver = Math.round((oldestKept - dueMs) / step);
    dueMs = oldestKept;
  }
  return { dueMs, passedOver };
}
