import fc from 'fast-check';
import { notificationDoc } from './notifications';
import {
  type CronSchedule,
  canonicalTimeZone,
  checkedSchedule,
  checkedScheduleCount,
  firesAt,
  IANA_NAME_OF,
  InvalidScheduleError,
  isValidTimeZone,
  LATE_TICK_MS,
  latestOccurrence,
  nextOccurrence,
  occurrencesAfter,
  planOccurrence,
  SKIP_COUNT_BOUND,
  scheduleIdOf,
  stepPastCycle,
  timeZoneCaution,
  validateSchedule,
} from './schedule';

const at = (iso: string) => new Date(iso);
const HOUR = 3600_000;

/** The occurrences strictly after `from` and at or before `to`, as ISO strings. */
function occurrencesBetween(s: CronSchedule, from: string, to: string): string[] {
  const out: string[] = [];
  let d = at(from);
  for (;;) {
    d = nextOccurrence(s, d);
    if (d.getTime() > at(to).getTime()) return out;
    out.push(d.toISOString());
  }
}

/** The wall-clock time in a zone, e.g. "2026-03-29 03:30". */
function wallClock(d: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

describe('weekday crons in a time zone', () => {
  const paris9 = { cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' };

  it('runs 09:00 Paris at 08:00Z in winter (CET, UTC+1)', () => {
    // Friday 9 January 2026, after 09:00: next is Monday 12th.
    expect(nextOccurrence(paris9, at('2026-01-09T12:00:00Z')).toISOString()).toBe('2026-01-12T08:00:00.000Z');
    expect(nextOccurrence(paris9, at('2026-01-12T07:59:00Z')).toISOString()).toBe('2026-01-12T08:00:00.000Z');
  });

  it('runs 09:00 Paris at 07:00Z in summer (CEST, UTC+2)', () => {
    expect(nextOccurrence(paris9, at('2026-07-06T06:00:00Z')).toISOString()).toBe('2026-07-06T07:00:00.000Z');
  });

  it('skips the weekend', () => {
    const week = occurrencesBetween(paris9, '2026-01-09T12:00:00Z', '2026-01-19T00:00:00Z');
    const days = week.map((iso) => new Date(iso).getUTCDay());
    expect(days).toEqual([1, 2, 3, 4, 5]);
    expect(week.every((iso) => wallClock(new Date(iso), 'Europe/Paris').endsWith('09:00'))).toBe(true);
  });

  it('takes a MON,FRI list', () => {
    const s = { cron: '0 9 * * MON,FRI', timezone: 'Europe/Paris' };
    const twoWeeks = occurrencesBetween(s, '2026-07-01T00:00:00Z', '2026-07-15T00:00:00Z');
    expect(twoWeeks).toEqual([
      '2026-07-03T07:00:00.000Z',
      '2026-07-06T07:00:00.000Z',
      '2026-07-10T07:00:00.000Z',
      '2026-07-13T07:00:00.000Z',
    ]);
  });

  it('runs on a day that matches either the day of the month or the day of the week, when both are set', () => {
    const s = { cron: '0 9 1 * MON', timezone: 'UTC' };
    // December 2026 ends on a Thursday; 1 January 2027 is a Friday, the 4th a Monday.
    expect(occurrencesBetween(s, '2026-12-20T00:00:00Z', '2027-01-05T00:00:00Z')).toEqual([
      '2026-12-21T09:00:00.000Z',
      '2026-12-28T09:00:00.000Z',
      '2027-01-01T09:00:00.000Z',
      '2027-01-04T09:00:00.000Z',
    ]);
    // A step counts as set: every other day of the month, and Mondays.
    const stepped = { cron: '0 9 */2 * MON', timezone: 'UTC' };
    expect(occurrencesBetween(stepped, '2026-12-02T00:00:00Z', '2026-12-08T00:00:00Z')).toEqual([
      '2026-12-03T09:00:00.000Z',
      '2026-12-05T09:00:00.000Z',
      '2026-12-07T09:00:00.000Z',
    ]);
  });
});

describe('DST change days', () => {
  /** Occurrences whose local date is `day` in the schedule's zone. */
  function onLocalDay(s: CronSchedule, day: string): string[] {
    const around = occurrencesBetween(
      s,
      new Date(at(`${day}T00:00:00Z`).getTime() - 36 * HOUR).toISOString(),
      new Date(at(`${day}T00:00:00Z`).getTime() + 60 * HOUR).toISOString(),
    );
    return around.filter((iso) => wallClock(new Date(iso), s.timezone).startsWith(day));
  }

  it('Europe/Paris spring forward (2026-03-29): a 02:30 that does not exist runs once, after the jump', () => {
    const s = { cron: '30 2 * * *', timezone: 'Europe/Paris' };
    const runs = onLocalDay(s, '2026-03-29');
    expect(runs).toHaveLength(1);
    // Clocks jump from 02:00 CET (01:00Z) to 03:00 CEST: the run is in the hour after the jump.
    const t = new Date(runs[0] as string).getTime();
    expect(t).toBeGreaterThanOrEqual(at('2026-03-29T01:00:00Z').getTime());
    expect(t).toBeLessThan(at('2026-03-29T02:00:00Z').getTime());
    // The days around keep their 02:30.
    expect(onLocalDay(s, '2026-03-28')).toEqual(['2026-03-28T01:30:00.000Z']);
    expect(onLocalDay(s, '2026-03-30')).toEqual(['2026-03-30T00:30:00.000Z']);
  });

  it('Europe/Paris spring forward: the shifted occurrence is the latest one and a tick on it dispatches it', () => {
    const s = { cron: '30 2 * * *', timezone: 'Europe/Paris' };
    const occ = nextOccurrence(s, at('2026-03-28T12:00:00Z'));
    expect(latestOccurrence(s, occ)?.toISOString()).toBe(occ.toISOString());
    expect(latestOccurrence(s, at('2026-03-29T12:00:00Z'))?.toISOString()).toBe(occ.toISOString());
    const plan = planOccurrence(s, occ, occ, 900);
    expect(plan.run?.toISOString()).toBe(occ.toISOString());
    expect(plan.skipped).toBe(0);
    expect(plan.nextRunAt.toISOString()).toBe('2026-03-30T00:30:00.000Z');
  });

  it('Europe/Paris fall back (2026-10-25): a 02:30 that happens twice runs once, not twice', () => {
    const s = { cron: '30 2 * * *', timezone: 'Europe/Paris' };
    const runs = onLocalDay(s, '2026-10-25');
    expect(runs).toHaveLength(1);
    expect(wallClock(new Date(runs[0] as string), 'Europe/Paris')).toBe('2026-10-25 02:30');
    // Ticking through the night: only the first tick finds the occurrence due.
    const occ = new Date(runs[0] as string);
    const plan = planOccurrence(s, occ, occ, 900);
    expect(plan.run?.toISOString()).toBe(occ.toISOString());
    // The second 02:30 (an hour later in UTC) is not due: nextRunAt is the next day.
    expect(plan.nextRunAt.getTime()).toBeGreaterThan(occ.getTime() + 2 * HOUR);
    expect(planOccurrence(s, plan.nextRunAt, new Date(occ.getTime() + HOUR), 900).run).toBeNull();
    // And latestOccurrence agrees with nextOccurrence after the repeated hour.
    expect(latestOccurrence(s, at('2026-10-25T12:00:00Z'))?.toISOString()).toBe(occ.toISOString());
  });

  it('America/New_York spring forward (2026-03-08): 02:30 runs once that day', () => {
    const s = { cron: '30 2 * * *', timezone: 'America/New_York' };
    const runs = onLocalDay(s, '2026-03-08');
    expect(runs).toHaveLength(1);
    // 02:00 EST is 07:00Z; the clocks jump to 03:00 EDT.
    const t = new Date(runs[0] as string).getTime();
    expect(t).toBeGreaterThanOrEqual(at('2026-03-08T07:00:00Z').getTime());
    expect(t).toBeLessThan(at('2026-03-08T08:00:00Z').getTime());
    const occ = new Date(t);
    expect(planOccurrence(s, occ, new Date(t + 60_000), 900).run?.toISOString()).toBe(occ.toISOString());
  });

  it('America/New_York fall back (2026-11-01): 01:30 runs once, and a 09:00 report keeps its local time', () => {
    const s = { cron: '30 1 * * *', timezone: 'America/New_York' };
    const runs = onLocalDay(s, '2026-11-01');
    expect(runs).toHaveLength(1);
    expect(wallClock(new Date(runs[0] as string), 'America/New_York')).toBe('2026-11-01 01:30');

    const nine = { cron: '0 9 * * *', timezone: 'America/New_York' };
    // EDT (UTC-4) before, EST (UTC-5) after.
    expect(onLocalDay(nine, '2026-10-31')).toEqual(['2026-10-31T13:00:00.000Z']);
    expect(onLocalDay(nine, '2026-11-01')).toEqual(['2026-11-01T14:00:00.000Z']);
  });

  it('a half-hourly cron keeps a 30-minute UTC rhythm through the fall-back night', () => {
    const s = { cron: '*/30 * * * *', timezone: 'Europe/Paris' };
    const runs = occurrencesBetween(s, '2026-10-24T23:00:00Z', '2026-10-25T03:00:00Z').map((iso) =>
      new Date(iso).getTime(),
    );
    const gaps = new Set(runs.slice(1).map((t, i) => t - (runs[i] as number)));
    expect(runs.length).toBeGreaterThanOrEqual(7);
    expect([...gaps]).toEqual([30 * 60_000]);
  });
});

describe('change days that cron-parser walks wrongly in the zone (zones changing at midnight, by half an hour)', () => {
  const cases: [string, CronSchedule, string, string, string[]][] = [
    [
      'Africa/Cairo, midnight that does not exist (00:00 → 01:00 on 04-24): at 01:00 EEST',
      { cron: '0 0 * * *', timezone: 'Africa/Cairo' },
      '2026-04-22T12:00:00Z',
      '2026-04-25T23:00:00Z',
      ['2026-04-22T22:00:00.000Z', '2026-04-23T22:00:00.000Z', '2026-04-24T21:00:00.000Z', '2026-04-25T21:00:00.000Z'],
    ],
    [
      'Atlantic/Azores, midnight twice (01:00 → 00:00 on 10-25): once, the first',
      { cron: '0 0 * * *', timezone: 'Atlantic/Azores' },
      '2026-10-23T12:00:00Z',
      '2026-10-26T12:00:00Z',
      ['2026-10-24T00:00:00.000Z', '2026-10-25T00:00:00.000Z', '2026-10-26T01:00:00.000Z'],
    ],
    [
      'Europe/Paris 0,30 2 on 03-29: 02:00 and 02:30 both run, shifted to 03:00 and 03:30',
      { cron: '0,30 2 * * *', timezone: 'Europe/Paris' },
      '2026-03-28T12:00:00Z',
      '2026-03-29T23:00:00Z',
      ['2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z'],
    ],
    [
      'Australia/Lord_Howe 0 2, back half an hour on 04-05',
      { cron: '0 2 * * *', timezone: 'Australia/Lord_Howe' },
      '2026-04-02T00:00:00Z',
      '2026-04-06T00:00:00Z',
      ['2026-04-02T15:00:00.000Z', '2026-04-03T15:00:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-05T15:30:00.000Z'],
    ],
    [
      'Australia/Lord_Howe 0 2, forward half an hour on 10-04 (02:00 does not exist)',
      { cron: '0 2 * * *', timezone: 'Australia/Lord_Howe' },
      '2026-10-02T00:00:00Z',
      '2026-10-05T00:00:00Z',
      ['2026-10-02T15:30:00.000Z', '2026-10-03T15:30:00.000Z', '2026-10-04T15:00:00.000Z'],
    ],
  ];

  it.each(cases)('%s', (_what, s, from, to, expected) => {
    expect(occurrencesBetween(s, from, to)).toEqual(expected);
    // latestOccurrence agrees with nextOccurrence at and just after every occurrence.
    for (const iso of expected) {
      expect(latestOccurrence(s, at(iso))?.toISOString()).toBe(iso);
      expect(latestOccurrence(s, new Date(at(iso).getTime() + 60_000))?.toISOString()).toBe(iso);
    }
  });

  it('a tick at the occurrence of a change day runs it (it was planned as nothing to run)', () => {
    const cairo = { cron: '0 0 * * *', timezone: 'Africa/Cairo' };
    const plan = planOccurrence(cairo, at('2026-04-23T22:00:00Z'), at('2026-04-23T22:00:05Z'), 900);
    expect(plan.run?.toISOString()).toBe('2026-04-23T22:00:00.000Z');
    expect(plan.nextRunAt.toISOString()).toBe('2026-04-24T21:00:00.000Z');
    const lordHowe = { cron: '0 2 * * *', timezone: 'Australia/Lord_Howe' };
    // cron-parser's own walk in the zone throws "loop limit exceeded" for this whole day.
    expect(() => validateSchedule(lordHowe)).not.toThrow();
    const lh = planOccurrence(lordHowe, at('2026-04-03T15:00:00Z'), at('2026-04-03T15:00:05Z'), 900);
    expect(lh.run?.toISOString()).toBe('2026-04-03T15:00:00.000Z');
  });
});

describe('latestOccurrence and nextOccurrence boundaries', () => {
  const hourly = { cron: '0 * * * *', timezone: 'UTC' };

  it('an instant exactly on an occurrence is its own latest, and next is strictly after it', () => {
    const on = at('2026-05-05T10:00:00Z');
    expect(latestOccurrence(hourly, on)?.toISOString()).toBe(on.toISOString());
    expect(nextOccurrence(hourly, on).toISOString()).toBe('2026-05-05T11:00:00.000Z');
  });

  it('one millisecond before an occurrence belongs to the previous one', () => {
    const before = at('2026-05-05T09:59:59.999Z');
    expect(latestOccurrence(hourly, before)?.toISOString()).toBe('2026-05-05T09:00:00.000Z');
    expect(nextOccurrence(hourly, before).toISOString()).toBe('2026-05-05T10:00:00.000Z');
  });

  it('is null when there was no occurrence in the last year', () => {
    // 29 February: the last one before 2027-03-01 is 2024-02-29, more than a year back.
    expect(latestOccurrence({ cron: '0 0 29 2 *', timezone: 'UTC' }, at('2027-03-01T00:00:00Z'))).toBeNull();
    expect(latestOccurrence({ cron: '0 0 29 2 *', timezone: 'UTC' }, at('2028-03-01T00:00:00Z'))?.toISOString()).toBe(
      '2028-02-29T00:00:00.000Z',
    );
  });

  it('latest and next agree with each other for any instant (DST zones included)', () => {
    const schedules: CronSchedule[] = [
      { cron: '30 2 * * *', timezone: 'Europe/Paris' },
      { cron: '30 2 * * *', timezone: 'America/New_York' },
      { cron: '30 1 * * *', timezone: 'America/New_York' },
      { cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' },
      { cron: '*/30 * * * *', timezone: 'Europe/Paris' },
      { cron: '15 2 1 * *', timezone: 'Australia/Sydney' },
      { cron: '0 0 * * *', timezone: 'Asia/Kolkata' },
      { cron: '0 0 * * *', timezone: 'Africa/Cairo' },
      { cron: '0 0 * * *', timezone: 'Atlantic/Azores' },
      { cron: '0 2 * * *', timezone: 'Australia/Lord_Howe' },
      { cron: '0 3 * * *', timezone: 'Pacific/Chatham' },
      { cron: '0,30 2 * * *', timezone: 'Europe/Paris' },
      { cron: '*/7 * * * *', timezone: 'America/Santiago' },
    ];
    const start = at('2026-01-01T00:00:00Z').getTime();
    fc.assert(
      fc.property(fc.constantFrom(...schedules), fc.integer({ min: 0, max: 365 * 24 * 60 }), (s, minutes) => {
        const t = new Date(start + minutes * 60_000);
        const latest = latestOccurrence(s, t);
        expect(latest).not.toBeNull();
        const l = latest as Date;
        expect(l.getTime()).toBeLessThanOrEqual(t.getTime());
        // Nothing next() knows of lies between the latest occurrence and t...
        expect(nextOccurrence(s, l).getTime()).toBeGreaterThan(t.getTime());
        // ...the latest is the next one just before it...
        expect(nextOccurrence(s, new Date(l.getTime() - 1)).toISOString()).toBe(l.toISOString());
        // ...and one next() reaches walking forward from a day before.
        let d = new Date(l.getTime() - 26 * 3600 * 1000);
        for (let i = 0; i < 1000 && d.getTime() < l.getTime(); i++) d = nextOccurrence(s, d);
        expect(d.toISOString()).toBe(l.toISOString());
      }),
      { numRuns: 400 },
    );
  });
});

describe('firesAt', () => {
  const schedules = [
    { cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' },
    { cron: '30 2 * * *', timezone: 'Europe/Paris' },
    { cron: '15 1 * * *', timezone: 'America/New_York' },
    { cron: '*/20 * * * *', timezone: 'Asia/Kolkata' },
  ];

  it.each(schedules)('agrees with occurrencesAfter across the DST changes of 2026 ($cron, $timezone)', (s) => {
    for (const from of [
      '2026-03-07T00:00:00Z',
      '2026-03-28T00:00:00Z',
      '2026-10-24T00:00:00Z',
      '2026-10-31T12:00:00Z',
    ]) {
      let seen = 0;
      for (const d of occurrencesAfter(s, new Date(from))) {
        if (++seen > 6) break;
        expect(firesAt(s, d)).toBe(true);
        expect(firesAt(s, new Date(d.getTime() + 1))).toBe(false);
        expect(firesAt(s, new Date(d.getTime() - 60_000))).toBe(false);
      }
    }
  });

  it('is false on a day the cron leaves out', () => {
    // Saturday 2026-12-05, 09:00 in Paris.
    expect(firesAt({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' }, new Date('2026-12-05T08:00:00Z'))).toBe(
      false,
    );
    expect(firesAt({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' }, new Date('2026-12-07T08:00:00Z'))).toBe(true);
  });
});

describe('firesAt in the years 0 to 99 (Date.UTC reads them as 1900 to 1999; Intl writes year 0 as 1 BC)', () => {
  it.each(['0000', '0001', '0004', '0050', '0099', '0100'])('knows 09:00 every day in the year %s', (year) => {
    const daily = { cron: '0 9 * * *', timezone: 'UTC' };
    expect(firesAt(daily, new Date(`${year}-03-01T09:00:00Z`))).toBe(true);
    expect(firesAt(daily, new Date(`${year}-03-01T09:01:00Z`))).toBe(false);
  });

  it('knows the leap day of year 0, which 1900 does not have', () => {
    expect(firesAt({ cron: '0 9 29 2 *', timezone: 'UTC' }, new Date('0000-02-29T09:00:00Z'))).toBe(true);
  });

  it.each([
    { cron: '0 9 * * *', timezone: 'Asia/Kolkata' },
    { cron: '30 2 * * *', timezone: 'Europe/Paris' },
  ])('agrees with occurrencesAfter in the year 50 ($cron, $timezone, a local mean time offset)', (s) => {
    let seen = 0;
    for (const d of occurrencesAfter(s, new Date('0050-06-01T00:00:00Z'))) {
      if (++seen > 3) break;
      expect(d.getUTCFullYear()).toBe(50);
      expect(firesAt(s, d)).toBe(true);
      expect(firesAt(s, new Date(d.getTime() - 60_000))).toBe(false);
    }
    expect(seen).toBe(4);
  });
});

describe('planOccurrence: the catch-up policy', () => {
  const hourly = { cron: '0 * * * *', timezone: 'UTC' };
  const window = 900;

  it('a due occurrence in the window runs, with nothing skipped', () => {
    const plan = planOccurrence(hourly, at('2026-01-01T05:00:00Z'), at('2026-01-01T05:00:30Z'), window);
    expect(plan.run?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
    expect(plan.skipped).toBe(0);
    expect(plan.nextRunAt.toISOString()).toBe('2026-01-01T06:00:00.000Z');
  });

  it('after an outage, the latest in the window runs and the ones between are counted as skipped', () => {
    // Due since 00:00, tick at 05:10: 00..04 are skipped, 05:00 (10 min old) runs.
    const plan = planOccurrence(hourly, at('2026-01-01T00:00:00Z'), at('2026-01-01T05:10:00Z'), window);
    expect(plan.run?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
    expect(plan.skipped).toBe(occurrencesBetween(hourly, '2025-12-31T23:59:59Z', '2026-01-01T04:59:59Z').length);
    expect(plan.skipped).toBe(5);
    expect(plan.nextRunAt.toISOString()).toBe('2026-01-01T06:00:00.000Z');
  });

  it('when even the latest is outside the window, nothing runs and every due one is skipped', () => {
    const plan = planOccurrence(hourly, at('2026-01-01T00:00:00Z'), at('2026-01-01T05:20:00Z'), window);
    expect(plan.run).toBeNull();
    expect(plan.skipped).toBe(6);
    expect(plan.nextRunAt.toISOString()).toBe('2026-01-01T06:00:00.000Z');
  });

  it('after a long outage the count stops at its bound, a floor: the latest still runs and nextRunAt is right', () => {
    const everyMinute = { cron: '* * * * *', timezone: 'America/New_York' };
    // Due since 30 days before the tick: 43,200 occurrences were missed.
    const plan = planOccurrence(everyMinute, at('2026-11-01T00:00:00Z'), at('2026-12-01T00:00:30Z'), window);
    expect(plan.run?.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(plan.skipped).toBe(SKIP_COUNT_BOUND);
    expect(plan.skipped).toBeLessThan(43_200);
    expect(plan.nextRunAt.toISOString()).toBe('2026-12-01T00:01:00.000Z');
    // Below the bound, every one is counted: 16 hours of minutes.
    const short = planOccurrence(everyMinute, at('2026-11-30T08:00:00Z'), at('2026-12-01T00:00:30Z'), window);
    expect(short.skipped).toBe(16 * 60);
  });

  it('the window edge is inclusive', () => {
    const edge = planOccurrence(hourly, at('2026-01-01T05:00:00Z'), at('2026-01-01T05:15:00Z'), window);
    expect(edge.run?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
    const past = planOccurrence(hourly, at('2026-01-01T05:00:00Z'), at('2026-01-01T05:15:00.001Z'), window);
    expect(past.run).toBeNull();
    expect(past.skipped).toBe(1);
  });

  it('a tick retried long after its schedule time: the age is measured at now, not at the tick', () => {
    // Cloud Scheduler retries with the original schedule time, 05:00:30; it is now 08:20.
    const late = planOccurrence(
      hourly,
      at('2026-01-01T05:00:00Z'),
      at('2026-01-01T05:00:30Z'),
      window,
      at('2026-01-01T08:20:00Z'),
    );
    expect(late.run).toBeNull();
    expect(late.skipped).toBe(1);
    expect(late.nextRunAt.toISOString()).toBe('2026-01-01T06:00:00.000Z');
    // Retried within the window, it still runs.
    const soon = planOccurrence(
      hourly,
      at('2026-01-01T05:00:00Z'),
      at('2026-01-01T05:00:30Z'),
      window,
      at('2026-01-01T05:14:00Z'),
    );
    expect(soon.run?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
  });

  it('a tick on time is aged at its schedule time: a window of 0 still runs the occurrence of the tick', () => {
    const tick = at('2026-01-01T05:00:00Z');
    // Arrived 150 ms, then 59 s, after its schedule time: not late.
    for (const delayMs of [150, LATE_TICK_MS - 1000]) {
      const plan = planOccurrence(hourly, tick, tick, 0, new Date(tick.getTime() + delayMs));
      expect(plan.run?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
    }
    // More than LATE_TICK_MS after it: aged by the clock.
    expect(planOccurrence(hourly, tick, tick, 0, new Date(tick.getTime() + LATE_TICK_MS + 1)).run).toBeNull();
  });

  it('a tick is late once it arrives more than a minute after its schedule time (the numbers written out)', () => {
    const tick = at('2026-01-01T05:00:00Z');
    const windowSeconds = 30;
    // 120 s after the occurrence: late, so aged by the clock, 120 s > 30 s: not sent.
    const late = planOccurrence(hourly, tick, tick, windowSeconds, at('2026-01-01T05:02:00Z'));
    expect(late.run).toBeNull();
    expect(late.skipped).toBe(1);
    // A minute and a millisecond: late too.
    expect(planOccurrence(hourly, tick, tick, windowSeconds, at('2026-01-01T05:01:00.001Z')).run).toBeNull();
    // A minute exactly: on time, aged at the tick, and sent.
    expect(planOccurrence(hourly, tick, tick, windowSeconds, at('2026-01-01T05:01:00Z')).run?.toISOString()).toBe(
      '2026-01-01T05:00:00.000Z',
    );
    expect(LATE_TICK_MS).toBe(60_000);
  });

  it('not due yet: nothing runs and nothing is skipped', () => {
    const plan = planOccurrence(hourly, at('2026-01-01T06:00:00Z'), at('2026-01-01T05:20:00Z'), window);
    expect(plan.run).toBeNull();
    expect(plan.skipped).toBe(0);
    expect(plan.nextRunAt.toISOString()).toBe('2026-01-01T06:00:00.000Z');
  });
});

describe('validateSchedule', () => {
  function rejection(s: CronSchedule): InvalidScheduleError {
    try {
      validateSchedule(s);
    } catch (err) {
      return err as InvalidScheduleError;
    }
    throw new Error(`${JSON.stringify(s)} was accepted`);
  }

  it.each([
    ['0 9 * * * *', 'six fields'],
    ['61 * * * *', 'minute out of range'],
    ['* 24 * * *', 'hour out of range'],
    ['0 9 * * FUNDAY', 'unknown weekday'],
    ['garbage', 'garbage'],
    ['a b c d e', 'five garbage fields'],
  ])('rejects %j (%s) with an InvalidScheduleError naming it', (cron) => {
    const err = rejection({ cron, timezone: 'Europe/Paris' });
    expect(err).toBeInstanceOf(InvalidScheduleError);
    expect(err.message).toContain(JSON.stringify(cron));
  });

  it('takes a cron on every month only when it fires: its first occurrence is not looked for at the check', () => {
    // What validateSchedule passes, the dispatcher must be able to plan, in any zone: a cron that
    // names every month (`*` or `?`) is checked without its first occurrence, whatever its days.
    const minute = fc.constantFrom('*', '0', '59', '*/15', '5-10', '0,30', '10-50/20');
    const hour = fc.constantFrom('*', '0', '23', '9-17/2', '1,13', '*/5');
    const dayOfMonth = fc.constantFrom(
      '*',
      '?',
      '1',
      '15',
      '28',
      '29',
      '30',
      '31',
      'L',
      'LW',
      '1W',
      '15W',
      '31W',
      '29-31',
      '*/10',
      '30,31',
    );
    const dayOfWeek = fc.constantFrom(
      '*',
      '?',
      '0',
      '7',
      'MON-FRI',
      '5L',
      '0L',
      '5#5',
      '1#1',
      'SUN#4',
      '6#5',
      'FRIL',
      '2,4',
      '1-5/2',
    );
    const zone = fc.constantFrom(
      'UTC',
      'Europe/Paris',
      'America/New_York',
      'Australia/Lord_Howe',
      'Asia/Kathmandu',
      'Pacific/Apia',
    );
    let taken = 0;
    fc.assert(
      fc.property(
        minute,
        hour,
        dayOfMonth,
        fc.constantFrom('*', '?'),
        dayOfWeek,
        zone,
        fc.integer({ min: 0, max: 20 * 365 * 24 }),
        (mi, h, dom, mo, dow, timezone, hours) => {
          const s = { cron: `${mi} ${h} ${dom} ${mo} ${dow}`, timezone };
          try {
            validateSchedule(s);
          } catch (err) {
            if (err instanceof InvalidScheduleError) return;
            throw err;
          }
          taken++;
          const after = new Date(Date.UTC(2020, 0, 1) + hours * HOUR);
          const next = nextOccurrence(s, after);
          expect(next.getTime()).toBeGreaterThan(after.getTime());
          expect(next.getTime() - after.getTime()).toBeLessThan(366 * 24 * HOUR);
        },
      ),
      { numRuns: 600, seed: 20261206 },
    );
    expect(taken).toBeGreaterThan(300);
  });

  it.each(['0 0 30 2 *', '0 0 31 4 *', '0 0 31 2,4,6,9,11 *'])(
    'rejects %j, a day none of its months has, saying so in words',
    (cron) => {
      expect(rejection({ cron, timezone: 'UTC' }).message).toBe(
        `invalid cron ${JSON.stringify(cron)}: no month it names has that day of the month (February has 29 days at most; April, June, September and November 30), so it would never run`,
      );
    },
  );

  it.each([
    ['0 9 * * SUN,7', 'the day-of-week field names Sunday (0 and 7 are both Sunday) more than once'],
    ['0 9 * * 1-5,WED', 'the day-of-week field names Wednesday (3) more than once'],
    ['0 9 * JAN,1 *', 'the month field names January (1) more than once'],
    ['0,30,0 9 * * *', 'the minute field names 0 more than once'],
  ])('rejects %j, a value named twice, naming the field and the value as written', (cron, why) => {
    expect(rejection({ cron, timezone: 'UTC' }).message).toBe(
      `invalid cron ${JSON.stringify(cron)}: ${why}, in a list or in ranges that overlap; name each value once`,
    );
  });

  it('keeps a cron or a zone longer than any taken out of the cache of checked schedules', () => {
    const before = checkedScheduleCount();
    // Kept as it is read: the blanks around it dropped, a run of blanks in it one.
    const long = checkedSchedule(`0 9 * * *${' '.repeat(60_000)}`, 'UTC');
    expect(long).toEqual({ cron: '0 9 * * *', timezone: 'UTC' });
    expect(checkedSchedule(`0\t9 *${' '.repeat(1100)}* \n *`, 'UTC')).toEqual({ cron: '0 9 * * *', timezone: 'UTC' });
    expect(checkedSchedule('0 9 * * *', `Europe/${'x'.repeat(60_000)}`)).toEqual({
      problem: expect.stringMatching(
        /^time zone "Europe\/x{33}"… is 60007 characters long; a time zone has at most 100$/,
      ),
    });
    expect(checkedScheduleCount()).toBe(before);
    // Blanks around a zone are dropped before it is a key.
    expect(checkedSchedule('7 13 * * *', `UTC${' '.repeat(60_000)}`)).toEqual({ cron: '7 13 * * *', timezone: 'UTC' });
    expect(checkedScheduleCount()).toBe(before + 1);
  });

  it.each(['0 9 * jan-dec mon-fri', '0 9 * * 5L', '0 9 * * FRIL', '0 9 * * friL', '0 9 L * *', '0 9 * * SUN#2'])(
    'accepts %j: names in any case, L',
    (cron) => {
      expect(() => validateSchedule({ cron, timezone: 'UTC' })).not.toThrow();
    },
  );

  it.each([
    // A name cron does not know, in words rather than cron-parser's.
    ['0 9 * JANUARY *', 'the month field\'s "JANUARY" is not a month name cron knows: write JAN or 1'],
    ['0 9 * * MON-FRIDAY', 'the day-of-week field\'s "FRIDAY" is not a day name cron knows: write FRI or 5'],
    ['0 9 * * FOO', 'the day-of-week field\'s "FOO" is not a day name cron knows: the names are SUN to SAT'],
    ['0 9 * * fril', 'the day-of-week field\'s "fril" is written "FRIL": cron takes its L (the last) in capitals'],
    ['0 9 * * 5l', 'the day-of-week field\'s "5l" is written "5L": cron takes its L (the last) in capitals'],
    ['0 9 * * 1,5l', 'the day-of-week field\'s "1,5l" is written "1,5L": cron takes its L (the last) in capitals'],
    [
      '0 9 L-2 * *',
      'the day-of-month field\'s "L-2" holds a range cron cannot read: the field holds numbers, *, ranges (1-5), steps (*/15), L (the last day of the month) and lists of them',
    ],
    [
      '-1 9 * * *',
      'the minute field\'s "-1" holds a range cron cannot read: the field holds numbers, *, ranges (1-5), steps (*/15) and lists of them',
    ],
    ['60 9 * * *', "the minute field's value 60 is outside 0-59"],
    ['0 24 * * *', "the hour field's value 24 is outside 0-23"],
    ['0 9 0 * *', "the day-of-month field's value 0 is outside 1-31"],
    ['0 9 * 13 *', "the month field's value 13 is outside 1-12"],
    ['0 9 * * 6-8', "the day-of-week field's range 6-8 is outside 0-7"],
    // A step from past the field's last value: the value is out of range, not a range backwards.
    ['60/5 * * * *', "the minute field's value 60 is outside 0-59"],
    ['0 24/2 * * *', "the hour field's value 24 is outside 0-23"],
    ['0 9 32/2 * *', "the day-of-month field's value 32 is outside 1-31"],
    ['0 9 * 13/2 *', "the month field's value 13 is outside 1-12"],
    ['0 9 * * 8/2', "the day-of-week field's value 8 is outside 0-7"],
    ['0 0 0/5 * *', "the day-of-month field's value 0 is outside 1-31"],
    ['0 0 * 0/2 *', "the month field's value 0 is outside 1-12"],
  ])('rejects %j, a name or a value cron does not take, naming the field', (cron, why) => {
    expect(rejection({ cron, timezone: 'UTC' }).message).toBe(`invalid cron ${JSON.stringify(cron)}: ${why}`);
  });

  it.each([
    [
      '0 9 * * FRI-MON',
      'the day-of-week field\'s "FRI-MON" has a range that runs backwards, from 5 down to 1',
      '5-6,0-1',
    ],
    ['50-10 9 * * *', 'the minute field\'s "50-10" has a range that runs backwards, from 50 down to 10', '50-59,0-10'],
    ['0 22-2 * * *', 'the hour field\'s "22-2" has a range that runs backwards, from 22 down to 2', '22-23,0-2'],
    ['0 9 * NOV-FEB *', 'the month field\'s "NOV-FEB" has a range that runs backwards, from 11 down to 2', '11-12,1-2'],
  ])('rejects %j, a range that runs backwards, naming the field and how to write it', (cron, why, written) => {
    expect(rejection({ cron, timezone: 'UTC' }).message).toBe(
      `invalid cron ${JSON.stringify(cron)}: ${why}: a range runs upwards, so write one that wraps round as two (${written})`,
    );
    // What it says to write is taken.
    const fields = cron.split(' ');
    const index = fields.findIndex((f) => f.includes('-'));
    fields[index] = written;
    expect(() => validateSchedule({ cron: fields.join(' '), timezone: 'UTC' })).not.toThrow();
  });

  it.each([
    // Sunday is 7 too: one range, not two.
    ['0 9 * * SAT-SUN', 'from 6 down to 0: a range runs upwards, and Sunday is 7 as well as 0: write it as 6-7', '6-7'],
    ['0 9 * * MON-SUN', 'from 1 down to 0: a range runs upwards, and Sunday is 7 as well as 0: write it as 1-7', '1-7'],
    ['0 9 * * 7-0', 'is Sunday alone, written as a range from 7: write it as 0', '0'],
    ['0 9 * * 7-3/2', 'counts Sunday as 7 at the start of a range: write it as 0 there, the step kept', '0-3/2'],
    ['0 9 * * 7-2', 'counts Sunday as 7 at the start of a range: write it as 0 there (0-2)', '0-2'],
  ])('rejects %j, a day-of-week range at Sunday, saying what to write', (cron, why, written) => {
    const field = cron.split(' ')[4] as string;
    const runs = why.startsWith('from') ? 'has a range that runs backwards, ' : '';
    expect(rejection({ cron, timezone: 'UTC' }).message).toBe(
      `invalid cron ${JSON.stringify(cron)}: the day-of-week field's ${JSON.stringify(field)} ${runs}${why}`,
    );
    expect(() => validateSchedule({ cron: `0 9 * * ${written}`, timezone: 'UTC' })).not.toThrow();
  });

  it('gives no rewrite of a backward range with a step: each half would count its step from its own start', () => {
    expect(rejection({ cron: '0 22-4/3 * * *', timezone: 'UTC' }).message).toBe(
      'invalid cron "0 22-4/3 * * *": the hour field\'s "22-4/3" has a range that runs backwards, from 22 down to 4: a range runs upwards, so write one that wraps round as two ranges, each with its step',
    );
  });

  it.each([
    [
      '0 9 1L * *',
      'the day-of-month field\'s "1L" is not a value cron reads: the field holds numbers, *, ranges (1-5), steps (*/15), L (the last day of the month) and lists of them',
    ],
    ['0 9 * * 8L', 'the day-of-week field\'s "8L" is not a value cron reads: the field holds numbers, names (MON)'],
    [
      '*/5-1 9 * * *',
      'the minute field\'s "*/5-1" has a step cron cannot read: a step (the number after /) is a whole number of at least 1',
    ],
    [
      '0 9 LW * *',
      'the day-of-month field\'s "LW" is not a value cron reads (W, the weekday nearest a day, is not taken)',
    ],
    [
      '0 9 15W * *',
      'the day-of-month field\'s "15W" is not a value cron reads (W, the weekday nearest a day, is not taken)',
    ],
    ['5x 9 * * *', 'the minute field\'s "5x" is not a value cron reads'],
    [
      '*/0 9 * * *',
      'the minute field\'s "*/0" has a step of 0: a step (the number after /) is a whole number of at least 1',
    ],
    [
      '0 9 * 1-12/0 *',
      'the month field\'s "1-12/0" has a step of 0: a step (the number after /) is a whole number of at least 1',
    ],
    ['0 9 * * 1#6', 'the day-of-week field\'s "1#6" has a # that names no week'],
    ['0 9 * * MON#2,FRI', 'the day-of-week field\'s "MON#2,FRI" mixes # with ,'],
    ['0 9 * * ,1', 'the day-of-week field\'s ",1" has an empty item in its list'],
    ['0,,30 9 * * *', 'the minute field\'s "0,,30" has an empty item in its list'],
    ['0 9 * * L', 'the day-of-week field\'s "L" has an L alone'],
    ['1-2-3 9 * * *', 'the minute field\'s "1-2-3" has a range cron cannot read'],
    [
      `${Array.from({ length: 300 }, (_, i) => i % 60).join(',')} 9 * * *`,
      'the minute field\'s "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"… lists more items than cron reads in a field (at most 256)',
    ],
    [
      '0 9 * * 1%',
      'the day-of-week field\'s "1%" is not a value cron reads: the field holds numbers, names (MON), *, ranges (1-5), steps (*/15), a day with L (5L, the last Friday) or # (1#2, the second Monday), and lists of them',
    ],
  ])('rejects %j, naming the field and what is wrong with it in words', (cron, why) => {
    const message = rejection({ cron, timezone: 'UTC' }).message;
    expect(message.startsWith(`invalid cron ${JSON.stringify(cron)}: ${why}`)).toBe(true);
    expect(message).not.toMatch(/Constraint error|Invalid|Validation error|Unexpected/);
  });

  it.each(['0 0 29 2 *', '0 0 31 1-12 *', '0 0 30 2,3 *'])('accepts %j, a day one of its months has', (cron) => {
    expect(() => validateSchedule({ cron, timezone: 'UTC' })).not.toThrow();
  });

  it.each(['', '   ', '\t'])('says a blank cron %j is blank, not that it has 1 field', (cron) => {
    const err = rejection({ cron, timezone: 'Europe/Paris' });
    expect(err).toBeInstanceOf(InvalidScheduleError);
    expect(err.message).toBe('cron is blank: it must have 5 fields (minute hour day-of-month month day-of-week)');
  });

  it.each(['H 9 * * *', 'H/15 * * * *', '0 H(0-5) * * *', '0 9 * * H', '0 9 H * *', '0,H 9 * * *'])(
    'rejects %j: H is a value picked at random, another on every reading',
    (cron) => {
      const err = rejection({ cron, timezone: 'Europe/Paris' });
      expect(err).toBeInstanceOf(InvalidScheduleError);
      expect(err.message).toContain(JSON.stringify(cron));
      expect(err.message).toMatch(/uses H, a value picked at random/);
    },
  );

  it('accepts names that contain an H, and the other forms cron-parser reads the same every time', () => {
    for (const cron of ['0 9 * * THU', '0 9 * * TUE,THU', '0 9 L * *', '0 9 * * 5#2', '0 9 ? * *']) {
      expect(() => validateSchedule({ cron, timezone: 'Europe/Paris' })).not.toThrow();
    }
  });

  it.each(['', ' ', '\t'])('says a blank time zone %j is blank, not unknown', (timezone) => {
    expect(rejection({ cron: '0 9 * * *', timezone }).message).toBe(
      'time zone is blank: give an IANA zone, such as Europe/Paris or UTC',
    );
    expect(checkedSchedule('0 9 * * *', timezone)).toEqual({
      problem: 'time zone is blank: give an IANA zone, such as Europe/Paris or UTC',
    });
  });

  it('rejects an unknown time zone, naming it', () => {
    const err = rejection({ cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons' });
    expect(err).toBeInstanceOf(InvalidScheduleError);
    expect(err.message).toContain('Mars/Olympus_Mons');
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
  });

  it('names the IANA zone whose city an unknown time zone gives, or the form of a name', () => {
    const said = (timezone: string) => rejection({ cron: '0 9 * * *', timezone }).message;
    expect(said('Paris')).toBe('unknown time zone "Paris": give its IANA name, Europe/Paris');
    expect(said('new york')).toBe('unknown time zone "new york": give its IANA name, America/New_York');
    expect(said('GMT+1')).toBe(
      'unknown time zone "GMT+1": give an IANA name, a region and a city, such as Europe/Paris or America/New_York (or UTC)',
    );
  });

  it.each([
    ['0 9 * * MON-FRI', 'Europe/Paris'],
    ['*/15 8-18 * * 1-5', 'America/New_York'],
    ['0 0 1 * *', 'UTC'],
    ['  0 9 * * MON,FRI  ', 'Asia/Tokyo'],
  ])('accepts %j in %s', (cron, timezone) => {
    expect(() => validateSchedule({ cron, timezone })).not.toThrow();
  });
});

describe('scheduleIdOf', () => {
  it('is stable and a valid document id', () => {
    const s = { cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' };
    expect(scheduleIdOf(s)).toBe(scheduleIdOf({ ...s }));
    expect(scheduleIdOf(s)).toMatch(/^s_[0-9a-f]{20}$/);
  });

  it('ignores whitespace differences in the cron', () => {
    const a = scheduleIdOf({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' });
    expect(scheduleIdOf({ cron: '  0   9 *\t* MON-FRI ', timezone: 'Europe/Paris' })).toBe(a);
  });

  it('differs by cron and by time zone', () => {
    const a = scheduleIdOf({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' });
    expect(scheduleIdOf({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Berlin' })).not.toBe(a);
    expect(scheduleIdOf({ cron: '0 10 * * MON-FRI', timezone: 'Europe/Paris' })).not.toBe(a);
  });
});

describe('canonicalTimeZone', () => {
  it.each([
    ['utc', 'UTC'],
    ['Etc/UTC', 'UTC'],
    ['europe/paris', 'Europe/Paris'],
    ['Europe/Paris', 'Europe/Paris'],
    ['Asia/Kolkata', 'Asia/Kolkata'],
    ['Asia/Calcutta', 'Asia/Kolkata'],
    ['asia/kathmandu', 'Asia/Kathmandu'],
    ['Europe/Kiev', 'Europe/Kyiv'],
  ])('%s is %s', (written, canonical) => {
    expect(canonicalTimeZone(written)).toBe(canonical);
  });

  it.each(Object.entries(IANA_NAME_OF))(
    "takes IANA's current name for ICU's %s: %s, a zone this runtime knows as the same",
    (old, current) => {
      const resolved = (zone: string) =>
        new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
      // Both names are one zone to the runtime, whichever of them it calls canonical.
      expect(resolved(current)).toBe(resolved(old));
      expect([old, current]).toContain(resolved(old));
      expect(canonicalTimeZone(old)).toBe(current);
      expect(canonicalTimeZone(current)).toBe(current);
    },
  );

  it('gives an unknown zone back as written, for validateSchedule to name', () => {
    expect(canonicalTimeZone('Mars/Olympus')).toBe('Mars/Olympus');
  });

  it('makes two spellings of one zone one schedule', () => {
    const a = notificationDoc({ id: 'a', accountId: 'x', channelId: 'C1', cron: '0 9 * * *', timezone: 'utc' });
    const b = notificationDoc({ id: 'b', accountId: 'x', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' });
    expect(a.scheduleId).toBe(b.scheduleId);
    expect(a.schedule.timezone).toBe('UTC');
  });

  it('drops blanks around a zone, as around a cron: one schedule', () => {
    const a = notificationDoc({
      id: 'a',
      accountId: 'x',
      channelId: 'C1',
      cron: '0 9 * * *',
      timezone: ' America/New_York ',
    });
    const b = notificationDoc({
      id: 'b',
      accountId: 'x',
      channelId: 'C1',
      cron: '0 9 * * *',
      timezone: 'America/New_York',
    });
    expect(a.schedule.timezone).toBe('America/New_York');
    expect(a.scheduleId).toBe(b.scheduleId);
  });
});

describe('cron macros', () => {
  it.each([
    ['@daily', '0 0 * * *'],
    ['@HOURLY', '0 * * * *'],
    ['@weekly', '0 0 * * 0'],
    ['@monthly', '0 0 1 * *'],
    ['@yearly', '0 0 1 1 *'],
  ])('%s is refused with the 5 fields it stands for', (cron, fields) => {
    expect(() => validateSchedule({ cron, timezone: 'UTC' })).toThrow(
      `cron "${cron}": a macro is not taken; write its 5 fields (minute hour day-of-month month day-of-week): "${fields}"`,
    );
  });

  it('@reboot, and anything else of one field, is told to have 5 fields', () => {
    expect(() => validateSchedule({ cron: '@reboot', timezone: 'UTC' })).toThrow('must have 5 fields');
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    '%s, a name every object has, is no macro: it is told to have 5 fields',
    (cron) => {
      expect(() => validateSchedule({ cron, timezone: 'UTC' })).toThrow('must have 5 fields');
    },
  );
});

describe("stepPastCycle: a step longer than its field's cycle, which cron reads as its first value alone", () => {
  it.each([
    [
      '*/90 * * * *',
      'the minute field\'s "*/90" steps by 90, more than the 60 minutes of its cycle (0-59), so it gives 0 alone: cron cannot say every 90 minutes; write the minutes it is to run at',
    ],
    [
      '5/90 * * * *',
      'the minute field\'s "5/90" steps by 90, more than the 60 minutes of its cycle (0-59), so it gives 5 alone: cron cannot say every 90 minutes; write the minutes it is to run at',
    ],
    [
      '0 */25 * * *',
      'the hour field\'s "*/25" steps by 25, more than the 24 hours of its cycle (0-23), so it gives 0 alone: cron cannot say every 25 hours; write the hours it is to run at',
    ],
    [
      '0 9 */32 * *',
      'the day-of-month field\'s "*/32" steps by 32, more than the 31 days of the month of its cycle (1-31), so it gives 1 alone: cron cannot say every 32 days; write the days of the month it is to run at',
    ],
    [
      '0 9 * 3,*/13 *',
      'the month field\'s "*/13" steps by 13, more than the 12 months of its cycle (1-12), so it gives 1 alone: cron cannot say every 13 months; write the months it is to run at',
    ],
    [
      '0 9 * * 1-5/8',
      'the day-of-week field\'s "1-5/8" steps by 8, more than the 7 days of the week of its cycle (0-6), so it gives 1 alone: cron cannot say every 8 days; write the days of the week it is to run at',
    ],
  ])('names %s', (cron, message) => {
    expect(stepPastCycle(cron)).toBe(message);
    // A cron cron-parser takes, and runs once a cycle: what the words say.
    expect(checkedSchedule(cron, 'UTC')).not.toHaveProperty('problem');
  });

  it.each([
    ['?/90 * * * *', /"\?\/90" steps by 90, more than the 60 minutes .* gives 0 alone/],
    ['0 9 * JAN-DEC/13 *', /the month field's "JAN-DEC\/13" steps by 13, more than the 12 months .* gives 1 alone/],
    [
      '0 9 * * MON-FRI/8',
      /the day-of-week field's "MON-FRI\/8" steps by 8, more than the 7 days of the week .* gives 1 alone/,
    ],
    ['0 9 * * sun/8', /the day-of-week field's "sun\/8" steps by 8, .* gives 0 alone/],
  ] as const)('reads %s as cron-parser does: ? as *, names as their numbers', (cron, message) => {
    expect(stepPastCycle(cron)).toMatch(message);
  });

  it.each([
    '*/60 * * * *',
    '0 */24 * * *',
    '0 9 */31 * *',
    '0 9 * */12 *',
    '0 9 * * */7',
    '*/15 * * * *',
    '0-30/45 * * * *',
    '0 9 * * MON-FRI/2',
  ])('takes %s: a step no longer than its cycle', (cron) => {
    expect(stepPastCycle(cron)).toBeNull();
  });

  it('agrees with cron-parser that such a step gives its first value alone', () => {
    const s = { cron: '*/90 * * * *', timezone: 'UTC' };
    // Each hour on the hour, and not 01:30, 90 minutes after midnight.
    expect(firesAt(s, new Date('2026-12-06T01:00:00Z'))).toBe(true);
    expect(firesAt(s, new Date('2026-12-06T02:00:00Z'))).toBe(true);
    expect(firesAt(s, new Date('2026-12-06T01:30:00Z'))).toBe(false);
  });
});

describe('timeZoneCaution', () => {
  it('says that EST and MST keep one offset all year, what they are stored as, and the zone with summer time', () => {
    expect(timeZoneCaution('EST')).toBe(
      'time zone "EST" is UTC-5 all year, with no daylight saving time (stored as America/Panama): for US Eastern time, which changes in summer, give America/New_York',
    );
    expect(timeZoneCaution(' est ')).toMatch(/^time zone "est" is UTC-5 all year, .*\(stored as America\/Panama\)/);
    expect(timeZoneCaution('MST')).toMatch(/UTC-7 all year.*America\/Phoenix.*give America\/Denver$/);
  });

  it('says that an Etc/GMT zone’s sign is the reverse of how it reads', () => {
    expect(timeZoneCaution('Etc/GMT+5')).toBe(
      'time zone "Etc/GMT+5" is UTC-5, not UTC+5: an Etc/GMT zone\'s sign is the reverse of how it reads (POSIX\'s), and it keeps that offset all year',
    );
    expect(timeZoneCaution('etc/gmt-14')).toMatch(/is UTC\+14, not UTC-14/);
  });

  it('says nothing of a zone that reads as it is, of UTC under any name, nor of one that is not a zone', () => {
    for (const zone of [
      'America/New_York',
      'HST',
      'EST5EDT',
      'UTC',
      'Etc/GMT',
      'Etc/GMT+0',
      'Etc/GMT-0',
      'ESTX',
      'Etc/GMT+99',
      'Europe/Paris',
    ]) {
      expect([zone, timeZoneCaution(zone)]).toEqual([zone, null]);
    }
  });
});
