import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { type Account, accountSchema, MAX_TITLE_LENGTH, type Notification, titleSchema } from './model';
import {
  type Block,
  blocksTextLength,
  boldable,
  escapeMrkdwn,
  formatValue,
  type RenderedReport,
  renderReport,
  SLACK_LIMITS,
  truncate,
} from './report';

/** Slack's limits, from the fixture rather than from the code under test. */
const limits = (
  JSON.parse(readFileSync(join(__dirname, '..', 'test', 'fixtures', 'slack-postmessage-errors.json'), 'utf8')) as {
    limits: {
      blocks_per_message: number;
      section_text_chars: number;
      section_fields: number;
      section_field_chars: number;
      header_text_chars: number;
      text_truncated_after_chars: number;
    };
  }
).limits;
/** A text object (context elements included) holds at most 3000 characters. */
const TEXT_OBJECT_CHARS = 3000;
const CONTEXT_ELEMENTS = 10;

type RenderInput = Pick<Notification, 'report' | 'schedule'>;
const notification = (title?: string, timezone = 'Europe/Paris'): RenderInput => ({
  report: title === undefined ? { kind: 'account-summary' } : { kind: 'account-summary', title },
  schedule: { cron: '0 9 * * MON-FRI', timezone },
});
const occurrence = new Date('2026-12-07T08:00:00.000Z');
const account = (a: Partial<Account> & { name: string }): Account => accountSchema.parse(a);

/** A surrogate without its other half: not a character, and not valid UTF-8 once sent. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const isWellFormed = (s: string) => !LONE_SURROGATE.test(s);

/** Every text of the message: header, fields, sections, context elements and fallback. */
const allTexts = (r: RenderedReport): string[] => [
  r.text,
  ...r.blocks.flatMap((b) => {
    switch (b.type) {
      case 'header':
        return [b.text.text];
      case 'section':
        return [...(b.text ? [b.text.text] : []), ...(b.fields ?? []).map((f) => f.text)];
      case 'context':
        return b.elements.map((e) => e.text);
      default:
        return [];
    }
  }),
];

/** Every limit Slack enforces on chat.postMessage blocks, checked block by block. */
function expectWithinSlackLimits(r: RenderedReport): void {
  // Slack refuses text that is not valid UTF-8: a cut must not leave half a surrogate pair.
  for (const t of allTexts(r)) expect(isWellFormed(t)).toBe(true);
  expect(r.blocks.length).toBeGreaterThan(0);
  expect(r.blocks.length).toBeLessThanOrEqual(limits.blocks_per_message);
  // The blocks' text together, which Slack refuses past about 12,000 (msg_blocks_too_long).
  const blockText = allTexts(r)
    .slice(1)
    .reduce((sum, t) => sum + t.length, 0);
  expect(blockText).toBe(blocksTextLength(r.blocks));
  expect(blockText).toBeLessThanOrEqual(SLACK_LIMITS.blocksTextChars);
  expect(r.text.trim().length).toBeGreaterThan(0);
  expect(r.text.length).toBeLessThanOrEqual(limits.text_truncated_after_chars);
  for (const b of r.blocks) {
    switch (b.type) {
      case 'header':
        expect(b.text.text.trim().length).toBeGreaterThan(0);
        expect(b.text.text.length).toBeLessThanOrEqual(limits.header_text_chars);
        break;
      case 'section':
        // A section needs text or fields.
        expect(b.text !== undefined || (b.fields?.length ?? 0) > 0).toBe(true);
        if (b.text) {
          expect(b.text.text.length).toBeGreaterThan(0);
          expect(b.text.text.length).toBeLessThanOrEqual(limits.section_text_chars);
        }
        if (b.fields) {
          expect(b.fields.length).toBeLessThanOrEqual(limits.section_fields);
          for (const f of b.fields) {
            expect(f.text.length).toBeGreaterThan(0);
            expect(f.text.length).toBeLessThanOrEqual(limits.section_field_chars);
          }
        }
        break;
      case 'context':
        expect(b.elements.length).toBeGreaterThan(0);
        expect(b.elements.length).toBeLessThanOrEqual(CONTEXT_ELEMENTS);
        for (const e of b.elements) {
          expect(e.text.length).toBeGreaterThan(0);
          expect(e.text.length).toBeLessThanOrEqual(TEXT_OBJECT_CHARS);
        }
        break;
      case 'divider':
        break;
    }
  }
}

/** A report within Slack's limits whose header, and the start of its fallback text, is `header`. */
function expectHeader(r: RenderedReport, header: string): void {
  expectWithinSlackLimits(r);
  expect(r.blocks[0]).toMatchObject({ type: 'header', text: { text: header } });
  expect(r.text.startsWith(header)).toBe(true);
}

const sections = (r: RenderedReport) =>
  r.blocks.filter((b): b is Extract<Block, { type: 'section' }> => b.type === 'section');
const fieldsOf = (r: RenderedReport) => sections(r).flatMap((s) => s.fields ?? []);
const contextTexts = (r: RenderedReport) =>
  r.blocks.flatMap((b) => (b.type === 'context' ? b.elements.map((e) => e.text) : []));
/** Every mrkdwn string of the message, and the fallback text (also read as mrkdwn). */
const mrkdwnTexts = (r: RenderedReport) => [
  r.text,
  ...sections(r).flatMap((s) => [...(s.text ? [s.text.text] : []), ...(s.fields ?? []).map((f) => f.text)]),
  ...contextTexts(r),
];

describe('renderReport: a normal account', () => {
  const acme = account({
    name: 'Acme',
    metrics: [
      { label: 'Revenue', value: 1234567, change: 12.34 },
      { label: 'Churn', value: '2.1%', change: -0.5 },
      { label: 'Tickets', value: 42 },
    ],
    highlights: ['Biggest week so far', 'New region launched'],
    dashboardUrl: 'https://example.com/dash/acme',
  });
  const r = renderReport(notification(), acme, occurrence);

  it('keeps every Slack limit', () => expectWithinSlackLimits(r));

  it('heads the message with the account name and says when, in the schedule zone', () => {
    expect(r.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Acme: scheduled report', emoji: true },
    });
    // 08:00Z is 09:00 in Paris in December, an hour ahead of UTC.
    expect(contextTexts(r)[0]).toContain('09:00 GMT+1');
    expect(contextTexts(r)[0]).toContain('Europe/Paris');
  });

  it('tells apart the two times a clock set back shows the same hour, by their offsets', () => {
    const newYork = { ...notification(), schedule: { cron: '30 * * * *', timezone: 'America/New_York' } };
    // 01:30 on 1 November 2026, once in daylight time and once, an hour later, in standard time.
    const first = contextTexts(renderReport(newYork, acme, new Date('2026-11-01T05:30:00Z')))[0];
    const second = contextTexts(renderReport(newYork, acme, new Date('2026-11-01T06:30:00Z')))[0];
    expect(first).toBe('1 Nov 2026, 01:30 GMT-4 (America/New_York)');
    expect(second).toBe('1 Nov 2026, 01:30 GMT-5 (America/New_York)');
  });

  it('shows one field per metric with its formatted value and change', () => {
    const fields = fieldsOf(r).map((f) => f.text);
    expect(fields).toHaveLength(3);
    expect(fields[0]).toContain('*Revenue*');
    expect(fields[0]).toContain('1,234,567');
    expect(fields[0]).toContain('▲ 12.3%');
    expect(fields[1]).toContain('▼ 0.5%');
    expect(fields[2]).not.toMatch(/[▲▼]/);
  });

  it('points the arrow by the change as shown: one that rounds to 0.0% is level', () => {
    const changes = [-0.04, 0.04, -0, 0.05, -0.05, -0.06, 1e-9];
    const r = renderReport(
      notification(),
      account({ name: 'Acme', metrics: changes.map((change, i) => ({ label: `m${i}`, value: 1, change })) }),
      occurrence,
    );
    expect(fieldsOf(r).map((f) => f.text.split('\n')[1])).toEqual([
      '1 ▬ 0.0%',
      '1 ▬ 0.0%',
      '1 ▬ 0.0%',
      '1 ▲ 0.1%',
      '1 ▼ 0.1%',
      '1 ▼ 0.1%',
      '1 ▬ 0.0%',
    ]);
  });

  it('shows a number as a reader reads it: -0 as 0, one too small for 3 decimals by its digits, a huge one in scientific notation', () => {
    expect(
      [-0, 0, 0.0004, -1.23e-10, 0.0005, -1234.5678, 1234567, 1e308, -2.5e21, 999e18, 5e-324].map((v) =>
        formatValue(v),
      ),
    ).toEqual([
      '0',
      '0',
      '0.0004',
      '-1.23E-10',
      '0.001',
      '-1,234.568',
      '1,234,567',
      '1E308',
      '-2.5E21',
      '999,000,000,000,000,000,000',
      '5E-324',
    ]);
    const r = renderReport(
      notification(),
      account({
        name: 'Acme',
        metrics: [
          { label: 'm', value: 1, change: 12345678.9 },
          { label: 'n', value: 1, change: -1e300 },
        ],
      }),
      occurrence,
    );
    expect(fieldsOf(r).map((f) => f.text.split('\n')[1])).toEqual(['1 ▲ 12,345,678.9%', '1 ▼ 1E300%']);
  });

  it('keeps each highlight on its bulleted line, whatever line breaks it holds', () => {
    const r = renderReport(
      notification(),
      account({ name: 'Acme', highlights: ['line one\nline two', 'a\r\n\r\nb', 'c\u2028d'] }),
      occurrence,
    );
    const text = sections(r).find((s) => s.text?.text.startsWith('•'))?.text?.text;
    expect(text).toBe('• line one line two\n• a b\n• c d');
  });

  it('lists the highlights and links the dashboard', () => {
    expect(sections(r).some((s) => s.text?.text.includes('• Biggest week so far'))).toBe(true);
    expect(contextTexts(r).some((t) => t.includes('<https://example.com/dash/acme|'))).toBe(true);
  });

  it('has a fallback text naming the account and its first metrics', () => {
    expect(r.text).toContain('Acme');
    expect(r.text).toContain('Revenue');
  });

  it('shows whole every title the notification schema takes', () => {
    for (const title of ['😀'.repeat(75), `x${'😀'.repeat(74)}x`, 'é'.repeat(150)]) {
      expect(titleSchema.safeParse(title).success).toBe(true);
      expect(renderReport(notification(title), acme, occurrence).blocks[0]).toMatchObject({ text: { text: title } });
    }
    expect(titleSchema.safeParse('😀'.repeat(76)).success).toBe(false);
    expect(MAX_TITLE_LENGTH).toBe(SLACK_LIMITS.headerTextChars);
  });

  it('uses the notification title when it has one', () => {
    const titled = renderReport(notification('Weekly numbers'), acme, occurrence);
    expect(titled.blocks[0]).toMatchObject({ type: 'header', text: { text: 'Weekly numbers' } });
  });

  it('is pure: the same input gives the same message', () => {
    expect(renderReport(notification(), acme, occurrence)).toEqual(r);
  });
});

describe('renderReport: big and odd accounts stay within the limits', () => {
  it('1,000 metrics with 5,000-character labels', () => {
    const metrics = Array.from({ length: 1000 }, (_, i) => ({
      label: `${String(i).padStart(4, '0')}${'L'.repeat(4996)}`,
      value: i * 1000,
    }));
    const r = renderReport(notification(), account({ name: 'Big', metrics }), occurrence);
    expectWithinSlackLimits(r);
    const shown = fieldsOf(r);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.length).toBeLessThan(1000);
    // Each label is cut, its bold kept closed, and its value still shown.
    expect(
      shown.every((f, i) => new RegExp(`^\\*\\d{4}L+…\\*\n${(i * 1000).toLocaleString('en-US')}$`).test(f.text)),
    ).toBe(true);
    // The rest are counted, not silently dropped.
    const footer = contextTexts(r).join(' ');
    expect(footer).toContain(`${1000 - shown.length} more metrics not shown`);
  });

  it('500 highlights of 500 characters', () => {
    const highlights = Array.from({ length: 500 }, (_, i) => `${i} ${'h'.repeat(495)}`);
    const r = renderReport(notification(), account({ name: 'Chatty', highlights }), occurrence);
    expectWithinSlackLimits(r);
    const text = sections(r).find((s) => s.text?.text.startsWith('• 0 '))?.text?.text ?? '';
    // Whole highlights while they fit, then how many are left out.
    const lines = text.split('\n');
    const shown = lines.length - 1;
    expect(lines.slice(0, -1)).toEqual(highlights.slice(0, shown).map((h) => `• ${h}`));
    expect(lines.at(-1)).toBe(`_${500 - shown} more highlights not shown_`);
    expect(text.length).toBeGreaterThan(limits.section_text_chars - 500 - 40);
  });

  it('a first highlight too long for the room is cut, and the rest counted', () => {
    const highlights = ['x'.repeat(5000), 'second'];
    const r = renderReport(notification(), account({ name: 'Long', highlights }), occurrence);
    expectWithinSlackLimits(r);
    const text = sections(r).find((s) => s.text?.text.startsWith('• x'))?.text?.text ?? '';
    expect(text).toMatch(/^• x+…\n_1 more highlight not shown_$/);
    expect(text.length).toBeGreaterThan(limits.section_text_chars - 40);
  });

  it('a 1,000-character title (from the account name, and from the notification)', () => {
    const long = 'T'.repeat(1000);
    for (const r of [
      renderReport(notification(), account({ name: long }), occurrence),
      renderReport(notification(long), account({ name: 'Acme' }), occurrence),
    ]) {
      expectWithinSlackLimits(r);
      const header = r.blocks[0];
      expect(header?.type === 'header' && header.text.text.length).toBe(limits.header_text_chars);
    }
  });

  it('no metrics at all', () => {
    const r = renderReport(notification(), account({ name: 'Quiet' }), occurrence);
    expectWithinSlackLimits(r);
    expect(fieldsOf(r)).toHaveLength(0);
    expect(sections(r).some((s) => (s.text?.text.length ?? 0) > 0)).toBe(true);
    expect(r.text).toContain('Quiet');
  });

  it('an empty or blank title falls back to the account name rather than an empty header', () => {
    for (const title of ['', '   ']) {
      const r = renderReport(notification(title), account({ name: 'Acme' }), occurrence);
      expectWithinSlackLimits(r);
      expect(r.blocks[0]).toMatchObject({ type: 'header', text: { text: 'Acme: scheduled report' } });
    }
  });

  it('a title stored by hand with what a save refuses shows each such character as a blank, and a saved one as it is', () => {
    const cases: [string, string][] = [
      ['Weekly\u202e numbers', 'Weekly  numbers'],
      ['Weekly\u0000\nnumbers', 'Weekly  numbers'],
      // What a save takes is shown as saved: runs of blanks, an ideographic space.
      ['Q1  Sales', 'Q1  Sales'],
      ['週次\u3000レポート', '週次\u3000レポート'],
      // Control characters alone: the account's name stands in.
      ['\u202e\u0000\n', 'Acme: scheduled report'],
    ];
    for (const [title, header] of cases)
      expectHeader(renderReport(notification(title), account({ name: 'Acme' }), occurrence), header);
  });

  it("the account's name in the header on one line, its blanks at either end dropped", () => {
    const cases: [string, string][] = [
      ['  Acme  ', 'Acme: scheduled report'],
      ['Acme\nCorp', 'Acme Corp: scheduled report'],
      ['Acme \r\n\t Corp\u2028Ltd', 'Acme Corp Ltd: scheduled report'],
      ['Acme\u0085Corp', 'Acme Corp: scheduled report'],
      // Control characters and direction marks, which a title is refused for: blanks here.
      ['Bad\u0085Name\u202e!', 'Bad Name !: scheduled report'],
      ['x\u0000y\u0007', 'x y: scheduled report'],
      // Blanks or invisible characters alone, stored by hand: no name, and no leading colon.
      [' \n ', 'Scheduled report'],
      ['\u200b', 'Scheduled report'],
    ];
    for (const [name, header] of cases)
      expectHeader(renderReport(notification(), account({ name }), occurrence), header);
  });

  it('200 metrics of 2,000 characters, 500 highlights and a long link: the block text within its budget, shared', () => {
    const metrics = Array.from({ length: 200 }, (_, i) => ({ label: `m${i}`, value: 'v'.repeat(2000) }));
    const highlights = Array.from({ length: 500 }, (_, i) => `${i} ${'h'.repeat(100)}`);
    const dashboardUrl = `https://example.com/${'p'.repeat(2500)}`;
    const r = renderReport(notification(), account({ name: 'Huge', metrics, highlights, dashboardUrl }), occurrence);
    expectWithinSlackLimits(r);
    const shown = fieldsOf(r).length;
    expect(shown).toBeGreaterThan(0);
    expect(contextTexts(r).join(' ')).toContain(`${200 - shown} more metrics not shown`);
    expect(contextTexts(r).join(' ')).toContain('|Open the dashboard>');
    // The highlights keep at least their third of what the header, time and footer leave.
    const bullets = sections(r).find((s) => s.text?.text.startsWith('• 0 '))?.text?.text ?? '';
    expect(bullets.length).toBeGreaterThan(2000);
    // One left out is one metric.
    const tiny = Array.from({ length: 451 }, (_, i) => ({ label: `m${i}`, value: i }));
    const one = renderReport(notification(), account({ name: 'Tiny', metrics: tiny }), occurrence);
    expect(fieldsOf(one)).toHaveLength(450);
    expect(contextTexts(one).join(' ')).toContain('1 more metric not shown');
    // Few metrics leave the highlights their whole section.
    const few = renderReport(
      notification(),
      account({ name: 'Huge', metrics: metrics.slice(0, 2), highlights }),
      occurrence,
    );
    expectWithinSlackLimits(few);
    const fewText = sections(few).find((s) => s.text?.text.startsWith('• 0 '))?.text?.text ?? '';
    expect(fewText.length).toBeGreaterThan(limits.section_text_chars - 150);
    expect(fewText).toMatch(/\n_\d+ more highlights not shown_$/);
  });

  it('a 5,000-character dashboard URL', () => {
    const dashboardUrl = `https://example.com/${'p'.repeat(5000)}`;
    const r = renderReport(notification(), account({ name: 'Acme', dashboardUrl }), occurrence);
    expectWithinSlackLimits(r);
  });
});

describe('truncate cuts between characters, never through one', () => {
  const emoji = '😀'; // U+1F600: two UTF-16 code units, a surrogate pair.

  it('leaves a string within the limit as it is', () => {
    expect(truncate(`ab${emoji}`, 4)).toBe(`ab${emoji}`);
  });

  it('cuts before a surrogate pair the limit falls inside, not through it', () => {
    // The old cut kept 9 code units: 8 letters and the pair's high half (\ud83d).
    const cut = truncate(`${'a'.repeat(8)}${emoji}tail`, 10);
    expect(cut).toBe(`${'a'.repeat(8)}…`);
    expect(isWellFormed(cut)).toBe(true);
  });

  it.each([
    ['an emoji with a skin tone', '👍🏽'],
    ['a ZWJ family', '👨‍👩‍👧'],
    ['a flag (two regional indicators)', '🇫🇷'],
    ['a letter and its combining accents', 'e\u0301\u0302'],
    ['a keycap', '1\uFE0F\u20E3'],
  ])('cuts before %s the limit falls inside, not through it', (_what, cluster) => {
    // The limit's cut falls one code unit into the cluster, after a whole code point of it.
    for (const max of [9, 10]) {
      const s = `${'a'.repeat(max - 2)}${cluster}${cluster}tail`;
      const cut = truncate(s, max);
      expect(cut).toBe(`${'a'.repeat(max - 2)}…`);
      expect(cut.length).toBeLessThanOrEqual(max);
    }
  });

  it('keeps what fits of a single cluster longer than the limit, rather than nothing', () => {
    const zalgo = `a${'\u0301'.repeat(200)}`;
    const cut = truncate(zalgo, 150);
    expect(cut.length).toBe(150);
    expect(cut.startsWith('a\u0301')).toBe(true);
  });

  it('keeps the limit, even 0 and 1', () => {
    expect(truncate('abc', 1)).toBe('…');
    expect(truncate('abc', 0)).toBe('');
    expect(truncate(`${emoji}${emoji}`, 2)).toBe('…');
  });

  it('cuts a 250,000-character string at the cluster by its end (the segmenter sees a window, not all of it)', () => {
    const long = `${'x'.repeat(250_000)}👨‍👩‍👧`;
    expect(truncate(long, 250_003)).toBe(`${'x'.repeat(250_000)}…`);
  });

  it('never cuts between the two letters of a flag, in a run of flags longer than its window', () => {
    const flags = '🇫🇷'.repeat(300);
    for (const max of [249, 250, 251, 252, 253]) {
      const cut = truncate(flags, max);
      // Whole flags (4 code units each), then the ellipsis.
      expect((cut.length - 1) % 4).toBe(0);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut.length).toBeGreaterThan(max - 5);
    }
    // The letters pair up from the run's start, as Unicode pairs them: a lone 🇺 in front takes 🇫.
    const shifted = `a🇺${'🇫🇷'.repeat(100)}`;
    for (const max of [101, 102, 103, 104]) {
      const cut = truncate(shifted, max);
      expect((cut.length - 1 - 'a'.length) % 4).toBe(0);
      const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(cut)];
      expect(graphemes.length).toBe(1 + (cut.length - 2) / 4 + 1);
    }
  });

  it('property: within the limit, well-formed, a prefix of the input, cut at a code point', () => {
    const input = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ unit: 'grapheme-composite', maxLength: 40 }),
    );
    fc.assert(
      fc.property(input, fc.integer({ min: 0, max: 100 }), (s, max) => {
        const cut = truncate(s, max);
        expect(cut.length).toBeLessThanOrEqual(max);
        if (s.length <= max) return expect(cut).toBe(s);
        expect(cut.endsWith('…') || max === 0).toBe(true);
        const kept = cut.slice(0, -1);
        expect(s.startsWith(kept)).toBe(true);
        if (isWellFormed(s)) expect(isWellFormed(cut)).toBe(true);
        // Never between the halves of a pair.
        const next = s.charCodeAt(kept.length);
        const last = kept.charCodeAt(kept.length - 1);
        expect(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('renderReport cuts long texts between characters', () => {
  const emoji = '😀';

  it('a header cut at 150 where an emoji straddles the limit', () => {
    for (const r of [
      renderReport(notification(), account({ name: `${'T'.repeat(148)}${emoji} Ltd` }), occurrence),
      renderReport(notification(`${'T'.repeat(148)}${emoji}!`), account({ name: 'Acme' }), occurrence),
    ]) {
      expectWithinSlackLimits(r);
      expect(r.blocks[0]).toMatchObject({ type: 'header', text: { text: `${'T'.repeat(148)}…` } });
      expect(isWellFormed(r.text)).toBe(true);
    }
  });

  it('a metric field and the highlights section cut where an emoji straddles the limit', () => {
    // A field is `*label*\nvalue`: with `**\n` and the value `1`, a label has 1,996 characters,
    // the last for `…`: its 1,994 letters take the cut to an emoji.
    const label = `${'L'.repeat(1994)}${emoji.repeat(10)}`;
    const highlight = `${'h'.repeat(limits.section_text_chars - 3)}${emoji.repeat(10)}`;
    const r = renderReport(
      notification(),
      account({ name: 'Acme', metrics: [{ label, value: 1 }], highlights: [highlight] }),
      occurrence,
    );
    expectWithinSlackLimits(r);
    expect(fieldsOf(r)[0]?.text).toBe(`*${'L'.repeat(1994)}…*\n1`);
    const section = sections(r).find((s) => s.text?.text.startsWith('• h'))?.text?.text;
    expect(section).toBe(`• ${'h'.repeat(limits.section_text_chars - 3)}…`);
  });
});

describe('cuts in escaped text', () => {
  it('never fall inside an escape, in a field, the highlights or the fallback text', () => {
    const r = renderReport(
      notification(),
      account({
        name: 'Acme',
        metrics: [{ label: '&'.repeat(3000), value: '<'.repeat(3000) }],
        highlights: ['&'.repeat(2000)],
      }),
      occurrence,
    );
    expectWithinSlackLimits(r);
    const texts = [...fieldsOf(r).map((f) => f.text), ...sections(r).flatMap((s) => (s.text ? [s.text.text] : []))];
    for (const t of [...texts, r.text]) {
      // Every & starts a whole escape.
      expect(t.replace(/&(amp|lt|gt);/g, '')).not.toContain('&');
    }
    expect(fieldsOf(r)[0]?.text).toMatch(/^\*(&amp;)+…\*\n(&lt;)+…$/);
  });

  it('keep a long label from pushing its value out, and a short label whole', () => {
    const r = renderReport(
      notification(),
      account({
        name: 'Acme',
        metrics: [
          { label: 'L'.repeat(5000), value: 1234, change: 2 },
          { label: 'Revenue', value: 'V'.repeat(5000) },
        ],
      }),
      occurrence,
    );
    expectWithinSlackLimits(r);
    const [long, short] = fieldsOf(r).map((f) => f.text);
    expect(long).toMatch(/^\*L+…\*\n1,234 ▲ 2\.0%$/);
    expect(short).toMatch(/^\*Revenue\*\nV+…$/);
    expect(short).toHaveLength(limits.section_field_chars);
  });

  it('keep a label bold whole: its asterisks shown as ∗ and its line breaks as blanks', () => {
    const r = renderReport(
      notification(),
      account({
        name: 'Acme',
        metrics: [
          { label: 'Revenue* (net)', value: 5 },
          { label: '*Churn*\nmonthly\r\nrate\u2028x', value: 1 },
        ],
      }),
      occurrence,
    );
    expectWithinSlackLimits(r);
    const [first, second] = fieldsOf(r).map((f) => f.text);
    expect(first).toBe('*Revenue\u2217 (net)*\n5');
    expect(second).toBe('*\u2217Churn\u2217 monthly rate x*\n1');
    // The fallback text shows them as the fields do: no line break, no stray bold.
    expect(r.text).toBe('Acme: scheduled report: Revenue\u2217 (net): 5, \u2217Churn\u2217 monthly rate x: 1');
    expect(boldable(' Revenue ')).toBe('Revenue');
    expect(boldable('Rate\n')).toBe('Rate');
    expect(boldable('\u2028Lead')).toBe('Lead');
    // Blanks alone (stored by hand) would leave `**`: a dash stands in.
    expect(boldable(' \n ')).toBe('\u2014');
    expect(boldable('a*b\rc')).toBe('a\u2217b c');
    // Control characters and direction marks, which an import takes in a label: blanks here.
    expect(boldable('Rev\u202eenue\u0000!')).toBe('Rev enue !');
  });
});

describe('the dashboard link', () => {
  it('is written as a browser writes the URL: a blank encoded, the scheme and host lower case', () => {
    const r = renderReport(
      notification(),
      account({ name: 'Acme', dashboardUrl: 'HTTPS://EXAMPLE.COM/x y?q=a|b' }),
      occurrence,
    );
    expect(contextTexts(r).join(' ')).toContain('<https://example.com/x%20y?q=a%7Cb|Open the dashboard>');
  });
});

describe('account data written by other means than import, which import refuses', () => {
  it('links no dashboard that is not a web page, and leaves out a blank highlight', () => {
    for (const dashboardUrl of [
      'javascript:alert(1)',
      'ftp://example.com/x',
      'file:///etc/passwd',
      'mailto:a@b.c',
      '',
      ' ',
      'www.example.com/dash',
      '//evil.example/x',
    ]) {
      // Read as the notifier reads a stored account: taken, and the link left out.
      const r = renderReport(notification(), accountSchema.parse({ name: 'Acme', dashboardUrl }), occurrence);
      expect(contextTexts(r).join(' ')).not.toContain('Open the dashboard');
      expectWithinSlackLimits(r);
    }
    // Read as the notifier reads a stored account: entries that are no text are left out too.
    const stored = {
      name: 'Acme',
      highlights: ['First', ' ', null, 7, '\u200b', 'Second'],
      dashboardUrl: 'http://example.com/',
    };
    const r = renderReport(notification(), accountSchema.parse(stored), occurrence);
    const highlights = sections(r).find((s) => s.text?.text.startsWith('• '))?.text?.text;
    expect(highlights).toBe('• First\n• Second');
    expect(contextTexts(r).join(' ')).toContain('<http://example.com/|Open the dashboard>');
  });
});

describe('mrkdwn escaping', () => {
  it('escapes <, > and & in every mrkdwn text, so data cannot mention @channel or fake a link', () => {
    const nasty = '<!channel> & <https://evil.example|click>';
    const r = renderReport(
      notification(undefined),
      account({
        name: nasty,
        metrics: [{ label: nasty, value: nasty, change: 1 }],
        highlights: [nasty],
      }),
      occurrence,
    );
    expectWithinSlackLimits(r);
    for (const t of mrkdwnTexts(r)) {
      expect(t).not.toContain('<!channel>');
      expect(t).not.toContain('<https://evil.example');
    }
    expect(fieldsOf(r)[0]?.text).toContain('&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    // The header is plain_text: shown as written, no entities.
    expect(r.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
    const header = r.blocks[0];
    expect(header?.type === 'header' && header.text.text.startsWith('<!channel> & ')).toBe(true);
  });

  it('escapeMrkdwn escapes & first, so entities are not double-escaped wrongly', () => {
    expect(escapeMrkdwn('a < b && c > d')).toBe('a &lt; b &amp;&amp; c &gt; d');
    expect(escapeMrkdwn('&lt;')).toBe('&amp;lt;');
    expect(escapeMrkdwn('plain')).toBe('plain');
  });
});

describe('renderReport property: any valid account keeps every limit', () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 300 });
  const metric = fc.record(
    {
      label: fc.oneof(fc.string({ minLength: 1, maxLength: 50 }), fc.string({ minLength: 1, maxLength: 3000 })),
      value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), text),
      change: fc.double({ noNaN: true, noDefaultInfinity: true }),
    },
    { requiredKeys: ['label', 'value'] },
  );
  /** A few generated items repeated up to `max` times: big arrays without generating each item. */
  const many = <T>(item: fc.Arbitrary<T>, max: number) =>
    fc
      .tuple(fc.array(item, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max }))
      .map(([xs, n]) => Array.from({ length: n }, (_, i) => xs[i % xs.length] as T));
  const accounts = fc
    .record(
      {
        name: fc.oneof(
          fc.string({ minLength: 1, maxLength: 400 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
        ),
        // Around the block limit: 45 sections of 10 fields fit.
        metrics: fc.oneof(fc.array(metric, { maxLength: 12 }), many(metric, 700)),
        highlights: fc.oneof(fc.array(text, { maxLength: 5 }), many(text, 300)),
        dashboardUrl: fc.webUrl({ withQueryParameters: true, withFragments: true }),
      },
      { requiredKeys: ['name'] },
    )
    .filter((a) => accountSchema.safeParse(a).success)
    .map((a) => accountSchema.parse(a));
  const inputs = fc.record({
    title: fc.option(fc.string({ maxLength: 150 }), { nil: undefined }),
    timezone: fc.constantFrom('Europe/Paris', 'America/New_York', 'UTC', 'Asia/Kathmandu', 'Pacific/Chatham'),
    occurrence: fc.date({
      min: new Date('2000-01-01T00:00:00Z'),
      max: new Date('2100-01-01T00:00:00Z'),
      noInvalidDate: true,
    }),
  });

  it('holds for arbitrary accounts', () => {
    fc.assert(
      fc.property(accounts, inputs, (acc, { title, timezone, occurrence: when }) => {
        const r = renderReport(notification(title, timezone), acc, when);
        expectWithinSlackLimits(r);
        // Every metric is either shown or counted in the footer.
        const shown = fieldsOf(r).length;
        const omitted = Number(/(\d+) more metrics? not shown/.exec(contextTexts(r).join(' '))?.[1] ?? 0);
        expect(shown + omitted).toBe(acc.metrics.length);
      }),
      { numRuns: 100 },
    );
  });
});
