import { SLACK_LIMITS } from './slack-limits';
import { z } from './zod';

/** Firestore's limit on a document id, in UTF-8 bytes. */
export const MAX_DOCUMENT_ID_BYTES = 1500;

/** Half a surrogate pair, which UTF-8 cannot hold (a pair is one code point, so not matched). */
export const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why a string cannot be a Firestore document id, or null when it can: not empty, at most
 * 1,500 bytes, no `/`, not `.` or `..`, not of the reserved form `__…__`.
 */
export function documentIdProblem(id: string): string | null {
  if (id === '') return 'is empty';
  if (id.includes('/')) return "contains '/'";
  if (id === '.' || id === '..') return "is '.' or '..'";
  if (/^__.*__$/s.test(id)) return 'has the reserved form __…__';
  // UTF-8 cannot hold half a surrogate pair: Firestore would store another id (with U+FFFD).
  if (LONE_SURROGATE.test(id)) return 'is not well-formed Unicode (a lone surrogate)';
  if (Buffer.byteLength(id, 'utf8') > MAX_DOCUMENT_ID_BYTES) return `is longer than ${MAX_DOCUMENT_ID_BYTES} bytes`;
  return null;
}

/**
 * The start of `text` for an error message, at most `max` UTF-16 units, never cut inside a
 * character (half an emoji would show as a lone surrogate).
 */
export function excerpt(text: string, max = 100): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** Line and paragraph separators, and the marks that set or turn a text's direction. */
const BREAKS_OR_TURNS_SET = '\\u2028\\u2029\\u200e\\u200f\\u061c\\u202a-\\u202e\\u2066-\\u2069';

/**
 * Characters that would break or hide a quoted text in a message: those that break or turn a
 * line, invisible characters and the braille blank, and the control characters JSON leaves as
 * they are (DEL, and C1's such as U+0085).
 */
const UNSHOWABLE = new RegExp(`[\\p{Cc}${BREAKS_OR_TURNS_SET}\\u2800\\p{Default_Ignorable_Code_Point}]`, 'gu');

/**
 * `text` (its first `max` UTF-16 units, as `excerpt` cuts it) quoted for a message: JSON's
 * escapes, and `\uXXXX` (`\u{XXXXX}` past U+FFFF) for what would turn, break or hide the line.
 * A text cut short is followed by `…`, outside the quotes, so that it is not taken for the whole.
 */
export function quoted(text: string, max = 100): string {
  const shown = excerpt(text, max);
  return `${JSON.stringify(shown).replace(UNSHOWABLE, hexEscape)}${shown.length < text.length ? '…' : ''}`;
}

/**
 * A stored value as text, whatever was written there by hand, and never a throw: a string as it
 * is, a number, boolean or bigint as `String` gives it, null or absent as '', and a map or list
 * as its JSON. `String()`, and a template literal, throw on a map whose `toString` and `valueOf`
 * keys hold no function (Firestore gives a map back as a plain object, keys and all).
 */
export function storedText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'object' && typeof value !== 'function') return String(value);
  try {
    return JSON.stringify(value) ?? Object.prototype.toString.call(value);
  } catch {
    // A cycle (a document reference), or a bigint inside.
    return Object.prototype.toString.call(value);
  }
}

/** `\uXXXX` for a character, `\u{XXXXX}` past U+FFFF. */
function hexEscape(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  const hex = code.toString(16).toUpperCase();
  return code > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
}

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
/** Control characters, and what breaks or turns a line. */
const BREAKS_OR_TURNS = new RegExp(`[\\p{Cc}${BREAKS_OR_TURNS_SET}]`, 'gu');

/**
 * `text` unquoted, with what would break or turn the line it is printed in written as escapes:
 * its control characters (`\n`, `\r`, `\t`, an escape as `\u001B`), the line separators and the
 * direction marks. For a terminal: nothing in it can move the cursor, clear the screen or reverse
 * the line. Invisible characters are left, so that an emoji's joiners still join it.
 */
export function escapedUnshowable(text: string): string {
  return text.replace(BREAKS_OR_TURNS, (c) => SHORT_ESCAPES[c] ?? hexEscape(c));
}

/** A zod string that must be a Firestore document id; the error says why it is not. */
export const documentIdSchema = z.string().superRefine((id, ctx) => {
  const problem = documentIdProblem(id);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a valid document id: ${problem}` });
});

/**
 * The longest notification id, in UTF-8 bytes: its delivery ids (`{id}:{occurrence}`, the
 * occurrence an ISO time of 24 characters) must be document ids and fit a Pub/Sub attribute
 * value (1,024 bytes, the smaller limit; see dispatchAttributes in shared/messages.ts).
 */
export const MAX_NOTIFICATION_ID_BYTES = 1024 - ':2026-01-01T00:00:00.000Z'.length;

/** An id a user gives (a notification's, an account's): a document id that is not blank. */
export const userIdSchema = documentIdSchema.refine((id) => id.trim() !== '', 'is blank');

/** Why `id` cannot be a user's id (see userIdSchema), or null. */
export function userIdProblem(id: string): string | null {
  return id.trim() === '' ? 'is blank' : documentIdProblem(id);
}

/**
 * C0 and C1 controls (line breaks, tabs, escapes), the line and paragraph separators (U+2028,
 * U+2029: a line break to many viewers), and the marks that turn or set text's direction
 * (embeddings, overrides and isolates, and the left-to-right, right-to-left and Arabic marks).
 */
export const CONTROL_CHARACTER = new RegExp(`[\\p{Cc}${BREAKS_OR_TURNS_SET}]`, 'u');
const CONTROL_CHARACTER_ALL = new RegExp(CONTROL_CHARACTER.source, 'gu');
/**
 * Text shown on one line where it cannot be refused any more (an account's name in a report's
 * header, stored before or by hand): its control characters and what breaks or turns a line
 * as blanks, runs of blanks as one, none at either end.
 */
export function oneLine(text: string): string {
  return controlCharactersAsBlanks(text)
    .replace(/[\s\u0085]+/g, ' ')
    .trim();
}

/**
 * Text with its control characters and what breaks or turns a line each shown as a blank, and
 * nothing else changed: text that a save took (a title, a label) is shown as it was saved.
 */
export function controlCharactersAsBlanks(text: string): string {
  return text.replace(CONTROL_CHARACTER_ALL, ' ');
}
/** What CONTROL_CHARACTER holds, in the words of an error about one. */
const CONTROL_CHARACTER_KINDS =
  '(a line break or line separator, a tab, a mark that turns or sets the text’s direction)';

/**
 * Why `id` cannot be the id of something made now, for a control character in it (such an id
 * breaks the line of every list and log it is printed in, or shows reversed), or null. Ids made
 * before this check are still read and addressed as they are.
 */
export function controlCharacterProblem(id: string): string | null {
  return CONTROL_CHARACTER.test(id) ? `has a control character in it ${CONTROL_CHARACTER_KINDS}` : null;
}

/**
 * Characters that show as nothing (Unicode's Default_Ignorable_Code_Point: zero-width spaces and
 * joiners, fillers, format marks, variation selectors, tags; and the braille blank U+2800, which
 * shows as a blank), and white space: what a blank title or Slack id is made of. A RegExp with
 * the `u` flag, as `\p{…}` needs.
 */
export const BLANK_OR_INVISIBLE = /[\s\p{Default_Ignorable_Code_Point}\u2800]/u;
const BLANK_OR_INVISIBLE_ALL = new RegExp(BLANK_OR_INVISIBLE.source, 'gu');

/** Whether `text` shows nothing: empty, or only white space and invisible characters (BLANK_OR_INVISIBLE). */
/** A link a report shows: a web page's (http or https) alone, as import takes it and the report renders it. */
export const webUrlSchema = z.url({ protocol: /^https?$/, error: 'is not an http(s) URL' });

export function looksBlank(text: string): boolean {
  return text.replace(BLANK_OR_INVISIBLE_ALL, '') === '';
}

/** The invisible characters an id refuses, but for those KEPT_IN_CONTEXT allows where they are. */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\u2800]/u;

/**
 * The scripts whose letters a joiner (U+200C, U+200D) joins or keeps apart: Arabic and the
 * scripts written like it, and the Indic and South-East Asian scripts with conjuncts.
 */
const JOINING_SCRIPT =
  /[\p{scx=Arab}\p{scx=Syrc}\p{scx=Nkoo}\p{scx=Mong}\p{scx=Mand}\p{scx=Adlm}\p{scx=Rohg}\p{scx=Thaa}\p{scx=Deva}\p{scx=Beng}\p{scx=Guru}\p{scx=Gujr}\p{scx=Orya}\p{scx=Taml}\p{scx=Telu}\p{scx=Knda}\p{scx=Mlym}\p{scx=Sinh}\p{scx=Khmr}\p{scx=Mymr}\p{scx=Tibt}]/u;
/** What ends an emoji that a zero-width joiner may join to another: the emoji, a skin tone, VS16. */
const EMOJI_BEFORE_JOINER = /\p{Extended_Pictographic}|\p{Emoji_Modifier}|\ufe0f/u;
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;
const EMOJI = /\p{Emoji}/u;
const SKIN_TONE = /\p{Emoji_Modifier}/u;
const ASCII = /[\0-\x7f]/;
const MONGOLIAN = /\p{scx=Mong}/u;
const HAN = /\p{scx=Hani}/u;

/**
 * Whether a kept invisible character `c` does its work where it is, between `before` and
 * `after` (undefined at an end of the id): real text needs the zero-width non-joiner and joiner
 * between letters of a script that joins (Persian, Hindi…), the joiner between two emoji (👩‍💻),
 * the emoji variation selectors (U+FE0E, U+FE0F) after an emoji (❤️; after an ASCII digit, `#`
 * or `*` only in a keycap, 1️⃣), the other variation selectors after a character that is not
 * ASCII (U+E0100–E01EF after a CJK ideograph, as in names), and the Mongolian free variation
 * selectors after a Mongolian letter. Anywhere else one only makes the id look like another.
 */
function keptInContext(c: string, before: string | undefined, after: string | undefined): boolean {
  const is = (re: RegExp, x: string | undefined) => x !== undefined && re.test(x);
  switch (true) {
    case c === '\u200c':
      return is(JOINING_SCRIPT, before) && is(JOINING_SCRIPT, after);
    case c === '\u200d':
      return (
        (is(EMOJI_BEFORE_JOINER, before) && is(PICTOGRAPHIC, after)) ||
        (is(JOINING_SCRIPT, before) && is(JOINING_SCRIPT, after))
      );
    case c === '\ufe0e' || c === '\ufe0f':
      return is(EMOJI, before) && !is(SKIN_TONE, before) && (!is(ASCII, before) || after === '\u20e3');
    case c >= '\ufe00' && c <= '\ufe0d':
      return before !== undefined && !is(ASCII, before) && !is(INVISIBLE, before) && !is(/\s/u, before);
    case c >= '\u{e0100}' && c <= '\u{e01ef}':
      return is(HAN, before);
    case c === '\u180b' || c === '\u180c' || c === '\u180d' || c === '\u180f':
      return is(MONGOLIAN, before);
    default:
      return false;
  }
}

/**
 * The tags of a flag's tag sequence (the black flag U+1F3F4, then a region's code in tag letters
 * and digits, then the cancel tag U+E007F), as the flags of England, Scotland and Wales are
 * written: 🏴 and gbsct in tags. Tags anywhere else (after another emoji, a letter or a digit)
 * are text no one sees.
 */
const EMOJI_TAGS = /(?<=\u{1f3f4})[\u{e0030}-\u{e0039}\u{e0061}-\u{e007a}]{2,7}\u{e007f}/gu;

/** The names of invisible characters, by code point (others are named by it alone). */
const INVISIBLE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00ad, 'soft hyphen'],
  [0x034f, 'combining grapheme joiner'],
  [0x115f, 'Hangul choseong filler'],
  [0x1160, 'Hangul jungseong filler'],
  [0x17b4, 'Khmer vowel inherent aq'],
  [0x17b5, 'Khmer vowel inherent aa'],
  [0x180e, 'Mongolian vowel separator'],
  [0x200b, 'zero-width space'],
  [0x200c, 'zero-width non-joiner'],
  [0x200d, 'zero-width joiner'],
  [0x2060, 'word joiner'],
  [0x2061, 'function application'],
  [0x2062, 'invisible times'],
  [0x2063, 'invisible separator'],
  [0x2064, 'invisible plus'],
  [0x206a, 'inhibit symmetric swapping'],
  [0x206b, 'activate symmetric swapping'],
  [0x206c, 'inhibit Arabic form shaping'],
  [0x206d, 'activate Arabic form shaping'],
  [0x206e, 'national digit shapes'],
  [0x206f, 'nominal digit shapes'],
  [0x3164, 'Hangul filler'],
  [0xfeff, 'zero-width no-break space'],
  [0xffa0, 'halfwidth Hangul filler'],
  [0x2800, 'braille pattern blank'],
  [0xe0001, 'language tag'],
]);

/** `U+XXXX` and its name where it is known (INVISIBLE_NAMES, the variation selectors, the tags). */
function invisibleName(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  const point = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const name =
    INVISIBLE_NAMES.get(code) ??
    (code >= 0xfe00 && code <= 0xfe0f
      ? `variation selector-${code - 0xfe00 + 1}`
      : code >= 0xe0100 && code <= 0xe01ef
        ? `variation selector-${code - 0xe0100 + 17}`
        : code >= 0xe0020 && code <= 0xe007f
          ? 'tag character'
          : undefined);
  return name === undefined ? point : `${point} ${name}`;
}

/**
 * Why `id` cannot be the id of something made now, for an invisible character in it (Unicode's
 * Default_Ignorable_Code_Point, but for those real text needs where it needs them: see
 * keptInContext and EMOJI_TAGS), or
 * for being made of invisible characters only, or null. Such an id looks like the id without
 * them, which then cannot be found by typing it.
 */
export function invisibleCharacterProblem(id: string, what = 'an id'): string | null {
  // Only invisible characters, perhaps with blanks: an id that shows nothing.
  if (id.trim() !== '' && looksBlank(id)) {
    const shown = Array.from(id.replace(/\s/gu, ''), invisibleName);
    return `is made of invisible characters only (${shown.slice(0, 3).join(', ')}${shown.length > 3 ? ', …' : ''}), which look like no id at all`;
  }
  const chars = Array.from(id.replace(EMOJI_TAGS, ''));
  const found = chars.find((c, i) => INVISIBLE.test(c) && !keptInContext(c, chars[i - 1], chars[i + 1]));
  return found === undefined
    ? null
    : `has an invisible character in it (${invisibleName(found)}), which makes it look like ${what} without it`;
}

/**
 * Why `id` cannot be the id of something made now, for blanks (white space) before or after it,
 * or null: it would look like the id without them, which then finds nothing. Blanks inside an id
 * are its own.
 */
export function surroundingBlankProblem(id: string): string | null {
  const trimmed = id.trim();
  return trimmed === id || trimmed === ''
    ? null
    : `has blanks around it, which make it look like the id without them (${quoted(trimmed)}): write it without them`;
}

/**
 * Why `id` cannot be the id of something made now, for not being in Unicode's normalization
 * form C (NFC), or null. Text may write one character two ways (`é` as one code point, or `e`
 * and a combining accent U+0301), which look alike but are two ids: `cafe\u0301` and `café`
 * would be two notifications, the one not found by typing the other. The id as NFC writes it
 * is named.
 */
export function composedFormProblem(id: string): string | null {
  const composed = id.normalize('NFC');
  if (composed === id) return null;
  // What differs, as code points: the two forms look alike on screen.
  const [was, is] = [Array.from(id), Array.from(composed)];
  let head = 0;
  while (head < was.length && was[head] === is[head]) head++;
  let tail = 0;
  while (tail < was.length - head && tail < is.length - head && was.at(-1 - tail) === is.at(-1 - tail)) tail++;
  const points = (cs: string[]) =>
    cs.map((c) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`).join(' ');
  return `is not in Unicode's normalization form C (NFC), so it may look like another id: ${points(was.slice(head, was.length - tail))} is ${points(is.slice(head, is.length - tail))} in NFC, which writes the id ${quoted(composed)}; write it that way`;
}

/**
 * Why an id that was looked up and not found may not be the id it shows, or null: blanks around
 * it, an invisible or control character, a form other than NFC. Said beside "not found", since
 * an id typed or pasted so finds nothing even when the id it looks like exists.
 */
export function lookalikeIdNote(id: string): string | null {
  if (id.trim() === '') return null;
  const problem =
    controlCharacterProblem(id) ??
    invisibleCharacterProblem(id) ??
    surroundingBlankProblem(id) ??
    composedFormProblem(id);
  return problem === null ? null : `the id given ${problem}`;
}

/** The longest notification id, in UTF-16 code units (as zod's `max` counts). */
export const MAX_NOTIFICATION_ID_CHARS = 500;

/**
 * Why `id` cannot be the id of a notification saved now, or null: the tightest limit first, so
 * that an id cut to the limit named is not refused again for another (500 characters, then the
 * rules of a document id and of any new id, then 999 bytes).
 */
export function notificationIdProblem(id: string): string | null {
  return (
    z.string().max(MAX_NOTIFICATION_ID_CHARS).safeParse(id).error?.issues[0]?.message ??
    userIdSchema.safeParse(id).error?.issues[0]?.message ??
    newIdProblem(id) ??
    (Buffer.byteLength(id, 'utf8') > MAX_NOTIFICATION_ID_BYTES
      ? `is longer than ${MAX_NOTIFICATION_ID_BYTES} bytes (its delivery ids, the id and a time, must fit a Pub/Sub attribute of 1,024 bytes)`
      : null)
  );
}

/** Why `id` cannot be the id of a notification or an account made now, or null. */
export function newIdProblem(id: string): string | null {
  return (
    userIdProblem(id) ??
    controlCharacterProblem(id) ??
    invisibleCharacterProblem(id) ??
    surroundingBlankProblem(id) ??
    composedFormProblem(id)
  );
}

/**
 * Why a Slack id that is not blank cannot be one, or null: one with blanks, control characters
 * (C1's among them: U+0085, a line break, is not white space to `\s`) or invisible characters
 * in it could never be posted to.
 */
export function slackIdCharacterProblem(id: string): string | null {
  const within = (text: string) => BLANK_OR_INVISIBLE.test(text) || CONTROL_CHARACTER.test(text);
  if (id.trim() === '' || !within(id)) return null;
  // Spaces, tabs or no-break spaces around it alone, as a paste brings: said with the id to give.
  const trimmed = id.replace(/^[ \t\u00a0]+|[ \t\u00a0]+$/g, '');
  if (!within(trimmed)) return `has blanks around it, which no Slack id has: give it as ${quoted(trimmed)}`;
  return 'has blanks, control characters or invisible characters in it, which no Slack id has';
}

/**
 * Why a new notification's channel, with no blank, control or invisible character in it, is not
 * a conversation's id, or null. A channel's name (`#general`, `general`: Slack's ids have no
 * lower-case letter) or a user's id (`U…`, `W…`) is taken by chat.postMessage, but not by
 * conversations.history, which the look for an earlier post reads after an outcome left unknown
 * (a timeout): each such delivery would then end failed, unverifiable, rather than be looked for.
 * A conversation's id begins with C (a channel), G (an older private channel, a group direct
 * message) or D (a direct message).
 */
export function conversationIdProblem(id: string): string | null {
  // A link to the conversation, copied from Slack: its id is the part after /archives/.
  const linked = /\/archives\/([CDG][A-Z0-9]+)/.exec(id)?.[1];
  if (linked !== undefined) return `is a link to the conversation: give its id alone, ${quoted(linked)}`;
  if (/^[#@]/.test(id) || /\p{Ll}/u.test(id)) {
    return "looks like a channel's name: give the channel's id (C…; Slack shows it at the foot of the channel's details), as the look for an earlier post after a timeout reads a channel by its id alone";
  }
  if (/^[UW][A-Z0-9]+$/.test(id)) {
    return "is a user's id: give the id of the app's direct message channel with them (D…), as the look for an earlier post after a timeout reads a conversation by its id alone";
  }
  if (!/^[CDG]/.test(id)) {
    return "is not a conversation's id, which begins with C (a channel), G (an older private channel, a group direct message) or D (a direct message): give the channel's id (Slack shows it at the foot of the channel's details)";
  }
  return null;
}

/**
 * A Slack channel or workspace id (or a channel name, in a document stored before new
 * notifications were checked for one: conversationIdProblem): not blank, at most 255 characters, with
 * no blank, control or invisible character in it.
 */
const slackIdSchema = z
  .string()
  .max(255)
  .refine((id) => id.trim() !== '', 'is blank')
  // A document stored by hand with such an id is refused at delivery as invalid, not posted to Slack.
  .refine((id) => slackIdCharacterProblem(id) === null, {
    error: (issue) => slackIdCharacterProblem(issue.input as string) ?? '',
  });

/** The most a report title holds: Slack's header text limit, counted as the report cuts it. */
export const MAX_TITLE_LENGTH = SLACK_LIMITS.headerTextChars;

/**
 * A report title, measured in UTF-16 code units (`.length`, as the report measures Slack's
 * limits; a character beyond U+FFFF counts 2), so that a title taken is a title shown whole.
 */
export const titleSchema = z
  .string()
  .refine((t) => t.length <= MAX_TITLE_LENGTH, {
    error: (issue) =>
      `is ${(issue.input as string).length} UTF-16 code units long (a character beyond U+FFFF, as most emoji are, counts 2); a title holds at most ${MAX_TITLE_LENGTH}, Slack's header limit`,
  })
  // The header is one line of plain text: a break would be lost or break it, a bell or an
  // escape shows as a box, and a direction mark turns the rest of the title round.
  .refine((t) => !CONTROL_CHARACTER.test(t), {
    error: (issue) =>
      `holds ${quoted((issue.input as string).match(CONTROL_CHARACTER)?.[0] ?? '')}, a control character ${CONTROL_CHARACTER_KINDS}, which a report's one-line header cannot show`,
  });

/** A notification as stored in `notifications/{id}`. */
export const notificationSchema = z.object({
  accountId: userIdSchema,
  slack: z.object({
    teamId: slackIdSchema.optional(),
    channelId: slackIdSchema,
  }),
  // Blanks around either are dropped, as when a notification is saved (checkedSchedule): a
  // document written by hand with them is read as it would have been saved.
  schedule: z.object({ cron: z.string().trim().min(1), timezone: z.string().trim().min(1) }),
  scheduleId: z.string().min(1),
  enabled: z.boolean(),
  report: z
    .object({
      kind: z.string().min(1).default('account-summary'),
      // Any length when read: one saved before the limit was counted in UTF-16 units (at most 150
      // code points) is still sent, its header cut. A save checks titleSchema (notificationDoc).
      title: z.string().optional(),
    })
    .default({ kind: 'account-summary' }),
  consecutiveFailures: z.number().int().min(0).default(0),
  pausedReason: z.string().nullable().optional(),
});
export type Notification = z.infer<typeof notificationSchema>;
export type NotificationInput = z.input<typeof notificationSchema>;

/** `schedules/{scheduleId}`: one per distinct (cron, timezone). */
export interface ScheduleDoc {
  cron: string;
  timezone: string;
  /** The next occurrence not yet dispatched. */
  nextRunAt: Date;
  lastRunAt?: Date | null;
  skippedOccurrences?: number;
  /**
   * How many notifications the schedule's last finished run published (0: its index was empty);
   * absent before its first run ends. A tick reads the index before it writes a run for a
   * schedule whose last run published none, and writes none while the index stays empty.
   */
  lastRunPublished?: number | null;
}

export type RunStatus = 'running' | 'done' | 'failed';

/** `runs/{scheduleId:occurrence}`. */
export interface RunDoc {
  scheduleId: string;
  occurrence: string;
  status: RunStatus;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  /** Id of the last notification published; the next page starts after it. */
  cursor: string | null;
  published: number;
  pages: number;
  resumes: number;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /**
   * The time the run reads its schedule's dispatch index at (Firestore's read time), the same
   * for every run one tick starts and kept for a resume: the audience of the occurrence is the
   * index as it was then. Absent on runs started before it was kept: they read the index as it is.
   */
  indexReadAt?: Date | null;
  /**
   * Occurrences of its schedule passed over as missed when this run was planned (the catch-up
   * policy): the run's end adds them to the schedule's `skippedOccurrences`, whichever
   * dispatcher ends it. Absent on runs started before it was kept: a resume then adds none.
   */
  skippedBefore?: number;
  lastError?: string | null;
  /** The TTL field (shared/topology.ts RETENTION). */
  expireAt?: Date;
}

/** A stored time as a date: a Date that is one (not an invalid date), else null. */
export function storedDate(value: unknown): Date | null {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value : null;
}

/**
 * A stored count: a whole number from 0, or a string of one as `Number` reads it; anything else
 * (a negative, a fraction, a map or list written by hand, on which `Number` throws when its
 * `toString` or `valueOf` key holds no function) is 0. Never a throw.
 */
export function storedCount(value: unknown): number {
  const n = typeof value === 'number' || typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * A run document as the dispatcher's decisions read it (its Timestamps already Dates), whatever
 * was written into it by hand: a lease owner or cursor that is not a string as none (a cursor of
 * another type kept as its text, so that a resume says it is not a bucket and starts over), a
 * time that is not a date as none, and a count that is not one (storedCount) as 0. One such
 * value failed every tick of its schedule, holding the lease it had just taken.
 */
export function runFromData(data: Record<string, unknown>): RunDoc {
  const cursor = data.cursor;
  const out: Record<string, unknown> = {
    ...data,
    status: typeof data.status === 'string' ? data.status : storedText(data.status),
    leaseOwner: typeof data.leaseOwner === 'string' && data.leaseOwner !== '' ? data.leaseOwner : null,
    leaseExpiresAt: storedDate(data.leaseExpiresAt),
    cursor:
      typeof cursor === 'string' || cursor === null || cursor === undefined ? (cursor ?? null) : storedText(cursor),
    published: storedCount(data.published),
    pages: storedCount(data.pages),
    resumes: storedCount(data.resumes),
    finishedAt: storedDate(data.finishedAt),
  };
  if (data.indexReadAt !== undefined) out.indexReadAt = storedDate(data.indexReadAt);
  if (data.skippedBefore !== undefined) out.skippedBefore = storedCount(data.skippedBefore);
  return out as unknown as RunDoc;
}

export type DeliveryStatus = 'sending' | 'retrying' | 'sent' | 'failed' | 'skipped' | 'dead';
/** Every delivery status, in the order a delivery meets them. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'sending',
  'retrying',
  'sent',
  'failed',
  'skipped',
  'dead',
];
export const FINAL_STATUSES: readonly DeliveryStatus[] = ['sent', 'failed', 'skipped', 'dead'];

/**
 * Whether a delivery record is final for a push that claims it. Three records are not, as they
 * say nothing of the delivery itself, only of the message that left them:
 * - one left by a push too broken to read (no attempt made, `invalid_message`);
 * - a skip because the message came from a schedule the notification has since left for one
 *   that does not fall due at that instant (`notification_rescheduled`);
 * - a skip because the message, from the notification's own schedule, names an instant that
 *   schedule does not fall due at (`not_an_occurrence`: made by hand, or by a fault).
 * In the last two the notification may move, to a schedule that falls due at that instant, and
 * that schedule's message, the same delivery, must still send. A good message for the same
 * delivery, arriving after any of them, claims it and sends.
 */
export function endsDelivery(d: Partial<Pick<DeliveryDoc, 'status' | 'attempts' | 'lastError'>>): boolean {
  if (d.status === undefined || !FINAL_STATUSES.includes(d.status)) return false;
  if (d.status === 'failed' && (d.attempts ?? 0) === 0 && d.lastError?.code === 'invalid_message') return false;
  return !(d.status === 'skipped' && MESSAGE_ONLY_SKIPS.includes(d.lastError?.code ?? ''));
}

/** A record's claim while it still holds at `now`, else null. */
export function liveClaim(d: Partial<Pick<DeliveryDoc, 'claimExpiresAt'>> | null | undefined, now: Date): Date | null {
  const until = d?.claimExpiresAt;
  return until && until.getTime() > now.getTime() ? until : null;
}

/**
 * Whether an attempt holds the delivery at `now`, so that another must wait: a live claim on a
 * record being sent, or on one a redrive reopened while the attempt the dead letter overtook
 * may still be posting (markDead and a redrive keep that attempt's claim). Returns when that
 * claim runs out, or null when nothing holds the delivery.
 */
export function claimHeld(d: Partial<Pick<DeliveryDoc, 'status' | 'claimExpiresAt'>>, now: Date): Date | null {
  return d.status === 'sending' || d.status === 'retrying' ? liveClaim(d, now) : null;
}

/**
 * What an attempt that ends on a record dead-lettered meanwhile leaves on it: its claim kept as
 * a hold while its post may still land, or released; that its outcome is unknown, for the
 * redrive that reopens it; and how it ended (`lastError`), for the operator deciding on that
 * redrive. The record stays `dead`.
 */
export function deadClaimUpdate(
  error: DeliveryDoc['lastError'],
  holdUntil: Date | undefined,
  outcomeUnknown: boolean,
  now: Date,
): Partial<Pick<DeliveryDoc, 'lastError' | 'claimExpiresAt' | 'outcomeUnknown' | 'updatedAt'>> {
  return {
    lastError: error,
    claimExpiresAt: holdUntil ?? null,
    ...(outcomeUnknown ? { outcomeUnknown: true } : {}),
    updatedAt: now,
  };
}

/**
 * A permanent failure counted towards pausing a notification: occurrences in a row, so a
 * failure of the occurrence counted last (its redrive failing the same way, a duplicate) is
 * not counted again (null: nothing to write). `pause` when this one reaches the threshold.
 */
export function permanentFailureUpdate(
  n: { consecutiveFailures?: unknown; enabled?: unknown; lastFailedOccurrence?: unknown },
  reason: string,
  threshold: number,
  now: Date,
  occurrence?: string,
): { update: Record<string, unknown>; pause: boolean } | null {
  if (occurrence !== undefined && n.lastFailedOccurrence === occurrence) return null;
  // A count that is not one (written by hand: a negative, a map) starts again, so that the
  // notification still pauses after `threshold` failures instead of never (NaN) or later.
  const count = storedCount(n.consecutiveFailures ?? 0) + 1;
  const pause = count >= threshold && n.enabled !== false;
  const update: Record<string, unknown> = {
    consecutiveFailures: count,
    lastFailure: reason,
    ...(occurrence !== undefined ? { lastFailedOccurrence: occurrence } : {}),
    updatedAt: now,
  };
  if (pause) Object.assign(update, { enabled: false, pausedReason: reason, pausedAt: now });
  return { update, pause };
}

/** Skips that speak of the message that left them, not of the delivery (see endsDelivery). */
const MESSAGE_ONLY_SKIPS = ['notification_rescheduled', 'not_an_occurrence'];

export interface DeliveryError {
  code: string;
  slackError?: string | null;
  message: string;
  retryable: boolean;
  at: Date;
}

/** `deliveries/{notificationId:occurrence}`: the idempotency ledger and the delivery record. */
export interface DeliveryDoc {
  notificationId: string;
  occurrence: string;
  runId: string;
  accountId?: string | null;
  channelId?: string | null;
  status: DeliveryStatus;
  attempts: number;
  claimedBy?: string | null;
  claimExpiresAt?: Date | null;
  /** The last attempt's Slack call may have posted (a timeout, internal_error). */
  outcomeUnknown?: boolean;
  slackTs?: string | null;
  lastError?: DeliveryError | null;
  publishedAt?: Date | null;
  firstAttemptAt?: Date | null;
  sentAt?: Date | null;
  /** From publish to Slack's answer, for the post that went through; 0 when the publish time is ahead of the notifier's clock. */
  latencyMs?: number | null;
  updatedAt: Date;
  /** The TTL field (shared/topology.ts RETENTION). */
  expireAt?: Date;
  /** When a redrive last reopened it (shared/redrive.ts). */
  lastRedriveAt?: Date | null;
  /** Which redrive last reopened it: the id its message carries (DispatchMessage.redriveId). */
  redriveId?: string | null;
  /** What the redrive that reopened it found it, while its message is not yet published: put back to this if the publish fails. */
  redriveFrom?: 'dead' | 'failed';
  /**
   * When it had failed for good, for the last redrive that reopened it from `failed`: its
   * failure has been counted towards pausing the notification once already.
   */
  failedBeforeRedriveAt?: Date | null;
  /**
   * Where the delivery's attempts were to post, each claim adding its own (postTargetsAfter): an
   * attempt after one whose outcome is unknown looks in each of them before it decides anything,
   * so a channel changed or a notification paused or deleted meanwhile cannot hide that post.
   */
  postTargets?: PostTarget[];
}

/**
 * A delivery record as read (its Timestamps already Dates), with what the ledger's decisions
 * read as a date or a count kept to the types the ledger writes, each read the way that cannot
 * post twice:
 * - a claim's expiry that is not a date (a string written by hand, an invalid date) as none: a
 *   record being sent is then taken over as one whose outcome is unknown, looked for first;
 * - a first attempt's time that is not a date as the occurrence's, the earliest an earlier
 *   attempt can have posted, so that a look for its post starts no later than that post;
 * - `attempts` that are not a whole count as 0; `outcomeUnknown` as any value but an absent,
 *   false or null one: unknown, so looked for first.
 * Without this, one such value failed every attempt and every dead letter of the delivery alike
 * (`until.getTime is not a function`), and the dead-letter endpoint, which retries what it
 * could not record, for ever. What an operator reads (`deliveries`, the admin API) is the record
 * as stored.
 */
export function deliveryFromData(data: Record<string, unknown>): Partial<DeliveryDoc> {
  const out: Record<string, unknown> = { ...data };
  if (out.claimExpiresAt != null && storedDate(out.claimExpiresAt) === null) delete out.claimExpiresAt;
  if (out.firstAttemptAt != null && storedDate(out.firstAttemptAt) === null) {
    const occurrence = typeof out.occurrence === 'string' ? storedDate(new Date(out.occurrence)) : null;
    if (occurrence) out.firstAttemptAt = occurrence;
    else delete out.firstAttemptAt;
  }
  const attempts = out.attempts;
  if (attempts !== undefined && !(Number.isSafeInteger(attempts) && (attempts as number) >= 0)) out.attempts = 0;
  if (out.outcomeUnknown !== undefined) out.outcomeUnknown = Boolean(out.outcomeUnknown);
  return out as Partial<DeliveryDoc>;
}

/** Where an attempt is to post: the notification's channel and workspace, and its account. */
export interface PostTarget {
  channelId: string;
  teamId: string | null;
  accountId: string;
}

/** The most post targets a delivery keeps: its latest ones (a channel changed that often is not a case). */
export const MAX_POST_TARGETS = 10;

/** Where a notification's attempt posts. */
export function postTargetOf(n: Pick<Notification, 'slack' | 'accountId'>): PostTarget {
  return { channelId: n.slack.channelId, teamId: n.slack.teamId ?? null, accountId: n.accountId };
}

/** Whether two post targets are the same channel of the same workspace. */
export function samePlace(a: PostTarget, b: PostTarget): boolean {
  return a.channelId === b.channelId && a.teamId === b.teamId;
}

/** A record's post targets as stored, entries of another shape left out. */
export function postTargetsOf(d: { postTargets?: unknown } | null | undefined): PostTarget[] {
  const stored = d?.postTargets;
  if (!Array.isArray(stored)) return [];
  return stored.filter(
    (t): t is PostTarget =>
      typeof t === 'object' &&
      t !== null &&
      typeof (t as PostTarget).channelId === 'string' &&
      typeof (t as PostTarget).accountId === 'string' &&
      ((t as PostTarget).teamId === null || typeof (t as PostTarget).teamId === 'string'),
  );
}

/**
 * The targets a claim leaves: the earlier ones, and `target` where it is a place none of them
 * is, the latest places kept. A place already there keeps its first entry, whose account is the
 * one an earlier attempt posted for there.
 */
export function postTargetsAfter(earlier: PostTarget[], target: PostTarget | null): PostTarget[] {
  if (!target || earlier.some((t) => samePlace(t, target))) return earlier.slice(-MAX_POST_TARGETS);
  return [...earlier, target].slice(-MAX_POST_TARGETS);
}

/**
 * How far Pub/Sub's clock and a redriver's may disagree, for deadLetterPredatesRedrive. A dead
 * letter of the message before a redrive was published a whole retry policy (at least ten
 * attempts) and an operator's decision earlier than the redrive, so a minute takes nothing real.
 */
export const REDRIVE_CLOCK_SKEW_MS = 60_000;

/**
 * Whether a dead letter is of a message published before the delivery's last redrive (Pub/Sub
 * delivers a dead letter at least once, so the one that ended the delivery can come again after
 * its redrive): the redriven message carries the delivery now, and the old one's death says
 * nothing of it.
 * - `redriveOf`, the redrive the dead message names (null: none, the dispatcher's), settles it
 *   where the record names its last redrive (`redriveId`): every redrive that names itself there
 *   names itself in its messages, so a message that names another is older, whatever the clocks
 *   say, and one that names none (the dispatcher's) is older unless it was published after the
 *   redrive; without the minute's allowance below (a dead letter repeated seconds after the
 *   redrive that reopened its delivery is the older message's).
 * - Otherwise `sourcePublishedAt`, the dead letter's `CloudPubSubDeadLetterSourceTopicPublishTime`,
 *   against the redrive's time.
 * - Without it, a message dead-lettered without its envelope (`unwrapped`, which carries none)
 *   is older where it names a redrive or none: the record names no redrive here, so the
 *   dispatcher's and any redrive's that names itself came before the last, nameless one.
 *   Otherwise nothing is known to predate.
 */
export function deadLetterPredatesRedrive(
  d: Pick<DeliveryDoc, 'lastRedriveAt' | 'redriveId'> | null,
  message: { sourcePublishedAt?: Date | null; redriveOf?: string | null; unwrapped?: boolean },
): boolean {
  const { sourcePublishedAt, redriveOf } = message;
  const redrive = d?.lastRedriveAt;
  if (!(redrive instanceof Date)) return false;
  if (redriveOf !== undefined && typeof d?.redriveId === 'string') {
    if (redriveOf !== null) return redriveOf !== d.redriveId;
    // The dispatcher's: older unless published after the redrive, as a run of the schedule the
    // notification moved to sends the same delivery after the redriven message was passed over
    // for the move (its dead letter must end the delivery, for a redrive to find).
    return !sourcePublishedAt || sourcePublishedAt.getTime() < redrive.getTime();
  }
  if (sourcePublishedAt) return sourcePublishedAt.getTime() < redrive.getTime() - REDRIVE_CLOCK_SKEW_MS;
  return message.unwrapped === true && redriveOf !== undefined;
}

/** Firestore's largest document: 1 MiB as Firestore counts a document's size (documentStorageSize). */
export const MAX_DOCUMENT_BYTES = 1_048_576;

/**
 * A document's size as Firestore counts it against its 1 MiB limit
 * (https://firebase.google.com/docs/firestore/storage-size): its name (each collection and
 * document id, UTF-8, plus 1, then 16), each field's name (UTF-8 plus 1) and value (a string
 * UTF-8 plus 1, a number or a date 8, a boolean or null 1, a map or an array the sum of what it
 * holds), and 32. A JSON text's length is no guide: `1` is one byte there and eight here.
 */
export function documentStorageSize(path: readonly string[], data: Record<string, unknown>): number {
  const text = (s: string) => Buffer.byteLength(s, 'utf8') + 1;
  const value = (v: unknown): number => {
    if (typeof v === 'string') return text(v);
    if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Date) return 8;
    if (v === null || v === undefined || typeof v === 'boolean') return 1;
    if (Array.isArray(v)) return v.reduce((sum: number, item) => sum + value(item), 0);
    if (typeof v === 'object') return fields(v as Record<string, unknown>);
    return 0;
  };
  const fields = (o: Record<string, unknown>): number =>
    Object.entries(o).reduce((sum, [k, v]) => (v === undefined ? sum : sum + text(k) + value(v)), 0);
  return path.reduce((sum, part) => sum + text(part), 16) + fields(data) + 32;
}

/** One figure of an account's report. */
export const metricSchema = z.object({
  label: z.string().min(1),
  value: z.union([z.number(), z.string()]),
  change: z.number().optional(),
});

/** `accounts/{accountId}`: the data an account's report shows. */
export const accountSchema = z.object({
  name: z.string().min(1),
  metrics: z.array(metricSchema).default([]),
  // Import takes strings alone, none blank; in an account written by other means, an entry that
  // is no text (a null, a number) is left out, as a blank one is, rather than failing the report.
  highlights: z
    .array(z.unknown())
    .default([])
    .transform((entries) => entries.filter((h): h is string => typeof h === 'string')),
  // Any text as stored: import takes only an http(s) URL short enough to link; an account written
  // by other means may hold another (blank, `www.…`, `javascript:…`), which the report leaves
  // out rather than failing the delivery (renderReport).
  dashboardUrl: z.string().optional(),
});
export type Account = z.infer<typeof accountSchema>;

export function deliveryIdOf(notificationId: string, occurrence: string): string {
  return `${notificationId}:${occurrence}`;
}

export function runIdOf(scheduleId: string, occurrence: string): string {
  return `${scheduleId}:${occurrence}`;
}

/** Characters as a reader counts them (Unicode code points): an emoji is one, not two UTF-16 units. */
export function characterCount(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** A pause reason's longest, in characters (code points): the admin API and `slack-fanout pause --reason`. */
export const MAX_PAUSE_REASON_CHARS = 500;

/**
 * A new pause reason as it is kept, the blanks around it dropped and in NFC, or why it cannot be one: empty
 * or blank (nothing but white space and invisible characters, which would show as no reason), more
 * than MAX_PAUSE_REASON_CHARS characters, a control character in it (it is printed as it is:
 * `slack-fanout resume --dry-run`'s byReason), or an invisible character as an id refuses. The admin API and `slack-fanout pause --reason`
 * both check a reason so; a reason stored before still selects its notifications as it is.
 */
export function checkedPauseReason(given: string): { reason: string } | { problem: string } {
  // In NFC, as ids are: "café" typed with a combining accent selects the same pauses as with é.
  const reason = given.trim().normalize('NFC');
  if (looksBlank(reason)) return { problem: 'must not be empty or blank (only white space or invisible characters)' };
  const chars = characterCount(reason);
  if (chars > MAX_PAUSE_REASON_CHARS) {
    // NFC can lengthen a text (a few letters, such as Hebrew with a dot, do not compose): the
    // count is of the reason as kept, and says so where it differs from the text as typed.
    const typed = characterCount(given.trim());
    const kept = typed === chars ? '' : ` as kept, in Unicode's composed form (NFC; ${typed} as typed)`;
    return { problem: `at most ${MAX_PAUSE_REASON_CHARS} characters, got ${chars}${kept}` };
  }
  // A reason is selected by (`resume --paused-reason`): one with an invisible character in it
  // would not be found by typing what it shows.
  const problem = controlCharacterProblem(reason) ?? invisibleCharacterProblem(reason, 'a reason');
  return problem ? { problem } : { reason };
}

/** `text` quoted, each character past ASCII written as its code point (`\u00E9`, `\u{1F600}`). */
function codePointsOf(text: string): string {
  const spelt = [...text].map((c) => {
    const code = c.codePointAt(0) ?? 0;
    if (code >= 0x20 && code <= 0x7e) return c;
    const hex = code.toString(16).toUpperCase();
    return code > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
  });
  return `"${spelt.join('')}"`;
}

/**
 * For a reason selector that matched nothing: the reason as a pause saves it now, when that
 * differs (blanks around it, not in NFC), with a sentence saying so; or null. A reason saved
 * before may still differ so, so a selector is matched exactly as given, and this only says what
 * else to try (the CLI's `resume --paused-reason`, the admin API's bulk resume).
 */
export function reasonHint(given: string): { reason: string; message: string } | null {
  const checked = checkedPauseReason(given);
  if (!('reason' in checked) || checked.reason === given) return null;
  const trimmed = given.trim();
  // Composed or not, the two look alike on a screen: both are spelt out, past ASCII, by code point.
  const composed = trimmed.normalize('NFC');
  const how = [
    ...(trimmed !== given ? ['without the blanks around it'] : []),
    ...(composed !== trimmed
      ? [`in Unicode's composed form (NFC): ${codePointsOf(trimmed)} is saved as ${codePointsOf(composed)}`]
      : []),
  ].join(' and ');
  return {
    reason: checked.reason,
    message: `no notification is paused for ${quoted(given)} exactly; a pause saves its reason ${how}`,
  };
}

/**
 * Where in a JSON value a string or a key is not well-formed Unicode (a lone surrogate, which
 * JSON's `\ud800` can write and UTF-8 cannot hold: Firestore refuses the write with a bare
 * "2 UNKNOWN"), as a path (`title`, `metrics[0].label`; `''` for the value itself), or null.
 */
export function loneSurrogatePath(value: unknown, path = ''): string | null {
  const lone = (s: string) => LONE_SURROGATE.test(s);
  // Depth first with a stack of its own, not by recursion: a body of a few kilobytes can nest
  // arrays thousands deep, past the call stack, and it is for the schema to refuse such a value.
  const stack: [unknown, string][] = [[value, path]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [v, at] = next;
    if (typeof v === 'string') {
      if (lone(v)) return at;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${at}[${i}]`]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (const [key] of entries) if (lone(key)) return at ? `${at}.${key}` : key;
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i] as [string, unknown];
        stack.push([item, at ? `${at}.${key}` : key]);
      }
    }
  }
  return null;
}
