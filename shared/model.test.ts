import {
  accountSchema,
  checkedPauseReason,
  composedFormProblem,
  controlCharacterProblem,
  deliveryFromData,
  documentStorageSize,
  excerpt,
  invisibleCharacterProblem,
  looksBlank,
  newIdProblem,
  notificationSchema,
  permanentFailureUpdate,
  quoted,
  reasonHint,
  runFromData,
  storedCount,
  storedText,
  surroundingBlankProblem,
} from './model';
import { z } from './zod';

describe('documentStorageSize (how Firestore counts a document against its 1 MiB)', () => {
  it('gives 147 bytes for the example of Firestore’s storage-size page', () => {
    const task = { type: 'Personal', done: false, priority: 1, description: 'Learn Cloud Firestore' };
    expect(documentStorageSize(['users', 'jeff', 'tasks', 'my_task_id'], task)).toBe(147);
  });

  it('counts a number as 8 bytes, a string and a field name as their UTF-8 and 1, maps and arrays as what they hold', () => {
    const empty = documentStorageSize(['c', 'd'], {});
    expect(empty).toBe(2 + 2 + 16 + 32);
    expect(documentStorageSize(['c', 'd'], { n: 1 }) - empty).toBe(2 + 8);
    expect(documentStorageSize(['c', 'd'], { s: 'é' }) - empty).toBe(2 + 3);
    expect(documentStorageSize(['c', 'd'], { a: [1, 'x', null, true] }) - empty).toBe(2 + 8 + 2 + 1 + 1);
    expect(documentStorageSize(['c', 'd'], { m: { k: 1 } }) - empty).toBe(2 + 2 + 8);
    expect(documentStorageSize(['c', 'd'], { gone: undefined })).toBe(empty);
  });
});

describe('excerpt', () => {
  it('keeps short text whole, cuts long text at the limit, never inside a character', () => {
    expect(excerpt('abc')).toBe('abc');
    expect(excerpt('a'.repeat(150))).toBe('a'.repeat(100));
    // 99 characters, then an emoji (two UTF-16 units) across the cut: the half is dropped.
    const cut = excerpt(`${'a'.repeat(99)}😀😀`);
    expect(cut).toBe('a'.repeat(99));
    expect(JSON.stringify(cut)).not.toContain('\\ud83d');
    expect(excerpt(`${'a'.repeat(98)}😀😀`)).toBe(`${'a'.repeat(98)}😀`);
  });
});

describe('zod messages for text too short or too long, and numbers out of range (shared/zod.ts)', () => {
  it('name what a union of types takes and what it got', () => {
    const value = z.union([z.number(), z.string()]);
    const said = (v: unknown) => value.safeParse(v).error?.issues[0]?.message;
    expect(said(null)).toBe('expected a number or a string, received null');
    expect(said(true)).toBe('expected a number or a string, received boolean');
    expect(said([1])).toBe('expected a number or a string, received array');
    expect(said(new Date(0))).toBe('expected a number or a string, received date');
    expect(said(new Map())).toBe('expected a number or a string, received Map');
    expect(said(undefined)).toBe('is missing (expected a number or a string)');
    expect(said(Number.NaN)).toBe('is not a finite number (NaN)');
    // A union whose branches refuse more than the type keeps zod's words.
    expect(z.union([z.literal('a'), z.number()]).safeParse('b').error?.issues[0]?.message).toBe('Invalid input');
  });

  it('say what is wrong with the value, and a schema’s own message still comes first', () => {
    const schema = z.object({ a: z.string().min(1), b: z.string().max(3), c: z.string().min(2, 'own words') });
    const issues = schema.safeParse({ a: '', b: 'abcd', c: 'x' }).error?.issues.map((i) => `${i.path}: ${i.message}`);
    expect(issues).toEqual(['a: is empty', 'b: is longer than 3 characters (4)', 'c: own words']);
    expect(z.string().min(3).safeParse('ab').error?.issues[0]?.message).toBe('is shorter than 3 characters');
    // So do numbers out of range; other kinds keep zod's words.
    expect(z.number().min(2).safeParse(1).error?.issues[0]?.message).toBe('must be at least 2');
    expect(z.number().max(2).safeParse(3).error?.issues[0]?.message).toBe('must be at most 2');
    expect(z.number().positive().safeParse(0).error?.issues[0]?.message).toBe('must be more than 0');
    expect(z.array(z.string()).min(1).safeParse([]).error?.issues[0]?.message).toMatch(/^Too small/);
  });

  it('name a number that is NaN or infinite, alone or in a union, as Firestore can store one', () => {
    const metric = (value: unknown, change?: unknown) =>
      accountSchema
        .safeParse({ name: 'a', metrics: [{ label: 'l', value, change }] })
        .error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(metric(Number.NaN)).toEqual(['metrics.0.value: is not a finite number (NaN)']);
    expect(metric(Number.POSITIVE_INFINITY)).toEqual(['metrics.0.value: is not a finite number (Infinity)']);
    expect(metric(1, Number.NEGATIVE_INFINITY)).toEqual(['metrics.0.change: is not a finite number (-Infinity)']);
    expect(metric(1.5, -2)).toBeUndefined();
    // Anything else is named as a union of types refused (above), and a field that takes no number keeps zod's words.
    expect(metric(true)).toEqual(['metrics.0.value: expected a number or a string, received boolean']);
    const notNumbers = z.object({ b: z.boolean(), s: z.string(), u: z.union([z.string(), z.boolean()]) });
    const words = notNumbers.safeParse({ b: Number.NaN, s: Number.POSITIVE_INFINITY, u: Number.NaN });
    expect(words.error?.issues.map((i) => i.message)).toEqual([
      'Invalid input: expected boolean, received NaN',
      'Invalid input: expected string, received Infinity',
      'expected a string or a boolean, received number',
    ]);
  });

  it('name a boolean or a number given as text with the value to give, without the quotes', () => {
    const schema = z.object({ b: z.boolean(), n: z.number(), s: z.boolean() });
    expect(schema.safeParse({ b: 'false', n: ' 3 ', s: 'no' }).error?.issues.map((i) => i.message)).toEqual([
      'is the text "false": give false, without the quotes (expected a boolean)',
      'is the text " 3 ": give 3, without the quotes (expected a number)',
      'Invalid input: expected boolean, received string',
    ]);
  });

  it('name a field left out as missing, with what it should hold', () => {
    const schema = z.object({ s: z.string(), n: z.number(), o: z.object({}), a: z.array(z.string()) });
    expect(schema.safeParse({}).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      's: is missing (expected a string)',
      'n: is missing (expected a number)',
      'o: is missing (expected an object)',
      'a: is missing (expected an array)',
    ]);
    // A value of the wrong type keeps zod's words.
    expect(schema.safeParse({ s: 1, n: 1, o: {}, a: [] }).error?.issues[0]?.message).toBe(
      'Invalid input: expected string, received number',
    );
  });
});

describe('controlCharacterProblem (text made now that is printed in lists and logs)', () => {
  it.each([
    ['a line feed', 'a\nb'],
    ['a tab', 'a\tb'],
    ['an escape', 'a\u001b[31mb'],
    ['a C1 control', 'a\u0085b'],
    ['the line separator', 'a\u2028b'],
    ['the paragraph separator', 'a\u2029b'],
    ['a right-to-left override', 'a\u202eb'],
    ['a first-strong isolate', 'a\u2068b'],
    ['the left-to-right mark', 'a\u200eb'],
    ['the right-to-left mark', 'a\u200fb'],
    ['the Arabic letter mark', 'a\u061cb'],
  ])('refuses %s', (_name, text) => {
    expect(controlCharacterProblem(text)).toMatch(/has a control character in it/);
  });

  it('takes plain text in any script, emoji and joiners', () => {
    for (const text of ['channel archived by ops', 'قناة مؤرشفة', '频道已归档', '👩‍💻 team', 'naïve café']) {
      expect(controlCharacterProblem(text)).toBeNull();
    }
  });
});

describe('invisibleCharacterProblem (an id that looks like another)', () => {
  it('takes the joiners emoji and some scripts need', () => {
    for (const id of ['👩\u200d💻-team', 'می\u200cخواهم', 'ü-😀-', 'n-1']) {
      expect(invisibleCharacterProblem(id)).toBeNull();
      expect(newIdProblem(id)).toBeNull();
    }
  });

  // Unicode's Default_Ignorable_Code_Point: each named by its code point.
  it.each([
    ['U+200B zero-width space', 'n-\u200b1'],
    ['U+2060 word joiner', '\u2060n-1'],
    ['U+FEFF zero-width no-break space', 'n-1\ufeff'],
    ['U+00AD soft hyphen', 'n\u00ad1'],
    ['U+180E Mongolian vowel separator', 'n\u180e1'],
    ['U+3164 Hangul filler', '\u3164n-1'],
    ['U+FFA0 halfwidth Hangul filler', 'n-1\uffa0'],
    ['U+115F Hangul choseong filler', 'n\u115f1'],
    ['U+1160 Hangul jungseong filler', 'n\u11601'],
    ['U+034F combining grapheme joiner', 'n\u034f1'],
    ['U+17B4 Khmer vowel inherent aq', 'n\u17b41'],
    ['U+2061 function application', 'n\u20611'],
    ['U+2062 invisible times', 'n\u20621'],
    ['U+2063 invisible separator', 'n\u20631'],
    ['U+2064 invisible plus', 'n\u20641'],
    ['U+206A inhibit symmetric swapping', 'n\u206a1'],
    ['U+206F nominal digit shapes', 'n\u206f1'],
    ['U+2065', 'n\u20651'],
    ['U+FFF0', 'n\ufff01'],
    ['U+1D173', 'n\u{1d173}1'],
    ['U+1BCA0', 'n\u{1bca0}1'],
    ['U+E0001 language tag', 'n\u{e0001}1'],
    // Tags outside a flag's tag sequence: text no one sees.
    ['U+E0067 tag character', 'n-1\u{e0067}\u{e0062}\u{e007f}'],
    ['U+E007F tag character', 'n-1\u{e007f}'],
    ['U+E0061 tag character', 'report😀\u{e0061}\u{e0062}\u{e007f}'],
    ['U+E0041 tag character', '🏴\u{e0041}\u{e0042}\u{e007f}'],
    // A kept character where nothing needs it: a joiner at an end, a variation selector first.
    ['U+200D zero-width joiner', 'abc\u200d'],
    ['U+200C zero-width non-joiner', '\u200cabc'],
    ['U+FE0F variation selector-16', '\ufe0fabc'],
    // Beside ASCII, where no emoji or joining script needs one.
    ['U+200D zero-width joiner', 'a\u200db'],
    ['U+200C zero-width non-joiner', 'acct\u200c-1'],
    ['U+200D zero-width joiner', '😀\u200d-x'],
    ['U+FE0F variation selector-16', 'ab\ufe0f'],
    ['U+FE00 variation selector-1', 'ab\ufe00c'],
    ['U+FE0F variation selector-16', 'n-1\ufe0f'],
    // Beside text that has no use for it: a letter with an accent, a CJK ideograph, Cyrillic,
    // an Arabic letter that is no emoji, a Latin letter before a Mongolian selector.
    ['U+FE0F variation selector-16', 'caf\u00e9\ufe0f'],
    ['U+200D zero-width joiner', '口\u200d座'],
    ['U+FE0F variation selector-16', '口\ufe0f座'],
    ['U+200C zero-width non-joiner', 'сч\u200cет'],
    ['U+FE0F variation selector-16', 'حساب\ufe0f'],
    ['U+180B', 'a\u180bb'],
    // Doubled, or after a skin tone, where one already did the work.
    ['U+FE0F variation selector-16', '\u2764\ufe0f\ufe0f'],
    ['U+200D zero-width joiner', '👩\u200d\u200d💻'],
    ['U+FE0F variation selector-16', '👍🏽\ufe0f'],
    // A braille blank, which shows as a blank.
    ['U+2800 braille pattern blank', 'put-\u2800'],
  ])('refuses %s, naming it', (name, id) => {
    expect(invisibleCharacterProblem(id)).toBe(
      `has an invisible character in it (${name}), which makes it look like an id without it`,
    );
    expect(newIdProblem(id)).toBe(invisibleCharacterProblem(id));
  });

  it('takes what real text needs: variation selectors, emoji tag sequences (flags), Mongolian variation selectors', () => {
    for (const id of [
      '❤\ufe0f-team',
      '☺\ufe0e',
      '#\ufe0f\u20e3-1',
      // The flags of Scotland and Wales, as emoji tag sequences.
      '🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}',
      'team-🏴\u{e0067}\u{e0062}\u{e0077}\u{e006c}\u{e0073}\u{e007f}-1',
      '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
      // A CJK ideograph's variant (an ideographic variation sequence), a Mongolian free variation selector.
      '葛\u{e0100}城',
      'ᠠ\u180bᠢ',
      // Emoji sequences people type: a rainbow flag, a heart on fire, an eye in a bubble, text
      // and emoji presentation, keycaps, a Hindi conjunct written with a joiner.
      '🏳\ufe0f\u200d🌈',
      '❤\ufe0f\u200d🔥-ops',
      '👁\u200d🗨',
      '✈\ufe0e-travel',
      '©\ufe0f-™\ufe0f',
      '0\ufe0f\u20e3-*\ufe0f\u20e3',
      'क्\u200dष-9\ufe0f\u20e3',
      // Joiners inside: a family, a person at work, Persian with a non-joiner.
      '👨\u200d👩\u200d👧-team',
      'ops-👩🏽\u200d💻',
      'می\u200cخواهم',
    ]) {
      expect(invisibleCharacterProblem(id)).toBeNull();
      expect(newIdProblem(id)).toBeNull();
    }
  });

  it('refuses an id made of the invisible characters it keeps only', () => {
    expect(invisibleCharacterProblem('\u200d')).toBe(
      'is made of invisible characters only (U+200D zero-width joiner), which look like no id at all',
    );
    expect(newIdProblem(' \ufe0f\u200c ')).toBe(
      'is made of invisible characters only (U+FE0F variation selector-16, U+200C zero-width non-joiner), which look like no id at all',
    );
  });
});

describe('reasonHint (a reason selector that matched nothing)', () => {
  it('names the reason as a pause saves it, when that differs', () => {
    expect(reasonHint(' maint ')).toEqual({
      reason: 'maint',
      message: 'no notification is paused for " maint " exactly; a pause saves its reason without the blanks around it',
    });
    expect(reasonHint('maint')).toBeNull();
    expect(reasonHint('   ')).toBeNull();
  });

  it('says when the reason a pause saves is in NFC and the selector was not', () => {
    expect(reasonHint('cafe\u0301')).toEqual({
      reason: 'caf\u00e9',
      message: `no notification is paused for "cafe\u0301" exactly; a pause saves its reason in Unicode's composed form (NFC): "cafe\\u0301" is saved as "caf\\u00E9"`,
    });
    expect(reasonHint(' cafe\u0301')?.message).toMatch(
      /without the blanks around it and in Unicode's composed form \(NFC\): "cafe\\u0301" is saved as "caf\\u00E9"$/,
    );
    expect(reasonHint('caf\u00e9')).toBeNull();
    // A character past U+FFFF is written with braces, as quoted() writes it.
    expect(reasonHint('\u{1F600} cafe\u0301')?.message).toMatch(
      /: "\\u\{1F600\} cafe\\u0301" is saved as "\\u\{1F600\} caf\\u00E9"$/,
    );
  });
});

describe('storedText (a stored value, whatever was written by hand, as text)', () => {
  it('gives strings, numbers and booleans as they are, nothing as blank, and maps and lists as JSON, never throwing', () => {
    expect(storedText('0 9 * * *')).toBe('0 9 * * *');
    expect(storedText(42)).toBe('42');
    expect(storedText(false)).toBe('false');
    expect(storedText(null)).toBe('');
    expect(storedText(undefined)).toBe('');
    expect(storedText(['a', 1])).toBe('["a",1]');
    // String() throws on these: their toString and valueOf are not functions.
    expect(() => String({ toString: 'x' })).toThrow(TypeError);
    expect(storedText({ toString: 'x' })).toBe('{"toString":"x"}');
    expect(storedText(Object.create(null))).toBe('{}');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(storedText(cycle)).toBe('[object Object]');
  });
});

describe('runFromData (a run document as the dispatcher decides on it)', () => {
  it('reads what was written by hand the way that lets the run go on: no owner, no cursor, counts of 0', () => {
    const started = new Date('2026-12-07T14:00:00Z');
    const run = runFromData({
      scheduleId: 's_1',
      occurrence: '2026-12-07T14:00:00.000Z',
      status: { toString: 'x' },
      leaseOwner: { toString: 'x' },
      leaseExpiresAt: 'soon',
      cursor: { toString: 'x' },
      published: { valueOf: 'x' },
      pages: 'many',
      resumes: -1,
      startedAt: started,
      finishedAt: new Date(Number.NaN),
      indexReadAt: 'then',
      skippedBefore: '2',
    });
    expect(run).toMatchObject({
      status: '{"toString":"x"}',
      leaseOwner: null,
      leaseExpiresAt: null,
      cursor: '{"toString":"x"}',
      published: 0,
      pages: 0,
      resumes: 0,
      startedAt: started,
      finishedAt: null,
      indexReadAt: null,
      skippedBefore: 2,
    });
    // Fields left out stay out; good ones are as they are.
    const good = runFromData({
      status: 'running',
      leaseOwner: 'd-1',
      cursor: 'm0003',
      published: 5,
      pages: 1,
      resumes: 0,
    });
    expect(good).toMatchObject({ status: 'running', leaseOwner: 'd-1', cursor: 'm0003', published: 5, pages: 1 });
    expect('indexReadAt' in good).toBe(false);
    expect(storedCount('7')).toBe(7);
    expect(storedCount(true)).toBe(0);
  });
});

describe('quoted (a text in a message)', () => {
  it('escapes what would turn, break or hide the line, and keeps what shows', () => {
    expect(quoted('n-1')).toBe('"n-1"');
    expect(quoted('a\u202eb\u2028c\u200bd\n')).toBe('"a\\u202Eb\\u2028c\\u200Bd\\n"');
    expect(quoted('x\u{e0061}\u2800')).toBe('"x\\u{E0061}\\u2800"');
    expect(quoted('👩🏽‍💻 é')).toBe('"👩🏽\\u200D💻 é"');
    // Cut short, it says so: not to be taken for the whole.
    expect(quoted('a'.repeat(150))).toBe(`"${'a'.repeat(100)}"…`);
    expect(quoted('a'.repeat(100))).toBe(`"${'a'.repeat(100)}"`);
    // The control characters JSON leaves as they are: DEL and the C1's.
    expect(quoted('a\u007fb\u0085c')).toBe('"a\\u007Fb\\u0085c"');
  });
});

describe('surroundingBlankProblem (an id that looks like the id without its blanks)', () => {
  it.each([' acct', 'acct ', ' acct ', '\u00a0acct', 'acct\u3000'])('refuses %j, naming the id without them', (id) => {
    const problem = 'has blanks around it, which make it look like the id without them ("acct"): write it without them';
    expect(surroundingBlankProblem(id)).toBe(problem);
    expect(newIdProblem(id)).toBe(problem);
  });

  it('takes blanks inside an id, and leaves a blank one to userIdProblem', () => {
    expect(surroundingBlankProblem('acct 1')).toBeNull();
    expect(newIdProblem('acct 1')).toBeNull();
    expect(surroundingBlankProblem('  ')).toBeNull();
    expect(newIdProblem('  ')).toBe('is blank');
  });
});

describe('looksBlank (text that shows nothing)', () => {
  it('is true for blanks and invisible characters only, joiners and variation selectors included', () => {
    for (const text of ['', '  ', '\u200b', '\u3164\u115f', '\u200d\ufe0f', ' \u00ad\u2060\t', '\u{e0067}\u{e007f}']) {
      expect(looksBlank(text)).toBe(true);
    }
    for (const text of ['x', ' Weekly ', '🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}', '\u200bx']) {
      expect(looksBlank(text)).toBe(false);
    }
  });
});

describe('checkedPauseReason (a new pause reason, for the CLI and the admin API)', () => {
  it('keeps a reason without the blanks around it', () => {
    expect(checkedPauseReason('  customer asked \n')).toEqual({ reason: 'customer asked' });
    expect(checkedPauseReason('channel archived by ops')).toEqual({ reason: 'channel archived by ops' });
    // 500 characters once trimmed: the blanks around are not counted.
    expect(checkedPauseReason(` ${'🙂'.repeat(500)} `)).toEqual({ reason: '🙂'.repeat(500) });
  });

  it('keeps a reason in NFC, so "café" selects it however its é was typed', () => {
    expect(checkedPauseReason('cafe\u0301 closed')).toEqual({ reason: 'caf\u00e9 closed' });
    expect(checkedPauseReason('\uac00')).toEqual({ reason: '\uac00' });
    expect(checkedPauseReason('\u1100\u1161')).toEqual({ reason: '\uac00' });
    // U+FB1D (Hebrew yod with hiriq) does not compose: NFC writes it as 2 code points.
    expect(checkedPauseReason('\ufb1d'.repeat(300))).toEqual({
      problem: "at most 500 characters, got 600 as kept, in Unicode's composed form (NFC; 300 as typed)",
    });
  });

  it.each(['', '   ', '\t\n', '\u200b', ' \u2060\u00ad ', '\u3164', '\ufeff'])('refuses %j as blank', (reason) => {
    expect(checkedPauseReason(reason)).toEqual({
      problem: 'must not be empty or blank (only white space or invisible characters)',
    });
  });

  it('refuses a reason too long, or with a control character inside it', () => {
    expect(checkedPauseReason('🙂'.repeat(501))).toEqual({ problem: 'at most 500 characters, got 501' });
    expect(checkedPauseReason('two\nlines')).toEqual({
      problem: expect.stringMatching(/^has a control character in it/),
    });
  });

  it('refuses a reason with an invisible character in it, which typing what it shows would not select', () => {
    expect(checkedPauseReason('maint\u200b')).toEqual({
      problem:
        'has an invisible character in it (U+200B zero-width space), which makes it look like a reason without it',
    });
    expect(checkedPauseReason('\u200dx')).toEqual({
      problem:
        'has an invisible character in it (U+200D zero-width joiner), which makes it look like a reason without it',
    });
    // What emoji need is kept.
    expect(checkedPauseReason('paused 👩\u200d💻 ❤\ufe0f')).toEqual({ reason: 'paused 👩\u200d💻 ❤\ufe0f' });
  });
});

describe('composedFormProblem (an id that looks like another)', () => {
  it('refuses an accent written as a combining mark, naming the id as it looks', () => {
    const id = 'cafe\u0301-😀';
    expect(composedFormProblem(id)).toBe(
      `is not in Unicode's normalization form C (NFC), so it may look like another id: U+0065 U+0301 is U+00E9 in NFC, which writes the id "café-😀"; write it that way`,
    );
    expect(newIdProblem(id)).toBe(composedFormProblem(id));
  });

  it('names a single character NFC replaces, as the Ångström sign', () => {
    expect(composedFormProblem('\u212b-1')).toMatch(/: U\+212B is U\+00C5 in NFC, which writes the id "Å-1"/);
  });

  it('takes the composed form, and what has no composed form (Hangul jamo already composed, emoji sequences)', () => {
    for (const id of ['café-😀', '한국어', '👩\u200d💻-team', 'n-1']) {
      expect(composedFormProblem(id)).toBeNull();
      expect(newIdProblem(id)).toBeNull();
    }
  });
});

describe('notificationSchema', () => {
  const stored = {
    accountId: 'acct-1',
    slack: { channelId: 'C1' },
    schedule: { cron: ' 0 9 * * * ', timezone: ' Europe/London ' },
    scheduleId: 's_x',
    enabled: true,
  };

  it('reads a schedule written by hand with blanks around its cron and zone as it would have been saved', () => {
    const parsed = notificationSchema.safeParse(stored);
    expect(parsed.success && parsed.data.schedule).toEqual({ cron: '0 9 * * *', timezone: 'Europe/London' });
  });

  it('reads a title saved before titles were counted in UTF-16 units (150 emoji), to be shown cut', () => {
    const title = '😀'.repeat(150);
    const parsed = notificationSchema.safeParse({ ...stored, report: { kind: 'account-summary', title } });
    expect(parsed.success && parsed.data.report.title).toBe(title);
  });

  it('reads an accountId saved before blanks around it and wider invisible characters were refused, as it is', () => {
    for (const accountId of [' acct-1 ', 'acct\u31641']) {
      const parsed = notificationSchema.safeParse({ ...stored, accountId });
      expect(parsed.success && parsed.data.accountId).toBe(accountId);
    }
  });

  it('refuses a zone of blanks alone, naming the field', () => {
    const parsed = notificationSchema.safeParse({ ...stored, schedule: { cron: '0 9 * * *', timezone: '   ' } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['schedule', 'timezone']);
  });
});

describe('deliveryFromData (a delivery record as the ledger decides on it)', () => {
  const at = new Date('2031-01-01T00:00:00Z');

  it('reads a claim, a first attempt, a count or a flag written as another type the way that cannot post twice', () => {
    const read = deliveryFromData({
      status: 'retrying',
      occurrence: '2031-01-01T00:00:00.000Z',
      claimExpiresAt: 'tomorrow',
      firstAttemptAt: new Date(Number.NaN),
      sentAt: 42,
      attempts: 'many',
      outcomeUnknown: 'no',
      lastRedriveAt: at,
    });
    // No claim; the look starts at the occurrence, the earliest a post can be; unknown, so looked for.
    expect(read).toEqual({
      status: 'retrying',
      occurrence: '2031-01-01T00:00:00.000Z',
      firstAttemptAt: at,
      sentAt: 42,
      attempts: 0,
      outcomeUnknown: true,
      lastRedriveAt: at,
    });
    expect(deliveryFromData({ firstAttemptAt: 'x', occurrence: 'y' })).toEqual({ occurrence: 'y' });
    expect(deliveryFromData({ outcomeUnknown: null })).toEqual({ outcomeUnknown: false });
  });

  it('keeps a record the ledger wrote as it is', () => {
    const record = { status: 'sending', claimExpiresAt: at, firstAttemptAt: at, attempts: 3, outcomeUnknown: true };
    expect(deliveryFromData(record)).toEqual(record);
    expect(deliveryFromData({ status: 'sent', claimExpiresAt: null })).toEqual({
      status: 'sent',
      claimExpiresAt: null,
    });
  });
});

describe('permanentFailureUpdate (counting a failure towards pausing)', () => {
  const now = new Date('2031-01-01T00:00:00Z');

  it.each([
    [2, 3, true],
    ['2', 3, true],
    ['many', 1, false],
    [-5, 1, false],
    [1.5, 1, false],
    [null, 1, false],
    // A map whose toString holds no function: Number() throws on it.
    [{ toString: 'x' }, 1, false],
    [[2], 1, false],
  ])('a count stored as %j goes to %d (paused at 3: %s)', (stored, count, pause) => {
    const counted = permanentFailureUpdate({ consecutiveFailures: stored, enabled: true }, 'r', 3, now);
    expect(counted?.update.consecutiveFailures).toBe(count);
    expect(counted?.pause).toBe(pause);
  });
});
