import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';

/** Schedule maths: pure functions over (cron, timezone, instant). */

export class InvalidScheduleError extends Error {
  override readonly name = 'InvalidScheduleError';
}

export interface CronSchedule {
  cron: string;
  timezone: string;
}

export function isValidTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** Throws an InvalidScheduleError naming the bad cron or time zone. */
export function validateSchedule(s: CronSchedule): void {
  if (!isValidTimeZone(s.timezone)) {
    throw new InvalidScheduleError(`unknown time zone ${JSON.stringify(s.timezone)}`);
  }
  const fields = s.cron.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new InvalidScheduleError(
      `cron ${JSON.stringify(s.cron)} must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  }
  try {
    CronExpressionParser.parse(s.cron, { tz: s.timezone, strict: false }).next();
  } catch (err) {
    throw new InvalidScheduleError(`invalid cron ${JSON.stringify(s.cron)}: ${(err as Error).message}`);
  }
}

/** The schedule document id: the same (cron, timezone) always maps to the same id. */
export function scheduleIdOf(s: CronSchedule): string {
  const normalised = `${s.cron.trim().replace(/\s+/g, ' ')}|${s.timezone}`;
  return `s_${createHash('sha256').update(normalised).digest('hex').slice(0, 20)}`;
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(s: CronSchedule, after: Date): Date {
  const expr = CronExpressionParser.parse(s.cron, { currentDate: after, tz: s.timezone });
  return expr.next().toDate();
}

/** The last occurrence at or before `at`, or null when there is none in the last year. */
export function latestOccurrence(s: CronSchedule, at: Date): Date | null {
  const back = CronExpressionParser.parse(s.cron, {
    currentDate: new Date(at.getTime() + 1),
    tz: s.timezone,
  });
  let start: Date;
  try {
    start = back.prev().toDate();
  } catch {
    return null;
  }
  try {
    start = back.prev().toDate();
  } catch {
    // Only one earlier occurrence: start the walk from it.
  }
  // On DST change days prev() and next() disagree (prev() skips 02:30 on a spring-forward
  // day, or gives the second 02:30 on a fall-back day). next() decides nextRunAt, so the
  // latest occurrence is found by walking next() forward from two prev() steps back.
  const fwd = CronExpressionParser.parse(s.cron, { currentDate: new Date(start.getTime() - 1), tz: s.timezone });
  let latest: Date | null = null;
  try {
    for (let i = 0; i < 8; i++) {
      const d = fwd.next().toDate();
      if (d.getTime() > at.getTime()) break;
      latest = d;
    }
  } catch {
    // No later occurrence: the last one found stands.
  }
  return latest && at.getTime() - latest.getTime() <= 366 * 24 * 3600 * 1000 ? latest : null;
}

export interface OccurrencePlan {
  /** The occurrence to dispatch now, or null when every due one is too old. */
  run: Date | null;
  /** Due occurrences passed over by the catch-up policy (counted up to a bound). */
  skipped: number;
  /** Where the schedule's nextRunAt goes once this tick's work is done. */
  nextRunAt: Date;
}

const SKIP_COUNT_BOUND = 10_000;

/** A tick that arrives more than this after its schedule time is late: its occurrences are aged by the clock. */
export const LATE_TICK_MS = 60_000;

/**
 * The catch-up policy. After an outage several occurrences may be due at once; only
 * the latest is dispatched, and only when it is no older than `windowSeconds`. The
 * others are counted as skipped. A burst of every missed occurrence never happens.
 *
 * The occurrences are those due at `tick` (the schedule time of the tick). Their age is
 * measured at the tick, or at `now` when the tick comes more than `LATE_TICK_MS` after its
 * schedule time: a tick retried long after it (Cloud Scheduler keeps the original time in
 * its retries) does not send a stale report.
 */
export function planOccurrence(
  s: CronSchedule,
  dueSince: Date,
  tick: Date,
  windowSeconds: number,
  now: Date = tick,
): OccurrencePlan {
  const nextRunAt = nextOccurrence(s, tick);
  const latest = latestOccurrence(s, tick);
  if (!latest || latest.getTime() < dueSince.getTime()) {
    return { run: null, skipped: 0, nextRunAt };
  }
  // On time (Cloud Scheduler's delivery, the tick's own work): aged at the tick, as it says.
  const late = now.getTime() - tick.getTime() > LATE_TICK_MS;
  const ageMs = (late ? now : tick).getTime() - latest.getTime();
  const inWindow = ageMs <= windowSeconds * 1000;
  let skipped = inWindow ? 0 : 1;
  const expr = CronExpressionParser.parse(s.cron, {
    currentDate: new Date(dueSince.getTime() - 1),
    tz: s.timezone,
  });
  for (let i = 0; i < SKIP_COUNT_BOUND; i++) {
    const d = expr.next().toDate();
    if (d.getTime() >= latest.getTime()) break;
    skipped++;
  }
  return { run: inWindow ? latest : null, skipped, nextRunAt };
}
