import { CronExpressionParser } from 'cron-parser';
import { DEFAULT_CATCH_UP_WINDOW_SECONDS } from '../shared/config';
import { normalCron } from '../shared/schedule';

/**
 * When Cloud Scheduler calls the dispatcher, and what that allows: the tick's cron, its retry,
 * and whether its ticks come often enough for the catch-up window.
 */

/** Every minute, a cron's finest step: a notification's occurrence waits at most a minute for its tick. */
export const DEFAULT_TICK_CRON = '* * * * *';

/** The wait before a failed tick is tried again. */
export const TICK_RETRY_BACKOFF_SECONDS = 15;

/**
 * How many times Cloud Scheduler tries a failed tick again: once, for a quick failure (a cold
 * start, a 503 while Firestore is away), when both attempts fit within the catch-up window;
 * else never.
 *
 * A retry is safe (runs are leased and resume at their cursor) but carries the first attempt's
 * schedule time, and Cloud Scheduler skips the scheduled ticks that fall while it retries. Its
 * occurrences are aged when it arrives (planOccurrence): up to a deadline and the backoff after
 * the schedule time, and each up to one tick interval before it. The bound taken, both attempts
 * whole (2 × deadline + backoff), is on the safe side of that: it leaves room for a tick
 * interval as long as the deadline. Without the retry, the next scheduled tick
 * sends those occurrences.
 */
export function tickRetryCount(
  attemptDeadlineSeconds: number,
  catchUpWindowSeconds: number = DEFAULT_CATCH_UP_WINDOW_SECONDS,
): number {
  return tickRetrySpanSeconds(attemptDeadlineSeconds, 1) <= catchUpWindowSeconds ? 1 : 0;
}

/** From a tick's schedule time to the end of its last attempt, at the longest. */
export function tickRetrySpanSeconds(attemptDeadlineSeconds: number, retryCount: number): number {
  return attemptDeadlineSeconds * (retryCount + 1) + TICK_RETRY_BACKOFF_SECONDS * retryCount;
}

/** What Cloud Scheduler's unix-cron format does not take, though a notification's cron may. */
const NOT_UNIX_CRON: readonly [RegExp, string][] = [
  [/L/i, 'L (a last day)'],
  [/W/i, 'W (a nearest weekday)'],
  [/#/, '# (an nth weekday)'],
  [/\?/, '?'],
];

/**
 * How far apart two ticks may be: an occurrence is sent only while it is at most the catch-up
 * window old (planOccurrence), and a tick may fail. Retried, its second attempt arrives up to a
 * deadline and the backoff after its schedule time, and ages its occurrences from then, each up
 * to one tick interval old at its schedule time; not retried, the next tick, one interval later,
 * sends them.
 */
export function longestTickGapSeconds(
  attemptDeadlineSeconds: number,
  catchUpWindowSeconds: number = DEFAULT_CATCH_UP_WINDOW_SECONDS,
): number {
  return tickRetryCount(attemptDeadlineSeconds, catchUpWindowSeconds) > 0
    ? catchUpWindowSeconds - attemptDeadlineSeconds - TICK_RETRY_BACKOFF_SECONDS
    : Math.floor(catchUpWindowSeconds / 2);
}

/**
 * Why a cron (valid as a notification's) will not do as the tick's: Cloud Scheduler refuses it,
 * or its ticks are too far apart (longestTickGapSeconds) or not on every day, which would pass
 * over, for good, the reports of notifications whose cron fires between two of them. Null when
 * it will do. The gaps are those of its wall clock: a zone that changes its clocks is refused apart.
 */
export function tickCronProblem(
  cron: string,
  attemptDeadlineSeconds: number,
  catchUpWindowSeconds: number = DEFAULT_CATCH_UP_WINDOW_SECONDS,
): string | null {
  const text = normalCron(cron);
  // Month and day names are letters too: only the letters outside them count.
  const bare = text.replace(/jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat/gi, '');
  const refused = NOT_UNIX_CRON.filter(([pattern]) => pattern.test(bare)).map(([, name]) => name);
  if (refused.length > 0) {
    return `holds ${refused.join(', ')}, which Cloud Scheduler's cron format does not take (got ${JSON.stringify(cron)})`;
  }
  const { minute, hour, dayOfMonth, dayOfWeek, month } = CronExpressionParser.parse(text, { tz: 'UTC' }).fields;
  const longest = longestTickGapSeconds(attemptDeadlineSeconds, catchUpWindowSeconds);
  const retried = tickRetryCount(attemptDeadlineSeconds, catchUpWindowSeconds) > 0;
  // Said only with a refusal.
  const why = () =>
    `the dispatcher sends an occurrence only while it is at most ${catchUpWindowSeconds / 60} minutes old (its catch-up window), and ${
      retried
        ? `a tick that fails is tried again up to ${attemptDeadlineSeconds + TICK_RETRY_BACKOFF_SECONDS} s after its time (tickDeadlineSeconds ${attemptDeadlineSeconds} and 15 s)`
        : `a tick that fails is not tried again (tickDeadlineSeconds ${attemptDeadlineSeconds}, above 442), and the next one sends what it missed`
    }, so ticks more than ${longest} s apart would pass over, for good, the reports of notifications whose cron fires between two of them: tick at least every ${Math.floor(longest / 60)} minutes, on every day (default ${JSON.stringify(DEFAULT_TICK_CRON)})${retried ? ', or lower tickDeadlineSeconds' : ''}`;
  // Cron's rule for the two day fields: one restricted alone is the days; both restricted, either.
  const allMonthDays = dayOfMonth.values.length === 31;
  const allWeekDays = dayOfWeek.values.length >= 7;
  const days = dayOfMonth.isWildcard ? allWeekDays : dayOfWeek.isWildcard ? allMonthDays : allMonthDays || allWeekDays;
  if (month.values.length !== 12 || !days) return `ticks on some days only (got ${JSON.stringify(cron)}); ${why()}`;
  // The minutes of a day it ticks at, and the longest gap between two, the last to the next day's first included.
  const minutes = hour.values.flatMap((h) => minute.values.map((m) => Number(h) * 60 + Number(m)));
  minutes.sort((a, b) => a - b);
  let gap = 0;
  let from = 0;
  minutes.forEach((m, i) => {
    const next = minutes[i + 1] ?? (minutes[0] ?? 0) + 24 * 60;
    if (next - m > gap) [gap, from] = [next - m, m];
  });
  if (gap * 60 <= longest) return null;
  const at = (m: number) => `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return `ticks up to ${gap} minutes apart (${at(from)} to ${at(from + gap)}; got ${JSON.stringify(cron)}); ${why()}`;
}
