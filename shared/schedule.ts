import { createHash } from 'node:crypto';
import { CronExpression, CronExpressionParser, type CronFieldCollection } from 'cron-parser';
import { quoted } from './model';

/** Schedule maths: pure functions over (cron, timezone, instant). */

export class InvalidScheduleError extends Error {
  override readonly name = 'InvalidScheduleError';
}

export interface CronSchedule {
  cron: string;
  timezone: string;
}

/**
 * Each zone asked about, by its canonical name (null: unknown). Asking the runtime builds an
 * Intl.DateTimeFormat, about 0.3 ms, and the notifier asks on every push: the answer never
 * changes. Bounded, so a flood of made-up zones cannot grow it without limit.
 */
const zones = new Map<string, string | null>();

/**
 * The zones whose canonical name in ICU (CLDR's, which Node 20 gives) is one IANA has since
 * renamed: each old name to IANA's current one, as newer runtimes give it. Taken so that a zone
 * is stored under the name its user knows (Asia/Kolkata, not Asia/Calcutta), and so that a
 * schedule's id does not change with the runtime.
 */
export const IANA_NAME_OF: Readonly<Record<string, string>> = Object.freeze({
  'Africa/Asmera': 'Africa/Asmara',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Coral_Harbour': 'America/Atikokan',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Godthab': 'America/Nuuk',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Europe/Kiev': 'Europe/Kyiv',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Truk': 'Pacific/Chuuk',
});

function zoneOf(timezone: string): string | null {
  let zone = zones.get(timezone);
  if (zone === undefined) {
    try {
      const resolved = new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
      zone = IANA_NAME_OF[resolved] ?? resolved;
    } catch {
      zone = null;
    }
    if (zones.size < 1000) zones.set(timezone, zone);
  }
  return zone;
}

export function isValidTimeZone(timezone: string): boolean {
  return zoneOf(timezone) !== null;
}

/**
 * The IANA zone's canonical name (`utc` and `Etc/UTC` → `UTC`, `europe/paris` → `Europe/Paris`,
 * `US/Eastern` → `America/New_York`, `Asia/Calcutta` → `Asia/Kolkata`), so that two spellings of
 * one zone make one schedule. An unknown zone is given back as it is (validateSchedule names it).
 */
export function canonicalTimeZone(timezone: string): string {
  return zoneOf(timezone) ?? timezone;
}

/**
 * Abbreviations the time zone database takes as zones that keep one offset all year, where a
 * user writing them most likely means the region's clock, daylight saving time included: EST is
 * stored as America/Panama and MST as America/Phoenix. (HST, Hawaii's, has no daylight saving
 * time either way.)
 */
const FIXED_ABBREVIATIONS: Readonly<Record<string, { offset: string; region: string; instead: string }>> = {
  EST: { offset: 'UTC-5', region: 'US Eastern', instead: 'America/New_York' },
  MST: { offset: 'UTC-7', region: 'US Mountain', instead: 'America/Denver' },
};

/**
 * What a user should know of a time zone taken as given, or null: one whose name reads as
 * something it is not. `EST` and `MST` keep one offset all year (no daylight saving time), and
 * `Etc/GMT+5` is UTC-5 (POSIX's sign, the reverse of how it reads). Said as a warning: the zone
 * is valid, and a schedule may mean it.
 */
export function timeZoneCaution(timezone: string): string | null {
  const zone = timezone.trim();
  const fixed = FIXED_ABBREVIATIONS[zone.toUpperCase()];
  if (fixed && isValidTimeZone(zone)) {
    return (
      `time zone ${quoted(zone)} is ${fixed.offset} all year, with no daylight saving time (stored as ` +
      `${canonicalTimeZone(zone)}): for ${fixed.region} time, which changes in summer, give ${fixed.instead}`
    );
  }
  const etc = /^etc\/gmt([+-])(\d{1,2})$/i.exec(zone);
  if (etc && Number(etc[2]) !== 0 && isValidTimeZone(zone)) {
    const hours = Number(etc[2]);
    return (
      `time zone ${quoted(zone)} is UTC${etc[1] === '+' ? '-' : '+'}${hours}, not UTC${etc[1]}${hours}: an Etc/GMT ` +
      `zone's sign is the reverse of how it reads (POSIX's), and it keeps that offset all year`
    );
  }
  return null;
}

/** The cron macros, refused with the 5 fields each stands for (`@reboot` has none). */
const CRON_MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/**
 * The longest cron taken: room for every value of every field written out as a list (all 60
 * minutes and 24 hours, the 31 days, the 12 months, the 7 days: 356 characters), with
 * blanks to spare; a longer one is a mistake, and its errors would quote it whole.
 */
export const MAX_CRON_CHARS = 1000;
/** The longest time zone taken: IANA's longest names are about 30 characters. */
export const MAX_TIMEZONE_CHARS = 100;

/** A cron as it is read and kept: the blanks around it dropped, a run of blanks in it one. */
export function normalCron(cron: string): string {
  return cron.trim().replace(/\s+/g, ' ');
}

/**
 * What to write for a time zone not known: the IANA zones whose city is the name given (`Paris`,
 * `new york`), or, where none is, the form of a name. Not for a blank one (said as blank).
 */
function zoneHint(timezone: string): string {
  const city = timezone.trim().replace(/\s+/g, '_').toLowerCase();
  if (city === '') return '';
  const zones = Intl.supportedValuesOf('timeZone').filter((z) => z.toLowerCase().split('/').at(-1) === city);
  if (zones.length > 0) return `: give its IANA name, ${zones.slice(0, 3).join(' or ')}`;
  return ': give an IANA name, a region and a city, such as Europe/Paris or America/New_York (or UTC)';
}

/** Throws an InvalidScheduleError naming the bad cron or time zone. */
export function validateSchedule(s: CronSchedule): void {
  if (s.timezone.length > MAX_TIMEZONE_CHARS) {
    throw new InvalidScheduleError(
      `time zone ${quoted(s.timezone, 40)} is ${s.timezone.length} characters long; a time zone has at most ${MAX_TIMEZONE_CHARS}`,
    );
  }
  if (s.timezone.trim() === '')
    throw new InvalidScheduleError('time zone is blank: give an IANA zone, such as Europe/Paris or UTC');
  if (!isValidTimeZone(s.timezone)) {
    throw new InvalidScheduleError(`unknown time zone ${JSON.stringify(s.timezone)}${zoneHint(s.timezone)}`);
  }
  // Measured and read as it is kept (a run of blanks in it counts as one).
  const cron = normalCron(s.cron);
  if (cron.length > MAX_CRON_CHARS) {
    throw new InvalidScheduleError(
      `cron ${quoted(cron, 40)} is ${cron.length} characters long; a cron has at most ${MAX_CRON_CHARS}`,
    );
  }
  if (cron === '')
    throw new InvalidScheduleError('cron is blank: it must have 5 fields (minute hour day-of-month month day-of-week)');
  const fields = cron.split(' ');
  const macro =
    fields.length === 1 && Object.hasOwn(CRON_MACROS, cron.toLowerCase()) ? CRON_MACROS[cron.toLowerCase()] : undefined;
  if (macro !== undefined) {
    throw new InvalidScheduleError(
      `cron ${JSON.stringify(s.cron)}: a macro is not taken; write its 5 fields (minute hour day-of-month month day-of-week): ${JSON.stringify(macro)}`,
    );
  }
  if (fields.length !== 5) {
    throw new InvalidScheduleError(
      `cron ${JSON.stringify(s.cron)} must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  }
  // `H` is cron-parser's hashed value: without a seed it is drawn afresh on every parse, so each
  // reading of the schedule would give another time (no field name starts with H).
  const hashed = fields.find((f) => f.split(',').some((item) => /^H(?![A-Za-z])/.test(item)));
  if (hashed !== undefined) {
    throw new InvalidScheduleError(
      `cron ${JSON.stringify(s.cron)}: ${JSON.stringify(hashed)} uses H, a value picked at random, which would give ` +
        'another time each time the schedule is read; write the value itself',
    );
  }
  const misnamed = misnamedValue(fields);
  if (misnamed !== null) throw new InvalidScheduleError(`invalid cron ${JSON.stringify(s.cron)}: ${misnamed}`);
  try {
    // On the wall clock (see occurrencesAfter): the zone's changes cannot make a good cron fail.
    // Parsed once (cronFields): the schedule's occurrences walk the same fields.
    const parsed = new CronExpression(cronFields(cron), { tz: 'UTC' });
    // Only a cron that leaves some months out can name a day none of them has (`0 9 30 2 *`),
    // which its first occurrence finds. One on every month fires in some month whatever its
    // days say (January has a 31st, a last weekday, five of some weekday), and skipping that
    // search halves the cost of a check (docs/PERFORMANCE.md).
    if (!EVERY_MONTH.has(fields[3] ?? '')) parsed.next();
  } catch (err) {
    throw new InvalidScheduleError(
      `invalid cron ${JSON.stringify(s.cron)}: ${cronParserProblem((err as Error).message, fields)}`,
    );
  }
}

/** A month field that names every month. */
const EVERY_MONTH = new Set(['*', '?']);

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = 'January February March April May June July August September October November December'.split(' ');

const MONTH_NAMES = MONTHS.map((m) => m.slice(0, 3).toUpperCase());
const WEEKDAY_NAMES = WEEKDAYS.map((d) => d.slice(0, 3).toUpperCase());

/**
 * A month or day-of-week name cron does not know (`JANUARY`, `MONDAY`, `FOO`), said in words:
 * cron-parser reads the three letters it knows and then names the rest (`cannot resolve alias
 * "uar"`). `L` is a day of the week's own (`5L`, the last Friday).
 */
function misnamedValue(fields: readonly string[]): string | null {
  for (const [index, field, names, first] of [
    [3, 'month', MONTH_NAMES, 1],
    [4, 'day-of-week', WEEKDAY_NAMES, 0],
  ] as const) {
    for (const word of fields[index]?.match(/[A-Za-z]+/g) ?? []) {
      const upper = word.toUpperCase();
      // A day of the week's `L` stands alone (`5L`) or follows a name (`FRIL`, the last Friday).
      const named = index === 4 && upper.endsWith('L') ? upper.slice(0, -1) : upper;
      const known = (names as readonly string[]).includes(named) || (index === 4 && upper === 'L');
      // Names are read in any case, but cron-parser reads its L in capitals alone (`fril`, `5l`).
      if (known && index === 4 && word.endsWith('l')) {
        // The whole field, as written and as it should be: `5l` is said as "5l", not as "l".
        const text = fields[index] ?? word;
        const fixed = text.replace(/[A-Za-z]+/g, (w) => (w === word ? upper : w));
        return `the day-of-week field's ${JSON.stringify(text)} is written ${JSON.stringify(fixed)}: cron takes its L (the last) in capitals`;
      }
      if (known) continue;
      const meant = names.findIndex((n) => upper.startsWith(n));
      const hint =
        meant === -1
          ? `the names are ${names[0]} to ${names[names.length - 1]}`
          : `write ${names[meant]} or ${meant + first}`;
      return `the ${field} field's ${JSON.stringify(word)} is not a ${index === 3 ? 'month' : 'day'} name cron knows: ${hint}`;
    }
  }
  return null;
}

/**
 * The 5 fields, in order: the name the README and the errors give each, cron-parser's name
 * (in a duplicate's error), the range cron-parser gives in a constraint error that does not name
 * the field, the lowest and highest value (Sunday as 0 alone: 7 is Sunday again), and what the
 * field holds, for a value it does not.
 */
const FIELDS = [
  {
    name: 'minute',
    parserName: 'CronMinute',
    range: '0-59',
    low: 0,
    high: 59,
    forms: 'numbers, *, ranges (1-5), steps (*/15) and lists of them',
  },
  {
    name: 'hour',
    parserName: 'CronHour',
    range: '0-23',
    low: 0,
    high: 23,
    forms: 'numbers, *, ranges (1-5), steps (*/15) and lists of them',
  },
  {
    name: 'day-of-month',
    parserName: 'CronDayOfMonth',
    range: '1-31',
    low: 1,
    high: 31,
    forms: 'numbers, *, ranges (1-5), steps (*/15), L (the last day of the month) and lists of them',
  },
  {
    name: 'month',
    parserName: 'CronMonth',
    range: '1-12',
    low: 1,
    high: 12,
    forms: 'numbers, names (JAN), *, ranges (1-5), steps (*/15) and lists of them',
  },
  {
    name: 'day-of-week',
    parserName: 'CronDayOfWeek',
    range: '0-7',
    low: 0,
    high: 6,
    forms:
      'numbers, names (MON), *, ranges (1-5), steps (*/15), a day with L (5L, the last Friday) or # (1#2, the second Monday), and lists of them',
  },
] as const;

/** What each field's values are, for a step past its cycle (stepPastCycle). */
const STEP_UNITS = ['minutes', 'hours', 'days of the month', 'months', 'days of the week'] as const;
/** What a step of each field counts. */
const STEP_EVERY = ['minutes', 'hours', 'days', 'months', 'days'] as const;

// A step longer than its field's whole cycle (90 in the minutes, 25 in the hours): cron takes
// it, and gives the first value alone, once an hour or once a day, where its writer meant
// "every 90 minutes", which cron cannot say. A step of the whole cycle (60 in the minutes, 24 in
// the hours) is what it says. Said when a notification is saved, not when a stored schedule is
// read: one saved before keeps running as it did. Null when no step is.
export function stepPastCycle(cron: string): string | null {
  const fields = normalCron(cron).split(' ');
  for (const [index, field] of FIELDS.entries()) {
    const names = index === 3 ? MONTH_NAMES : index === 4 ? WEEKDAY_NAMES : null;
    for (const given of fields[index]?.split(',') ?? []) {
      // Names as the numbers they stand for (JAN is 1, SUN is 0), as cron-parser reads them.
      const item =
        names === null
          ? given
          : given.replace(/[A-Za-z]{3}/g, (name) => {
              const at = names.indexOf(name.toUpperCase());
              return at === -1 ? name : String(at + field.low);
            });
      // `?` is `*` to cron-parser, in any field.
      const m = /^(?:[*?]|(\d+)(?:-\d+)?)\/(\d+)$/.exec(item);
      if (!m) continue;
      const step = Number(m[2]);
      const cycle = field.high - field.low + 1;
      if (step <= cycle) continue;
      const unit = STEP_UNITS[index];
      return (
        `the ${field.name} field's ${JSON.stringify(given)} steps by ${step}, more than the ${cycle} ${unit} of its cycle ` +
        `(${field.low}-${field.high}), so it gives ${m[1] ?? field.low} alone: cron cannot say every ${step} ${STEP_EVERY[index]}; ` +
        `write the ${unit} it is to run at`
      );
    }
  }
  return null;
}

/** The first field cron-parser refuses on its own, every other field `*`, with its message. */
function refusedField(fields: readonly string[]): { index: number; message: string } | null {
  for (let index = 0; index < FIELDS.length; index++) {
    const alone = FIELDS.map((_, i) => (i === index ? fields[i] : '*')).join(' ');
    try {
      CronExpressionParser.parse(alone, { tz: 'UTC', strict: false });
    } catch (err) {
      return { index, message: (err as Error).message };
    }
  }
  return null;
}

/**
 * What cron-parser found wrong with one field, said in words, the field named (a backward
 * range `FRI-MON`, a step of 0, `15W`, `1#6`, an empty list item); null when it has no words
 * of this project's.
 */
function fieldProblem(fields: readonly string[]): string | null {
  const refused = refusedField(fields);
  if (refused === null) return null;
  const { index, message } = refused;
  const { name, low, high, forms } = FIELDS[index] ?? FIELDS[0];
  const field = fields[index] ?? '';
  const its = `the ${name} field's ${quoted(field, 40)}`;
  const backward = /^Invalid range: (\d+)-(\d+), min/.exec(message);
  if (backward?.[1] !== undefined && backward[2] !== undefined) {
    // A start past the field's last value (`60/5`, read as 60 up to 59) is a value out of range,
    // as `61` alone is said, not a range written backwards; as is an end before its first.
    // Sunday is 7 as well as 0.
    const top = index === 4 ? 7 : high;
    for (const value of [Number(backward[1]), Number(backward[2])]) {
      if (value > top || value < low) return `the ${name} field's value ${value} is outside ${low}-${top}`;
    }
    // 7 is Sunday as 0 is: `7-1` reads as Sunday to Monday, `7-0` as Sunday alone.
    const from = index === 4 && Number(backward[1]) === 7 ? 0 : Number(backward[1]);
    const to = Number(backward[2]);
    if (from <= to) {
      // With a step, the step stays: `7-3/2` is `0-3/2`, not `0-3`.
      if (field.includes('/'))
        return `${its} counts Sunday as 7 at the start of a range: write it as 0 there, the step kept`;
      if (from === to) return `${its} is Sunday alone, written as a range from 7: write it as 0`;
      return `${its} counts Sunday as 7 at the start of a range: write it as 0 there (${from}-${to})`;
    }
    const runs = `${its} has a range that runs backwards, from ${from} down to ${to}: a range runs upwards`;
    // With a step, two halves would each count their step from their own start: no rewrite.
    if (field.includes('/')) return `${runs}, so write one that wraps round as two ranges, each with its step`;
    // Sunday is 7 too: `MON-SUN` is 1-7.
    if (index === 4 && to === 0) return `${runs}, and Sunday is 7 as well as 0: write it as ${from}-7`;
    const first = from >= high ? `${high}` : `${from}-${high}`;
    const second = to <= low ? `${low}` : `${low}-${to}`;
    return `${runs}, so write one that wraps round as two (${first},${second})`;
  }
  if (/^Invalid range: /.test(message) || /^Unexpected range/.test(message)) {
    return `${its} has a range cron cannot read: a range is two values, the lower first (1-5)`;
  }
  if (/^Constraint error, cannot repeat at every (0|NaN) time/.test(message) || /^Invalid step: /.test(message)) {
    const step = /at every 0 time/.test(message) ? 'a step of 0' : 'a step cron cannot read';
    return `${its} has ${step}: a step (the number after /) is a whole number of at least 1`;
  }
  if (message === 'Constraint error, invalid dayOfWeek occurrence number (#)') {
    return `${its} has a # that names no week: the number after # is the day's occurrence in its month, 1 to 5`;
  }
  const incompatible = /^Constraint error, invalid dayOfWeek `#` and `(.)` special characters are incompatible$/.exec(
    message,
  );
  if (incompatible) {
    return `${its} mixes # with ${incompatible[1]}: a day with # (MON#2, the second Monday) stands alone in its field`;
  }
  if (message === 'Invalid list value format') {
    return `${its} has an empty item in its list: items are values or ranges, comma-separated, with nothing between two commas or at either end`;
  }
  if (/unexpected standalone L$/.test(message)) {
    return `${its} has an L alone: in the day-of-week field L follows a day (5L, the last Friday); for the last day of the month, put L in the day-of-month field`;
  }
  if (/^Invalid characters, got value: |^Invalid wildcard|^Invalid repeat/.test(message)) {
    const weekday = /W/i.test(field) && index === 2 ? ' (W, the weekday nearest a day, is not taken)' : '';
    return `${its} is not a value cron reads${weekday}: the field holds ${forms}`;
  }
  const tooMany = /^Constraint error, too many values in \w+ field, expected at most (\d+)$/.exec(message);
  if (tooMany) {
    return `${its} lists more items than cron reads in a field (at most ${tooMany[1]}); name each value once, or use a range (1-5) or a step (*/15)`;
  }
  // A value with L that is not one (`1L`, `8L`).
  if (/Validation error, got value \S+ expected range/.test(message)) {
    return `${its} is not a value cron reads: the field holds ${forms}`;
  }
  return `${its}: ${message}`;
}

/** cron-parser's message for a cron it refuses, in this project's words where it has its own. */
function cronParserProblem(message: string, fields: readonly string[]): string {
  // A day of the month that none of the months named has (30 2, 31 4).
  if (message === 'Invalid explicit day of month definition') {
    return 'no month it names has that day of the month (February has 29 days at most; April, June, September and November 30), so it would never run';
  }
  // A value out of its field's range (`0 25 * * *`, `9-10` for a day of the week).
  const outOfRange = /^Constraint error, got (value|range) (\S+) expected range (\d+-\d+)$/.exec(message);
  const rangeIndex = FIELDS.findIndex((f) => f.range === outOfRange?.[3]);
  const rangeField = FIELDS[rangeIndex];
  if (outOfRange && rangeField !== undefined) {
    // cron-parser's NaN is a value it could not read as a number (`L-2`).
    const written = fields[rangeIndex];
    if (outOfRange[2]?.includes('NaN')) {
      return `the ${rangeField.name} field${written === undefined ? '' : `'s ${quoted(written, 40)}`} holds a ${outOfRange[1]} cron cannot read: the field holds ${rangeField.forms}`;
    }
    // A step from a single value (`0/5`) is read as a range to the field's end (0-31): the value
    // written is what is out of range, not a range the user did not write.
    const stepStart = /^(\d+)\/\d+$/.exec(written ?? '')?.[1];
    if (outOfRange[1] === 'range' && stepStart !== undefined) {
      return `the ${rangeField.name} field's value ${Number(stepStart)} is outside ${outOfRange[3]}`;
    }
    return `the ${rangeField.name} field's ${outOfRange[1]} ${outOfRange[2]} is outside ${outOfRange[3]}`;
  }
  // A value listed twice (`SUN,7`, `1-5,3`): cron-parser names its field and the value as it
  // holds them, Sunday as 0 and months from 1.
  const duplicate = /^(Cron\w+) Validation error, duplicate values found: (\d+)$/.exec(message);
  const field = FIELDS.find((f) => f.parserName === duplicate?.[1])?.name;
  if (duplicate?.[2] === undefined || field === undefined) return fieldProblem(fields) ?? message;
  const value = Number(duplicate[2]);
  const named =
    field === 'day-of-week'
      ? `${WEEKDAYS[value] ?? value}${value === 0 ? ' (0 and 7 are both Sunday)' : ` (${value})`}`
      : field === 'month'
        ? `${MONTHS[value - 1] ?? value} (${value})`
        : String(value);
  return `the ${field} field names ${named} more than once, in a list or in ranges that overlap; name each value once`;
}

/** The field a checkedSchedule problem is about. */
export function scheduleProblemField(problem: string): 'cron' | 'timezone' {
  return /time zone/.test(problem) ? 'timezone' : 'cron';
}

/**
 * A schedule checked (validateSchedule) and put in its one spelling (canonicalTimeZone), or
 * what is wrong with it. Each distinct (cron, time zone) is checked once: an import of many
 * notifications on a few schedules would otherwise parse the same cron for every entry (0.1 to
 * 0.3 ms each), and an import checks each entry twice (as it reads the file, and as it saves).
 * Bounded, so a file of made-up schedules cannot grow it without limit: by the characters of
 * its keys (crons up to 1,000 characters long) and by its entries (docs/PERFORMANCE.md, item 28,
 * for what it holds at its bound; the services run under a heap cap).
 */
const checkedSchedules = new Map<string, { cron: string; timezone: string } | { problem: string }>();
/** The most characters the keys of checkedSchedules hold together. */
export const CHECKED_SCHEDULE_CHARS = 4_000_000;
/** The most entries checkedSchedules holds. */
export const CHECKED_SCHEDULE_ENTRIES = 50_000;
let checkedChars = 0;

/** How many checked schedules are kept (for the tests of the cache's bound). */
export function checkedScheduleCount(): number {
  return checkedSchedules.size;
}

export function checkedSchedule(
  given: string,
  timezone: string,
): { cron: string; timezone: string } | { problem: string } {
  // Blanks around a zone are dropped, as around a cron, and a run of blanks in a cron is kept as
  // one (scheduleIdOf reads them so).
  const zone = timezone.trim();
  const cron = normalCron(given);
  // A cron or zone longer than any taken is checked outside the cache: its keys stay short,
  // whatever a caller sends (an admin PUT of 64 kB, 10,000 times).
  const cacheable = given.length <= MAX_CRON_CHARS && zone.length <= MAX_TIMEZONE_CHARS;
  const key = `${cron}\u0000${zone}`;
  let checked = cacheable ? checkedSchedules.get(key) : undefined;
  if (!checked) {
    try {
      validateSchedule({ cron, timezone: zone });
      // One zone, one spelling: `utc` and `UTC` share a schedule.
      checked = { cron, timezone: canonicalTimeZone(zone) };
    } catch (err) {
      checked = { problem: (err as Error).message };
    }
    if (
      cacheable &&
      checkedChars + key.length <= CHECKED_SCHEDULE_CHARS &&
      checkedSchedules.size < CHECKED_SCHEDULE_ENTRIES
    ) {
      checkedSchedules.set(key, checked);
      checkedChars += key.length;
    }
  }
  return checked;
}

/** The schedule document id: the same (cron, timezone) always maps to the same id. */
/** What scheduleIdOf makes: s_ and the first 20 hex digits of a hash. */
export const SCHEDULE_ID_PATTERN = /^s_[0-9a-f]{20}$/;

export function scheduleIdOf(s: CronSchedule): string {
  const normalised = `${normalCron(s.cron)}|${s.timezone}`;
  return `s_${createHash('sha256').update(normalised).digest('hex').slice(0, 20)}`;
}

/*
 * Occurrences are computed on the local wall clock, then placed in time. cron-parser walks
 * the cron over wall-clock times read as UTC, where no day is 23 or 25 hours long; each wall
 * time is then turned into the instant it names in the time zone:
 * - a wall time that happens once is that instant;
 * - one that happens twice (clocks go back) is its first instant: it runs once; but a cron
 *   that fires every hour keeps its rhythm in real time, and runs at both;
 * - one that does not exist (clocks jump forward) is shifted by the jump (02:30 is 03:30
 *   when 02:00 becomes 03:00): it runs once, at the shifted instant.
 * cron-parser's own time-zone walk disagrees with itself on some change days (prev() against
 * next(), zones that change at midnight, Lord Howe's half-hour change), hence this.
 */

const HOUR_MS = 3_600_000;
/** Wider than any UTC offset (-12 h to +14 h): a wall time's instant is within this of it. */
const OFFSET_SPAN_MS = 15 * HOUR_MS;
/** Wider than any clock change (Troll's 2 h): instants are in wall-time order beyond it. */
const CHANGE_SPAN_MS = 3 * HOUR_MS;
/** Occurrences looked at in one walk before it gives up (a cron that never fires, say). */
const WALK_BOUND = 100_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Whether the zone's clocks change in the year of `at` or the next (a summer time, or a change
 * of its standard offset): its offset read on the first of each month differs.
 */
export function observesClockChanges(timezone: string, at: Date = new Date()): boolean {
  const year = at.getUTCFullYear();
  const offsets = new Set<number>();
  for (let m = 0; m < 24; m++) offsets.add(offsetAt(timezone, Date.UTC(year + Math.floor(m / 12), m % 12, 1)));
  return offsets.size > 1;
}

/** The zone's UTC offset at an instant, in ms (east positive). */
function offsetAt(timezone: string, instantMs: number): number {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      // Year 0 and before are written as years BC (year 0 is 1 BC): without the era they read as AD.
      era: 'short',
    });
    formatters.set(timezone, f);
  }
  const parts: Record<string, number> = {};
  let bc = false;
  for (const p of f.formatToParts(new Date(instantMs))) {
    if (p.type === 'era') bc = p.value === 'BC';
    else if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const year = bc ? 1 - (parts.year ?? 1) : (parts.year ?? 1970);
  const month = (parts.month ?? 1) - 1;
  const day = parts.day ?? 1;
  let wall = Date.UTC(year, month, day, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
  if (year < 100) {
    // Date.UTC reads a year from 0 to 99 as 1900 to 1999 (and a leap day of one may not exist
    // there): the date is set whole on a Date whose time of day is already right.
    const d = new Date(wall);
    d.setUTCFullYear(year, month, day);
    wall = d.getTime();
  }
  return wall - (instantMs - (((instantMs % 1000) + 1000) % 1000));
}

/** The wall-clock time of an instant in the zone, as ms read as UTC. */
function wallOf(timezone: string, instantMs: number): number {
  return instantMs + offsetAt(timezone, instantMs);
}

/**
 * The instants a wall-clock time names in the zone (see above for the two kinds of change):
 * one, or both of a repeated time when `both`.
 */
function instantsOf(timezone: string, wallMs: number, both: boolean): number[] {
  const before = offsetAt(timezone, wallMs - OFFSET_SPAN_MS);
  const after = offsetAt(timezone, wallMs + OFFSET_SPAN_MS);
  // No change of offset anywhere near: the one instant there is.
  if (before === after) return [wallMs - before];
  const candidates = [...new Set([before, after])]
    .map((o) => wallMs - o)
    .filter((t) => wallOf(timezone, t) === wallMs)
    .sort((a, b) => a - b);
  // In a gap: the offset before the change puts it where the clock would have shown it.
  if (candidates.length === 0) return [wallMs - before];
  return both ? candidates : candidates.slice(0, 1);
}

/** Whether the zone's offset is the same throughout `CHANGE_SPAN_MS` either side of an instant. */
function steadyAround(timezone: string, instantMs: number): boolean {
  return offsetAt(timezone, instantMs - CHANGE_SPAN_MS) === offsetAt(timezone, instantMs + CHANGE_SPAN_MS);
}

/**
 * The cron's wall-clock times strictly after (`next`) or before (`prev`) `fromWallMs`, in
 * walking order; bounded, and ended where cron-parser has no more.
 */
function* wallTimes(s: CronSchedule, fromWallMs: number, direction: 'next' | 'prev'): Generator<number> {
  const walk = new CronExpression(cronFields(s.cron), { currentDate: new Date(fromWallMs), tz: 'UTC' });
  for (let i = 0; i < WALK_BOUND; i++) {
    let wall: number;
    try {
      wall = (direction === 'next' ? walk.next() : walk.prev()).getTime();
    } catch {
      return;
    }
    yield wall;
  }
}

/** Whether the cron fires in every hour of the day (its hour field is `*` or covers all 24). */
function everyHour(s: CronSchedule): boolean {
  return cronFields(s.cron).hour.values.length === 24;
}

/**
 * A cron's fields as cron-parser reads them, kept: parsing is a third of what finding an
 * occurrence costs, and a tick plans, and a save makes, each schedule from them, after its check
 * (validateSchedule) parsed them. The fields are only read by a walk (CronExpression), each
 * walk with its own position. Bounded: once it holds CRON_FIELDS_KEPT crons, it starts again.
 */
const parsedCrons = new Map<string, CronFieldCollection>();
export const CRON_FIELDS_KEPT = 2_000;

function cronFields(cron: string): CronFieldCollection {
  let fields = parsedCrons.get(cron);
  if (!fields) {
    fields = CronExpressionParser.parse(cron).fields;
    if (parsedCrons.size >= CRON_FIELDS_KEPT) parsedCrons.clear();
    parsedCrons.set(cron, fields);
  }
  return fields;
}

/**
 * The schedule's occurrences strictly after `after`, in order, as instants. Wall times are
 * walked forward and placed; an instant is handed out once no later wall time can be placed
 * before it.
 */
export function* occurrencesAfter(s: CronSchedule, after: Date): Generator<Date> {
  const afterMs = after.getTime();
  const both = everyHour(s);
  // Wall times from before `after` can land after it only across a change of offset.
  const margin = steadyAround(s.timezone, afterMs) ? 0 : CHANGE_SPAN_MS;
  const pending: number[] = [];
  let last = Number.NEGATIVE_INFINITY;
  for (const wall of wallTimes(s, wallOf(s.timezone, afterMs) - margin, 'next')) {
    const placed = instantsOf(s.timezone, wall, both);
    for (const p of placed) {
      if (p > afterMs && !pending.includes(p)) pending.push(p);
    }
    pending.sort((a, b) => a - b);
    const t = placed[0] as number;
    // Later wall times are placed after this one when the offset is steady around it, and
    // no earlier than CHANGE_SPAN_MS before it in any case.
    const steady = pending.length > 0 && steadyAround(s.timezone, t);
    while (pending.length > 0 && (steady ? (pending[0] as number) <= t : (pending[0] as number) < t - CHANGE_SPAN_MS)) {
      const next = pending.shift() as number;
      if (next > last) {
        last = next;
        yield new Date(next);
      }
    }
  }
  for (const next of pending) {
    if (next <= last) continue;
    last = next;
    yield new Date(next);
  }
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(s: CronSchedule, after: Date): Date {
  for (const d of occurrencesAfter(s, after)) return d;
  throw new InvalidScheduleError(`cron ${JSON.stringify(s.cron)} has no occurrence after ${after.toISOString()}`);
}

/** The last occurrence at or before `at`, or null when there is none in the last year. */
export function latestOccurrence(s: CronSchedule, at: Date): Date | null {
  const atMs = at.getTime();
  const both = everyHour(s);
  const margin = steadyAround(s.timezone, atMs) ? 0 : CHANGE_SPAN_MS;
  let latest: number | null = null;
  for (const wall of wallTimes(s, wallOf(s.timezone, atMs) + margin + 1, 'prev')) {
    const placed = instantsOf(s.timezone, wall, both);
    for (const p of placed) if (p <= atMs && (latest === null || p > latest)) latest = p;
    const t = placed[0] as number;
    // Earlier wall times are placed before this one when the offset is steady around it, and
    // no later than CHANGE_SPAN_MS after it in any case.
    if (latest !== null && (t + CHANGE_SPAN_MS < latest || (t <= latest && steadyAround(s.timezone, t)))) break;
    if (atMs - t > 367 * 24 * HOUR_MS) break;
  }
  return latest !== null && atMs - latest <= 366 * 24 * HOUR_MS ? new Date(latest) : null;
}

/** Whether `instant` is one of the schedule's occurrences. */
export function firesAt(s: CronSchedule, instant: Date): boolean {
  return latestOccurrence(s, instant)?.getTime() === instant.getTime();
}

/** firesAt, remembered: the pushes of one run share a schedule and an occurrence. */
const firings = new Map<string, boolean>();

export function firesAtOccurrence(s: CronSchedule, occurrence: string): boolean {
  const key = `${s.cron}\u0000${s.timezone}\u0000${occurrence}`;
  let fires = firings.get(key);
  if (fires === undefined) {
    fires = firesAt(s, new Date(occurrence));
    if (firings.size >= 10_000) firings.clear();
    firings.set(key, fires);
  }
  return fires;
}

export interface OccurrencePlan {
  /** The occurrence to dispatch now, or null when every due one is too old. */
  run: Date | null;
  /** Due occurrences passed over by the catch-up policy (counted up to a bound). */
  skipped: number;
  /** Where the schedule's nextRunAt goes once this tick's work is done. */
  nextRunAt: Date;
}

/**
 * The most skipped occurrences one plan counts one by one; past it the count is a floor. Each
 * is placed in its time zone as a dispatch would be, which costs tens of microseconds: a
 * bound of 10,000 made one every-minute schedule after a week's outage cost a second of the
 * tick, and a few hundred of them its whole deadline.
 */
export const SKIP_COUNT_BOUND = 1_000;

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
  let counted = 0;
  for (const d of occurrencesAfter(s, new Date(dueSince.getTime() - 1))) {
    if (d.getTime() >= latest.getTime() || ++counted > SKIP_COUNT_BOUND) break;
    skipped++;
  }
  return { run: inWindow ? latest : null, skipped, nextRunAt };
}
