import { type CronSchedule, occurrencesAfter } from './schedule';

/**
 * schedule.ts against a brute-force oracle that shares none of its code: every minute of the
 * days around each change of offset is read on the zone's clock with Intl, and the rules are
 * applied from first principles. A wall time that happens once is an occurrence when the cron
 * matches it; one that happens twice only at its first instant, unless the cron fires every
 * hour; one skipped by a jump forward at the instant the clock would have shown it.
 */

const MINUTE = 60_000;

/** A cron field's allowed values: `*`, `*\/n`, `a`, `a-b`, `a-b/n` and lists of them. */
function field(spec: string, min: number, max: number): Set<number> {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [range = '', stepText] = part.split('/');
    const step = stepText ? Number(stepText) : 1;
    const [lo, hi] = range === '*' ? [min, max] : range.split('-').map(Number);
    for (let v = lo ?? min; v <= (hi ?? lo ?? max); v += step) out.add(v);
  }
  return out;
}

interface Wall {
  minute: number;
  hour: number;
  day: number;
  month: number;
  weekday: number;
}

function matcher(cron: string): { matches: (w: Wall) => boolean; everyHour: boolean } {
  const [m = '', h = '', dom = '', mon = '', dow = ''] = cron.split(' ');
  const minutes = field(m, 0, 59);
  const hours = field(h, 0, 23);
  const days = field(dom, 1, 31);
  const months = field(mon, 1, 12);
  const weekdays = field(dow, 0, 6);
  return {
    // None of the crons below restricts both day fields, so both must simply match.
    matches: (w) =>
      minutes.has(w.minute) && hours.has(w.hour) && days.has(w.day) && months.has(w.month) && weekdays.has(w.weekday),
    everyHour: hours.size === 24,
  };
}

/** Minutes since the epoch of the wall clock, and the offset, through Intl's longOffset. */
function clockOf(timeZone: string) {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
  return (instant: number): number => {
    const name = f.formatToParts(new Date(instant)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
    const m = /GMT(?:([+-])(\d{2}):(\d{2}))?/.exec(name);
    const sign = m?.[1] === '-' ? -1 : 1;
    return m?.[1] ? sign * (Number(m[2]) * 60 + Number(m[3])) * MINUTE : 0;
  };
}

function wallFields(wallMs: number): Wall {
  const d = new Date(wallMs);
  return {
    minute: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    day: d.getUTCDate(),
    month: d.getUTCMonth() + 1,
    weekday: d.getUTCDay(),
  };
}

/** The oracle's occurrences in [from, to), as ISO strings. */
function oracle(s: CronSchedule, from: number, to: number): string[] {
  const offset = clockOf(s.timezone);
  const { matches, everyHour } = matcher(s.cron);
  const seen = new Set<number>();
  const out: number[] = [];
  let prevWall: number | null = null;
  let prevOffset = 0;
  for (let t = from; t < to; t += MINUTE) {
    const off = offset(t);
    const wall = t + off;
    // Wall minutes the clock jumped over since the last minute: placed with the offset before.
    if (prevWall !== null) {
      for (let w = prevWall + MINUTE; w < wall; w += MINUTE) if (matches(wallFields(w))) out.push(w - prevOffset);
    }
    if (matches(wallFields(wall)) && (everyHour || !seen.has(wall))) out.push(t);
    seen.add(wall);
    prevWall = wall;
    prevOffset = off;
  }
  return [...new Set(out)].sort((a, b) => a - b).map((t) => new Date(t).toISOString());
}

function code(s: CronSchedule, from: number, to: number): string[] {
  const out: string[] = [];
  for (const d of occurrencesAfter(s, new Date(from - 1))) {
    if (d.getTime() >= to) break;
    out.push(d.toISOString());
  }
  return out;
}

// Each zone's changes of 2026: midnight (Cairo, Azores), half an hour (Lord Howe), two hours (Troll).
const CHANGES: [string, string][] = [
  ['Europe/Paris', '2026-03-29T01:00:00Z'],
  ['Europe/Paris', '2026-10-25T01:00:00Z'],
  ['Africa/Cairo', '2026-04-23T22:00:00Z'],
  ['Atlantic/Azores', '2026-10-25T01:00:00Z'],
  ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
  ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
  ['Antarctica/Troll', '2026-03-29T01:00:00Z'],
  ['America/Santiago', '2026-09-06T04:00:00Z'],
];
const CRONS = ['30 2 * * *', '0,30 2 * * *', '0 0 * * *', '30 0 * * *', '*/30 * * * *', '15 1-3 * * *', '0 * * * *'];

describe('occurrences around eight 2026 changes of six zones agree with a brute-force oracle', () => {
  it.each(CHANGES)('%s, change at %s', (timezone, change) => {
    const at = new Date(change).getTime();
    const from = at - 36 * 3_600_000;
    const to = at + 36 * 3_600_000;
    for (const cron of CRONS) {
      const s = { cron, timezone };
      const expected = oracle(s, from, to);
      expect(expected.length).toBeGreaterThan(0);
      expect({ cron, got: code(s, from, to) }).toEqual({ cron, got: expected });
    }
  });
});
