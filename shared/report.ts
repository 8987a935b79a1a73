import { type Account, controlCharactersAsBlanks, looksBlank, type Notification, oneLine, webUrlSchema } from './model';
import { blocksTextLength, SLACK_LIMITS } from './slack-limits';
import { counted } from './words';

export { blocksTextLength, SLACK_LIMITS };

export type Block =
  | { type: 'header'; text: { type: 'plain_text'; text: string; emoji?: boolean } }
  | {
      type: 'section';
      text?: { type: 'mrkdwn'; text: string };
      fields?: { type: 'mrkdwn'; text: string }[];
    }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] }
  | { type: 'divider' };

export interface RenderedReport {
  text: string;
  blocks: Block[];
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
/**
 * How far back from a cut the grapheme segmenter looks (UTF-16 code units). Segmenting the
 * whole string would cost time in its length (a 250,000-character section takes milliseconds);
 * a window keeps the cost fixed. A cluster longer than this (a pile of combining marks, a run of
 * flags) may be cut inside, but still on a code point boundary.
 */
const CLUSTER_WINDOW = 64;

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;
/** Whether a regional indicator letter (U+1F1E6 to U+1F1FF, half a flag) starts at `i`. */
const isRegionalIndicatorAt = (s: string, i: number) =>
  s.charCodeAt(i) === 0xd83c && s.charCodeAt(i + 1) >= 0xdde6 && s.charCodeAt(i + 1) <= 0xddff;

/**
 * The largest index at most `cut` where `s` can be cut without splitting a surrogate pair
 * (which would leave a lone surrogate, not valid UTF-8 to Slack) or, as far as the window
 * sees, a grapheme cluster (half an emoji ZWJ sequence, a flag, a letter without its accent).
 */
export function safeCut(s: string, cut: number): number {
  if (cut <= 0 || cut >= s.length) return Math.max(0, Math.min(cut, s.length));
  let at = cut;
  if (isLowSurrogate(s.charCodeAt(at)) && isHighSurrogate(s.charCodeAt(at - 1))) at--;
  if (at === 0) return 0;
  // In a run of flags, longer than any window, the letters pair up from the run's start: the
  // cut falls after an even number of them, never between the two letters of a flag.
  if (isRegionalIndicatorAt(s, at)) {
    let before = 0;
    for (let i = at - 2; i >= 0 && isRegionalIndicatorAt(s, i); i -= 2) before++;
    if (before > 0) return before % 2 === 1 ? at - 2 : at;
  }
  let start = Math.max(0, at - CLUSTER_WINDOW);
  if (start > 0 && isLowSurrogate(s.charCodeAt(start)) && isHighSurrogate(s.charCodeAt(start - 1))) start--;
  // The window ends past the code point at the cut: a boundary depends on what follows it too.
  const cluster = graphemes.segment(s.slice(start, at + 2)).containing(at - start);
  // A cluster that reaches back to the window's start is longer than the window, or starts the
  // string (a letter under hundreds of marks): keep the code points that fit, not nothing.
  return cluster && cluster.index > 0 ? start + cluster.index : at;
}

/**
 * `s` cut to at most `max` UTF-16 code units (how Slack's limits are counted here, as
 * `.length`), ending in `…` when cut. The cut never splits a code point nor, where it can
 * see one, a grapheme cluster; the extra work is done only when a cut is needed.
 */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max < 1) return '';
  return `${s.slice(0, safeCut(s, max - 1))}…`;
}

/** Slack mrkdwn treats &, < and > as control characters. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The text escapeMrkdwn escaped, as a person reads it. */
export function unescapeMrkdwn(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** How long one character is once escaped for mrkdwn. */
function escapedWidth(c: string): number {
  return c === '&' ? 5 : c === '<' || c === '>' ? 4 : 1;
}

/**
 * `s` escaped for mrkdwn and cut to at most `max` code units, ending in `…` when cut. The cut
 * is made in the text, before it is escaped, so it never falls inside an escape (`&am…` would
 * show as such), and never inside a character (as `truncate`).
 */
export function escapeAndTruncate(s: string, max: number): string {
  const escaped = escapeMrkdwn(s);
  if (escaped.length <= max) return escaped;
  if (max < 1) return '';
  let room = max - 1;
  let end = 0;
  while (end < s.length) {
    const width = escapedWidth(s[end] as string);
    if (width > room) break;
    room -= width;
    end++;
  }
  return `${escapeMrkdwn(s.slice(0, safeCut(s, end)))}…`;
}

/**
 * A label as it can stand in bold: Slack's bold does not run across a line break, and mrkdwn has
 * no escape for `*`, so a line break is shown as a blank and an asterisk as `∗` (U+2217), which
 * looks the same and is not markup (`*Revenue* (net)*` would end the bold early and show the
 * rest with its asterisks); blanks at its ends are dropped.
 */
export function boldable(label: string): string {
  // Blanks at either end too: `* Revenue *` is not bold in Slack, and shows its asterisks.
  // An import takes a label's text as it is: its control characters and direction marks (a NUL,
  // a mark that turns the rest of the report round) are shown as blanks, as line breaks are.
  const shown = controlCharactersAsBlanks(label.replace(/\r\n/g, ' ')).replace(/\*/g, '\u2217').trim();
  // A label of blanks alone (only stored by hand: an import refuses it) would leave `**`, shown as is.
  return shown === '' ? '\u2014' : shown;
}

/** The most of a field a metric's label takes when its value needs the room. */
const MAX_LABEL_SHARE = 500;

/**
 * A metric as a field, `*label*` over its value and change, within Slack's field limit: cut in
 * its label and value, each escaped, so that the bold label keeps its closing `*` and the value
 * is never pushed out by a long label.
 */
function metricField(rawLabel: string, value: string, change: string): string {
  const label = boldable(rawLabel);
  const room = SLACK_LIMITS.sectionFieldChars - '**\n'.length - change.length;
  const labelShare = Math.min(escapeMrkdwn(label).length, MAX_LABEL_SHARE);
  const shownValue = escapeAndTruncate(value, room - labelShare);
  const shownLabel = escapeAndTruncate(label, room - shownValue.length);
  return `*${shownLabel}*\n${shownValue}${change}`;
}

const numberFormat = new Intl.NumberFormat('en-US');
/** A number too small for 3 decimals (0.0004 would show as 0): its first 3 significant digits. */
const smallFormat = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
/** A number of 10^21 and more, which would show as 22 digits or more (`1.5E21`), or under 10^-6 (`1.23E-10`). */
const hugeFormat = new Intl.NumberFormat('en-US', { notation: 'scientific', maximumSignificantDigits: 6 });

/**
 * A metric's value as shown: a number with thousands separators and up to 3 decimals, one too
 * small for them to its first 3 significant digits, a huge or a tiny one in scientific notation,
 * and -0 as 0; a string as it is.
 */
export function formatValue(value: number | string): string {
  if (typeof value !== 'number') return value;
  const size = Math.abs(value);
  if (size === 0) return '0';
  // Under a millionth its digits would run to hundreds of zeros (1e-300): scientific notation.
  if (size < 1e-6) return hugeFormat.format(value);
  if (size < 0.0005) return smallFormat.format(value);
  return (size >= 1e21 ? hugeFormat : numberFormat).format(value);
}

const changeFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

// Building a formatter is the costly part of formatting a date: one per time zone, kept.
const dateFormats = new Map<string, { date: Intl.DateTimeFormat; offset: Intl.DateTimeFormat }>();
function dateFormat(timeZone: string): { date: Intl.DateTimeFormat; offset: Intl.DateTimeFormat } {
  let f = dateFormats.get(timeZone);
  if (!f) {
    f = {
      date: new Intl.DateTimeFormat('en-GB', { timeZone, dateStyle: 'medium', timeStyle: 'short' }),
      offset: new Intl.DateTimeFormat('en-GB', { timeZone, timeZoneName: 'shortOffset' }),
    };
    if (dateFormats.size < 1000) dateFormats.set(timeZone, f);
  }
  return f;
}

/**
 * When an occurrence fell, in its schedule's zone, with that zone's offset from UTC then
 * (`1 Nov 2026, 01:30 GMT-4`): the hour a clock set back repeats reads twice alike without it.
 */
function whenIn(timeZone: string, occurrence: Date): string {
  const f = dateFormat(timeZone);
  const offset = f.offset.formatToParts(occurrence).find((p) => p.type === 'timeZoneName')?.value;
  return offset ? `${f.date.format(occurrence)} ${offset}` : f.date.format(occurrence);
}

function formatChange(change: number | undefined): string {
  if (change === undefined) return '';
  const size = Math.abs(change);
  const shown = size >= 1e21 ? hugeFormat.format(size) : changeFormat.format(size);
  // The arrow follows the figure shown: -0.04 is "▬ 0.0%", not a fall of 0.0%.
  const arrow = shown === '0.0' ? '▬' : change > 0 ? '▲' : '▼';
  return ` ${arrow} ${shown}%`;
}

/** The longest dashboard link a report's context line holds, beside the rest of that line. */
const MAX_DASHBOARD_LINK = SLACK_LIMITS.contextTextChars - 100;

/**
 * The report's link to an account's dashboard, in Slack's mrkdwn (`|` would end the URL early).
 * The URL as a browser writes it: a blank in it (`/x y`), which would end Slack's link there,
 * is percent-encoded, and the scheme and host are lower case.
 */
function dashboardLink(url: string): string {
  const href = URL.canParse(url) ? new URL(url).href : url;
  return `<${escapeMrkdwn(href).replace(/\|/g, '%7C')}|Open the dashboard>`;
}

/** Whether `url` is a web page's (http or https), the only links a report shows, as import takes. */
function isWebUrl(url: string): boolean {
  return webUrlSchema.safeParse(url).success;
}

/** Why a report could not link to `url` (too long, once written as a link), or null when it can. */
export function dashboardUrlProblem(url: string): string | null {
  const length = dashboardLink(url).length;
  return length <= MAX_DASHBOARD_LINK
    ? null
    : `is too long for a report's link: ${length} characters written as a Slack link, at most ${MAX_DASHBOARD_LINK}`;
}

/** Room kept for the highlights' last line, "\n_12345 more highlights not shown_". */
const OMITTED_HIGHLIGHTS_ROOM = 40;

/**
 * The highlights' section text, escaped, within `room`: whole highlights while they fit, and
 * the count of those left out (`_3 more highlights not shown_`); the first cut to fit when
 * even it does not.
 */
function highlightsText(bullets: readonly string[], escaped: readonly string[], room: number): string {
  const whole = escaped.join('\n');
  if (whole.length <= room) return whole;
  const lines: string[] = [];
  let used = 0;
  for (const line of escaped) {
    if (used + line.length + 1 > room - OMITTED_HIGHLIGHTS_ROOM) break;
    lines.push(line);
    used += line.length + 1;
  }
  // A lone highlight needs no count after it: it has the whole room.
  const firstRoom = bullets.length > 1 ? room - OMITTED_HIGHLIGHTS_ROOM : room;
  if (lines.length === 0) lines.push(escapeAndTruncate(bullets[0] ?? '', firstRoom));
  const left = bullets.length - lines.length;
  return left > 0 ? `${lines.join('\n')}\n_${counted(left, 'more highlight')} not shown_` : lines.join('\n');
}

/** Room kept for the footer's "12345 more metrics not shown · ". */
const OMITTED_NOTE_ROOM = 40;
/** The share of the block text the highlights are sure of, whatever the metrics take. */
const HIGHLIGHTS_SHARE = 1 / 3;

/**
 * "{name}: scheduled report", the header when a notification has no title of its own. The
 * header is one line (oneLine): the name's line breaks, control characters and direction marks,
 * and runs of blanks, are shown as one blank, none at either end; a name of blanks or invisible
 * characters alone (stored by hand: an import refuses it) leaves "Scheduled report".
 */
export function defaultTitle(accountName: string): string {
  const name = oneLine(accountName);
  return looksBlank(name) ? 'Scheduled report' : `${name}: scheduled report`;
}

/**
 * Renders an account's report as Block Kit blocks plus the fallback text that
 * notifications and screen readers use. Pure: the same input gives the same message,
 * and every limit Slack enforces is kept here, so a big account cannot make a post fail.
 */
export function renderReport(
  notification: Pick<Notification, 'report' | 'schedule'>,
  account: Account,
  occurrence: Date,
): RenderedReport {
  // A blank stored title would make an empty header, which Slack refuses (invalid_blocks). One
  // stored by hand with what a save refuses (a control character, a line break, a mark that
  // turns the rest round) shows each as a blank; a title a save took is shown as it is.
  const stored = notification.report.title === undefined ? '' : controlCharactersAsBlanks(notification.report.title);
  const custom = looksBlank(stored) ? undefined : stored;
  const title = truncate(custom ?? defaultTitle(account.name), SLACK_LIMITS.headerTextChars);
  const when = whenIn(notification.schedule.timezone, occurrence);
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: title, emoji: true } },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `${when} (${escapeMrkdwn(notification.schedule.timezone)})` }],
    },
  ];

  // A link too long for the context text, or to anything but a web page (import refuses both;
  // an account written to Firestore by other means may hold either), is left out, not cut.
  const fullLink =
    account.dashboardUrl === undefined || !isWebUrl(account.dashboardUrl)
      ? undefined
      : dashboardLink(account.dashboardUrl);
  const link = fullLink !== undefined && fullLink.length <= MAX_DASHBOARD_LINK ? fullLink : undefined;
  // A line break inside a highlight would start an unbulleted line: each is kept to one line. A
  // blank one (import refuses it) would be a bullet with nothing after it: left out.
  const bullets = account.highlights
    .filter((h) => !looksBlank(h))
    .map((h) => `• ${h.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ')}`);
  // Escaped once: measured for the budget, then shown.
  const escapedBullets = bullets.map(escapeMrkdwn);
  const noMetrics = '_No metrics for this period._';

  // The blocks' text, all together, stays within SLACK_LIMITS.blocksTextChars: what the header,
  // the time and the footer take is kept first; the highlights are sure of a third of the rest
  // (as much as they need of it), the metrics take what they need of the remainder, and the
  // highlights then what the metrics left.
  const textRoom =
    SLACK_LIMITS.blocksTextChars -
    blocksTextLength(blocks) -
    (link?.length ?? 0) -
    OMITTED_NOTE_ROOM -
    (account.metrics.length === 0 ? noMetrics.length : 0);
  const highlightsNeed = Math.min(
    // The lines and the breaks between them.
    escapedBullets.reduce((sum, line) => sum + line.length, Math.max(0, escapedBullets.length - 1)),
    SLACK_LIMITS.sectionTextChars,
  );
  const metricsRoom = textRoom - Math.min(highlightsNeed, Math.floor(textRoom * HIGHLIGHTS_SHARE));

  // Metrics go ten to a section (Slack's field limit). They stop at the block limit, with room
  // kept for the divider, the highlights and the footer, or where the next would pass their
  // share of the text.
  const reserved = 3;
  let shown = 0;
  let metricsText = 0;
  let section: { type: 'mrkdwn'; text: string }[] = [];
  for (const m of account.metrics) {
    const field = { type: 'mrkdwn' as const, text: metricField(m.label, formatValue(m.value), formatChange(m.change)) };
    if (metricsText + field.text.length > metricsRoom) break;
    if (section.length === 0) {
      if (blocks.length >= SLACK_LIMITS.blocksPerMessage - reserved) break;
      blocks.push({ type: 'section', fields: section });
    }
    section.push(field);
    if (section.length === SLACK_LIMITS.sectionFields) section = [];
    metricsText += field.text.length;
    shown++;
  }
  const omittedMetrics = account.metrics.length - shown;
  if (account.metrics.length === 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: noMetrics } });
  }

  if (bullets.length > 0) {
    blocks.push({ type: 'divider' });
    const room = Math.min(SLACK_LIMITS.sectionTextChars, textRoom - metricsText);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: highlightsText(bullets, escapedBullets, room) } });
  }

  const footer: string[] = [];
  if (omittedMetrics > 0) footer.push(`${counted(omittedMetrics, 'more metric')} not shown`);
  if (link !== undefined) footer.push(link);
  if (footer.length > 0 && blocks.length < SLACK_LIMITS.blocksPerMessage) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: footer.join(' · ') }] });
  }

  const summary = account.metrics
    .slice(0, 5)
    .map((m) => `${boldable(m.label)}: ${formatValue(m.value)}`)
    .join(', ');
  // The fallback text is mrkdwn too: unescaped, a name like `<!channel>` would notify everyone.
  const text = escapeAndTruncate(summary ? `${title}: ${summary}` : title, SLACK_LIMITS.fallbackTextChars);
  return { text, blocks: blocks.slice(0, SLACK_LIMITS.blocksPerMessage) };
}
