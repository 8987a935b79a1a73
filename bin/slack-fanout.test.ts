import { execFileSync, spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { connectProblem } from '../shared/net';
import {
  buildProgram,
  checkEmulatorVariables,
  checkedAfterSave,
  credentialsProblem,
  EXIT,
  emulatorHostPort,
  failureOf,
  firstNonUtf8,
  lineAndColumn,
  MAX_IMPORT_BYTES,
  MAX_LISTED_PER_ENTRY,
  MAX_LISTED_PROBLEMS,
  notificationNotFound,
  PROGRESS_EVERY_MS,
  parseAccountsFile,
  parseNotificationsFile,
  progressOf,
  readerGone,
  readText,
  SILENCE_WARNING_MS,
  STALL_TIMEOUT_SECONDS,
  silenceWarning,
  sourceName,
  stallWatch,
  unknownCommandOf,
  versionTakenAsValue,
  whereService,
  withoutHelpOfHelp,
  zoneCautions,
} from './slack-fanout';

const good = { id: 'n-1', accountId: 'a-1', channelId: 'C1', cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' };

describe('lineAndColumn', () => {
  it('says where JSON.parse’s position is, by line and column', () => {
    const text = '[\n  {"id": "n-1",\n   "cron" "x"}\n]';
    let err: unknown;
    try {
      JSON.parse(text);
    } catch (e) {
      err = e;
    }
    const position = Number(/at position (\d+)/.exec(String((err as Error).message))?.[1]);
    expect(text[position]).toBe('"');
    expect(lineAndColumn(text, err)).toBe(' (line 3, column 11)');
    expect(lineAndColumn(text, new Error('bad at position 5 (line 1 column 6)'))).toBe('');
  });

  it.each([
    // JSON.parse: `Unexpected token 'u', "[\n  {"a": tru}]" is not valid JSON`, no position.
    ['a misspelt literal', '[\n  {"a": tru}]', ' (line 2, column 9)'],
    ['a trailing comma', '[\n  {"a": 1},\n]', ' (line 3, column 1)'],
    ['a comment', '// all of them\n[1]', ' (line 1, column 1)'],
    ['a text that ends too soon', '[\n  {"a": 1},\n', ' (line 3, column 1)'],
  ])('where JSON.parse names no position, finds the first fault itself: %s', (_what, text, where) => {
    let err: unknown;
    try {
      JSON.parse(text);
    } catch (e) {
      err = e;
    }
    expect(String((err as Error).message)).not.toMatch(/position/);
    expect(lineAndColumn(text, err)).toBe(where);
  });

  it('says nothing for a text it finds no fault in', () => {
    expect(lineAndColumn('[1]', new Error('Unexpected end of JSON input'))).toBe('');
  });
});

describe('parseNotificationsFile', () => {
  it('reads a valid array', () => {
    expect(parseNotificationsFile(JSON.stringify([good]), 'f.json')).toEqual([good]);
  });

  it.each([
    ['not JSON', '{', /f\.json is not JSON/],
    ['not an array', '{}', /must hold a JSON array/],
    [
      'a missing field',
      JSON.stringify([good, { ...good, channelId: undefined }]),
      /f\.json\[1\]: notification n-1: channelId/,
    ],
    ['an unknown field', JSON.stringify([{ ...good, chanel: 'C2' }]), /f\.json\[0\]/],
    ['a bad cron', JSON.stringify([{ ...good, cron: '61 * * * *' }]), /f\.json\[0\]: notification n-1: invalid cron/],
    ['a duplicate id', JSON.stringify([good, good]), /f\.json\[1\]: duplicate id n-1 \(also f\.json\[0\]\)/],
    [
      'a bad time zone',
      JSON.stringify([{ ...good, timezone: 'Mars/Base' }]),
      /f\.json\[0\].*unknown time zone "Mars\/Base"/,
    ],
    [
      'a reserved id',
      JSON.stringify([good, { ...good, id: '__bad__' }]),
      /f\.json\[1\]: notification id "__bad__".*reserved/,
    ],
    ['an id with a slash', JSON.stringify([{ ...good, id: 'a/b' }]), /f\.json\[0\]: notification id "a\/b".*'\/'/],
    [
      'an account id with a slash',
      JSON.stringify([{ ...good, accountId: 'acc/evil' }]),
      /f\.json\[0\].*accountId.*'\/'/,
    ],
    ['a blank account id', JSON.stringify([{ ...good, accountId: '   ' }]), /f\.json\[0\].*accountId: is blank/],
    [
      'an id whose delivery ids would be too long',
      JSON.stringify([{ ...good, id: '界'.repeat(500) }]),
      /f\.json\[0\]: notification id .*longer than 999 bytes \(its delivery ids, the id and a time, must fit a Pub\/Sub attribute of 1,024 bytes\)/,
    ],
    [
      'an id of 500 two-byte characters, 1,000 bytes (its delivery id would not fit a Pub/Sub attribute)',
      JSON.stringify([{ ...good, id: 'é'.repeat(500) }]),
      /f\.json\[0\]: notification id .*longer than 999 bytes/,
    ],
    [
      'an id with a lone surrogate (written as a JSON escape)',
      `[${JSON.stringify({ ...good, id: 'PLACEHOLDER' }).replace('PLACEHOLDER', 'lone\\ud800x')}]`,
      /^f\.json\[0\]\.id: is not well-formed Unicode \(a lone surrogate\); nothing was written$/,
    ],
    [
      'an account id with a lone surrogate',
      `[${JSON.stringify({ ...good, accountId: 'PLACEHOLDER' }).replace('PLACEHOLDER', '\\udc00')}]`,
      /f\.json\[0\].*accountId: .*not well-formed Unicode/,
    ],
    [
      'an id with a line break in it',
      JSON.stringify([{ ...good, id: 'n\n1' }]),
      /^f\.json\[0\]: notification id "n\\n1": has a control character in it \(a line break or line separator, a tab, a mark that turns or sets the text’s direction\); nothing was written$/,
    ],
    [
      'an account id that turns the text’s direction',
      JSON.stringify([{ ...good, accountId: 'acct\u202e1' }]),
      /^f\.json\[0\]: notification n-1: accountId: has a control character in it/,
    ],
    [
      'an account id with a zero-width space in it',
      JSON.stringify([{ ...good, accountId: 'acct\u200b1' }]),
      /^f\.json\[0\]: notification n-1: accountId: has an invisible character in it \(U\+200B zero-width space\)/,
    ],
    [
      'an account id with blanks around it',
      JSON.stringify([{ ...good, accountId: ' acct-1 ' }]),
      /^f\.json\[0\]: notification n-1: accountId: has blanks around it, which make it look like the id without them \("acct-1"\): write it without them; nothing was written$/,
    ],
    [
      'an account id with a Hangul filler in it',
      JSON.stringify([{ ...good, accountId: 'acct\u3164' }]),
      /^f\.json\[0\]: notification n-1: accountId: has an invisible character in it \(U\+3164 Hangul filler\)/,
    ],
    [
      'an account id not in NFC',
      JSON.stringify([{ ...good, accountId: 'cafe\u0301' }]),
      /^f\.json\[0\]: notification n-1: accountId: is not in Unicode's normalization form C \(NFC\).*U\+0065 U\+0301 is U\+00E9/,
    ],
    [
      'a huge channel id',
      JSON.stringify([{ ...good, channelId: 'C'.repeat(300) }]),
      /f\.json\[0\]: notification n-1: channelId: is longer than 255 characters \(300\); nothing was written$/,
    ],
    ['a file of blanks alone', ' \n\t ', /^f\.json is empty but for blanks: expected a JSON array$/],
    ['a file of a byte order mark alone (read, it is dropped)', '', /^f\.json is empty: expected a JSON array$/],
  ])('names %s', (_what, text, message) => {
    expect(() => parseNotificationsFile(text, 'f.json')).toThrow(message);
  });
});

describe('an id with an invisible character in it', () => {
  it('is refused in an import file, named, for notifications and accounts alike', () => {
    expect(() => parseNotificationsFile(JSON.stringify([{ ...good, id: 'n-\u200b1' }]), 'f.json')).toThrow(
      /^f\.json\[0\]: notification id "n-\\u200B1": has an invisible character in it \(U\+200B zero-width space\)/,
    );
    expect(() => parseAccountsFile('[{"id":"a\\u20601","name":"Acme"}]', 'a.json')).toThrow(
      /^a\.json\[0\].*U\+2060 word joiner/,
    );
  });
});

describe('a title', () => {
  const titled = (title: string) => `[${JSON.stringify({ ...good, title })}]`;

  it('is taken up to 150 UTF-16 code units, 2 for an emoji beyond U+FFFF, as the report measures it', () => {
    expect(parseNotificationsFile(titled('😀'.repeat(75)), 'f.json')[0]?.title).toBe('😀'.repeat(75));
    expect(parseNotificationsFile(titled('x'.repeat(150)), 'f.json')[0]?.title).toBe('x'.repeat(150));
  });

  it('is refused past them, with its length said, not taken and shown cut', () => {
    expect(() => parseNotificationsFile(titled('😀'.repeat(76)), 'f.json')).toThrow(
      `f.json[0]: notification ${good.id}: title: is 152 UTF-16 code units long (a character beyond U+FFFF, as most emoji are, counts 2); a title holds at most 150, Slack's header limit`,
    );
    expect(() => parseNotificationsFile(titled('x'.repeat(151)), 'f.json')).toThrow(
      /title: is 151 UTF-16 code units long/,
    );
  });
});

describe('firstNonUtf8', () => {
  it.each([
    ['a byte that starts no character', Buffer.from('[{"id":"x\xff"}]', 'latin1'), 9, 'FF', 1, 10],
    // A U+FFFD written in the file is UTF-8; the bad byte after it is found, on its line.
    [
      'after a written U+FFFD and a line break',
      Buffer.concat([Buffer.from('["\uFFFD",\n"a'), Buffer.from([0xc3, 0x28]), Buffer.from('"]')]),
      10,
      'C3',
      2,
      3,
    ],
    ['a character cut short at the end', Buffer.from([0x5b, 0x22, 0xe2, 0x82]), 2, 'E2', 1, 3],
    // The decoder drops a byte-order mark from its text; the offset still counts its 3 bytes.
    [
      'after a byte-order mark',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[{"id":"x\xff"}]', 'latin1')]),
      12,
      'FF',
      1,
      10,
    ],
  ])('%s', (_what, bytes, offset, hex, line, column) => {
    expect(firstNonUtf8(bytes)).toBe(
      `the byte at offset ${offset} (0x${hex}), line ${line}, column ${column}, is not UTF-8`,
    );
  });
});

describe('an import file with several bad entries', () => {
  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('no error');
  };

  it('names every one of them, whatever is wrong with each, so the file is mended in one pass', () => {
    const entries = [
      good,
      { ...good, id: 'n-2', cron: '61 * * * *' },
      { ...good, id: 'n-3', timezone: 'Mars/Base' },
      { ...good, id: 'n-3' },
      { ...good, id: 'n-\u200b4' },
      { ...good, id: 'n-5', channelId: 1 },
    ];
    const lines = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json')).split('\n');
    expect(lines[0]).toBe('f.json: 5 bad entries; nothing was written:');
    expect(lines.slice(1).map((l) => l.match(/^ {2}(f\.json\[\d\])/)?.[1])).toEqual([
      'f.json[1]',
      'f.json[2]',
      'f.json[3]',
      'f.json[4]',
      'f.json[5]',
    ]);
    expect(lines[1]).toMatch(/notification n-2: invalid cron/);
    expect(lines[3]).toBe('  f.json[3]: duplicate id n-3 (also f.json[2])');
    expect(lines[4]).toMatch(/U\+200B zero-width space/);
    expect(lines[5]).toMatch(/^ {2}f\.json\[5\]: notification n-5: channelId: /);
  });

  it("names an entry's every problem in one run: a field of the wrong type or a key it should not have does not hide a blank one", () => {
    const entries = [
      { ...good, id: 'e1', channelId: '', enabled: 1 },
      { ...good, id: 'e2', zzz: 1, timezone: 'Mars/Base' },
      { ...good, id: 'e3', cron: 5, timezone: 'Mars/Base', title: ' ' },
    ];
    const lines = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json')).split('\n');
    expect(lines[0]).toBe('f.json: 3 bad entries (7 problems); nothing was written:');
    const of = (i: number) => lines.filter((l) => l.startsWith(`  f.json[${i}]: `));
    expect(of(0)).toEqual([
      expect.stringMatching(/notification e1: enabled: /),
      expect.stringMatching(/notification e1: channelId: is blank/),
    ]);
    expect(of(1)).toEqual([
      expect.stringMatching(/"zzz"/),
      expect.stringMatching(/notification e2: unknown time zone "Mars\/Base"/),
    ]);
    expect(of(2)).toEqual([
      expect.stringMatching(/notification e3: cron: /),
      expect.stringMatching(/notification e3: unknown time zone "Mars\/Base"/),
      expect.stringMatching(/notification e3: title: /),
    ]);
  });

  it("names an entry's every problem in one run when a field is missing: a missing channel does not hide a bad time zone", () => {
    const { channelId: _channel, ...noChannel } = good;
    const { cron: _cron, ...noCron } = good;
    const entries = [
      { ...noChannel, id: 'm1', timezone: 'Mars/Base' },
      { ...noCron, id: 'm2', channelId: 'C 1', title: ' ' },
    ];
    const lines = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json')).split('\n');
    expect(lines[0]).toBe('f.json: 2 bad entries (5 problems); nothing was written:');
    const of = (i: number) => lines.filter((l) => l.startsWith(`  f.json[${i}]: `));
    expect(of(0)).toEqual([
      expect.stringMatching(/notification m1: channelId: /),
      expect.stringMatching(/notification m1: unknown time zone "Mars\/Base"/),
    ]);
    expect(of(1)).toEqual([
      expect.stringMatching(/notification m2: cron: /),
      expect.stringMatching(/notification m2: channelId: /),
      expect.stringMatching(/notification m2: title: /),
    ]);
  });

  it('lists at most MAX_LISTED_PROBLEMS of them and counts the rest', () => {
    const bad = (n: number) =>
      JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: `a-${i}`, name: i === 0 ? 'Good' : '' })));
    const lines = message(() => parseAccountsFile(bad(26), 'a.json')).split('\n');
    expect(lines[0]).toBe('a.json: 25 bad entries; nothing was written:');
    expect(lines).toHaveLength(1 + MAX_LISTED_PROBLEMS + 1);
    expect(lines[1]).toMatch(/^ {2}a\.json\[1\]: account a-1: name: /);
    expect(lines[MAX_LISTED_PROBLEMS]).toMatch(/^ {2}a\.json\[20\]: /);
    expect(lines.at(-1)).toBe('  … and 5 more bad entries not listed');
    expect(
      message(() => parseAccountsFile(bad(22), 'a.json'))
        .split('\n')
        .at(-1),
    ).toBe('  … and 1 more bad entry not listed');
  });

  it('names every problem of an entry, each on its line, not its first alone', () => {
    const entries = [
      good,
      // What the schema takes, wrong in what its fields hold.
      { ...good, id: 'n-2', cron: '61 * * * *', timezone: 'Mars/Base', channelId: 'C 1', title: ' ' },
      // Fields of the wrong type, and one the schema does not know.
      { ...good, id: 'n-3', channelId: 1, enabled: 'yes', chanel: 'C1' },
    ];
    const lines = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json')).split('\n');
    expect(lines[0]).toBe('f.json: 2 bad entries (7 problems); nothing was written:');
    const named = lines.slice(1).map((l) => l.match(/^ {2}(f\.json\[\d\]): notification (n-\d): ([^:]+)/)?.slice(1));
    expect(named.slice(0, 4)).toEqual([
      ['f.json[1]', 'n-2', 'unknown time zone "Mars/Base"'],
      ['f.json[1]', 'n-2', 'invalid cron "61 * * * *"'],
      ['f.json[1]', 'n-2', 'channelId'],
      ['f.json[1]', 'n-2', 'title'],
    ]);
    expect(new Set(named.slice(4).map((n) => n?.[2]))).toEqual(
      new Set(['channelId', 'enabled', 'unknown field "chanel"']),
    );
    // Past the cap, the rest are counted as problems, not as entries.
    const many = Array.from({ length: 12 }, (_, i) => ({ id: `a-${i}`, name: '', highlights: [''] }));
    const capped = message(() => parseAccountsFile(JSON.stringify(many), 'a.json')).split('\n');
    expect(capped[0]).toBe('a.json: 12 bad entries (24 problems); nothing was written:');
    expect(capped).toHaveLength(1 + MAX_LISTED_PROBLEMS + 1);
    expect(capped.at(-1)).toBe('  … and 4 more problems not listed');
  });

  it('lists at most MAX_LISTED_PER_ENTRY problems of one entry, so that the entries after it are seen', () => {
    const metrics = Array.from({ length: 8 }, () => ({ label: '', value: true }));
    const entries = [
      { id: 'a-0', name: 'Zero', metrics },
      { id: 'a-1', name: '' },
    ];
    const lines = message(() => parseAccountsFile(JSON.stringify(entries), 'a.json')).split('\n');
    expect(lines[0]).toBe('a.json: 2 bad entries (17 problems); nothing was written:');
    expect(
      lines.slice(1, 1 + MAX_LISTED_PER_ENTRY).every((l) => l.startsWith('  a.json[0]: account a-0: metrics.')),
    ).toBe(true);
    expect(lines[1 + MAX_LISTED_PER_ENTRY]).toBe(
      `  a.json[0]: … and ${16 - MAX_LISTED_PER_ENTRY} more problems of this entry`,
    );
    expect(lines[2 + MAX_LISTED_PER_ENTRY]).toMatch(/^ {2}a\.json\[1\]: account a-1: name: /);
    expect(lines).toHaveLength(3 + MAX_LISTED_PER_ENTRY);
  });

  it('writes a line break or a direction mark in an id or a key as its escape: a line is a problem', () => {
    const entries = [
      { ...good, id: 'a\nb', cron: '61 9 * * *', timezone: 'Mars/X' },
      { ...good, id: 'r\u202eab', channelId: 'C 1' },
      { ...good, id: 'n-3', 'x\ny': 1 },
    ];
    const text = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json'));
    const lines = text.split('\n');
    const head = lines[0]?.match(/^f\.json: 3 bad entries \((\d+) problems\)/);
    expect(head).not.toBeNull();
    expect(lines).toHaveLength(1 + Number(head?.[1]));
    expect(text).not.toMatch(/[\u202e]/);
    expect(lines[1]).toMatch(/^ {2}f\.json\[0\]: notification "a\\nb": unknown time zone/);
    expect(lines.some((l) => l.includes('notification "r\\u202Eab": channelId: '))).toBe(true);
    expect(lines.some((l) => l.includes('x\\ny'))).toBe(true);
  });

  it('names a second entry of an id by its other problems too, and an account by its id and its size', () => {
    const dup = message(() =>
      parseNotificationsFile(JSON.stringify([good, { ...good, timezone: 'Mars/X' }]), 'f.json'),
    ).split('\n');
    expect(dup).toEqual([
      'f.json: 1 bad entry (2 problems); nothing was written:',
      '  f.json[1]: duplicate id n-1 (also f.json[0])',
      expect.stringMatching(/^ {2}f\.json\[1\]: notification n-1: unknown time zone "Mars\/X"/),
    ]);
    const big = { id: 'a\u200b1', name: 'Big', highlights: ['x'.repeat(1_100_000)] };
    const account = message(() => parseAccountsFile(JSON.stringify([big]), 'a.json')).split('\n');
    expect(account[0]).toBe('a.json: 1 bad entry (2 problems); nothing was written:');
    expect(account[1]).toMatch(/^ {2}a\.json\[0\]: account id "a\\u200B1": /);
    expect(account[2]).toMatch(/^ {2}a\.json\[0\]: account "a\\u200B1" is \d+ bytes as Firestore counts a document/);
  });

  it('names a duplicate id beside the schema errors of either entry, and a key it does not take as such', () => {
    const entries = [{ ...good, channelId: 1 }, good, { ...good, id: 'n-2', colour: 'red' }];
    const lines = message(() => parseNotificationsFile(JSON.stringify(entries), 'f.json')).split('\n');
    expect(lines).toEqual([
      'f.json: 3 bad entries; nothing was written:',
      expect.stringMatching(/^ {2}f\.json\[0\]: notification n-1: channelId: /),
      '  f.json[1]: duplicate id n-1 (also f.json[0])',
      '  f.json[2]: notification n-2: unknown field "colour"',
    ]);
    const accounts = message(() =>
      parseAccountsFile(
        JSON.stringify([
          { id: 'a-1', name: '' },
          { id: 'a-1', name: 'A', x: 1, y: 2 },
        ]),
        'a.json',
      ),
    ).split('\n');
    expect(accounts).toEqual([
      'a.json: 2 bad entries (3 problems); nothing was written:',
      expect.stringMatching(/^ {2}a\.json\[0\]: account a-1: name: /),
      '  a.json[1]: duplicate id a-1 (also a.json[0])',
      '  a.json[1]: account a-1: unknown fields "x", "y"',
    ]);
  });

  it('names a key an entry gives twice, as JSON.parse would keep the last of them without a word', () => {
    const text = `[${JSON.stringify(good)},{"id":"n-2","accountId":"a-1","accountId":"a-2","channelId":"C1","cron":"0 9 * * *","timezone":"UTC"}]`;
    expect(message(() => parseNotificationsFile(text, 'f.json'))).toBe(
      'f.json[1]: notification n-2: accountId: is given twice in the entry, and JSON keeps the last: give it once; nothing was written',
    );
    // Beside the entry's other problems, and in an account's nested objects.
    const accounts = `[{"id":"a-1","name":"A","name":"B","metrics":[{"label":"x","value":1,"value":2}]},{"id":"a-2","name":""}]`;
    expect(message(() => parseAccountsFile(accounts, 'a.json')).split('\n')).toEqual([
      'a.json: 2 bad entries (3 problems); nothing was written:',
      '  a.json[0]: account a-1: name: is given twice in the entry, and JSON keeps the last: give it once',
      '  a.json[0]: account a-1: metrics[0].value: is given twice in the entry, and JSON keeps the last: give it once',
      expect.stringMatching(/^ {2}a\.json\[1\]: account a-2: name: /),
    ]);
  });

  it('keeps one bad entry to one line, saying nothing was written', () => {
    expect(message(() => parseNotificationsFile(JSON.stringify([good, { ...good }]), 'f.json'))).toBe(
      'f.json[1]: duplicate id n-1 (also f.json[0]); nothing was written',
    );
  });

  it("names a lone surrogate beside the entry's other problems, a duplicate id and an unknown field among them", () => {
    const dup = `[${JSON.stringify(good)},{"id":"n-1","accountId":"","channelId":"C1","cron":"0 9 *","timezone":"Nowhere","title":"\\ud800"}]`;
    expect(message(() => parseNotificationsFile(dup, 'f.json')).split('\n')).toEqual([
      'f.json: 1 bad entry (5 problems); nothing was written:',
      '  f.json[1].title: is not well-formed Unicode (a lone surrogate)',
      '  f.json[1]: duplicate id n-1 (also f.json[0])',
      '  f.json[1]: notification n-1: accountId: is empty',
      '  f.json[1]: notification n-1: unknown time zone "Nowhere": give an IANA name, a region and a city, such as Europe/Paris or America/New_York (or UTC)',
      expect.stringMatching(/^ {2}f\.json\[1\]: notification n-1: cron "0 9 \*" must have 5 fields/),
    ]);
    const account = '[{"id":"a-1","name":"\\ud800","metrics":[{"label":"x","value":1,"chnage":2}]}]';
    expect(message(() => parseAccountsFile(account, 'a.json')).split('\n')).toEqual([
      'a.json: 1 bad entry (2 problems); nothing was written:',
      '  a.json[0].name: is not well-formed Unicode (a lone surrogate)',
      expect.stringMatching(/^ {2}a\.json\[0\]: account a-1: metrics\.0: .*chnage/),
    ]);
  });

  it('names a lone surrogate beside the schema errors of other entries', () => {
    const text = `[{"id":"a-1","name":"\\ud800"},{"id":"a-2"}]`;
    expect(message(() => parseAccountsFile(text, 'a.json')).split('\n')).toEqual([
      'a.json: 2 bad entries; nothing was written:',
      '  a.json[0].name: is not well-formed Unicode (a lone surrogate)',
      expect.stringMatching(/^ {2}a\.json\[1\]: account a-2: name: /),
    ]);
  });
});

describe('text Firestore cannot hold', () => {
  it('is named in an import file, entry and field, before anything is written', () => {
    const notifications = `[${JSON.stringify(good)}, ${JSON.stringify({ ...good, id: 'n-2' }).replace('}', ',"title":"\\ud800"}')}]`;
    expect(() => parseNotificationsFile(notifications, 'f.json')).toThrow(
      'f.json[1].title: is not well-formed Unicode (a lone surrogate)',
    );
    const accounts = '[{"id":"a-1","name":"Acme","metrics":[{"label":"x\\udc00","value":1}]}]';
    expect(() => parseAccountsFile(accounts, 'a.json')).toThrow(
      'a.json[0].metrics[0].label: is not well-formed Unicode (a lone surrogate)',
    );
  });
});

describe('a value nested deeper than the call stack', () => {
  // A few tens of kilobytes of brackets: well-formed JSON that a recursive walk cannot finish.
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

  it('is named in an import file as the field that is not what it should be, not a crash', () => {
    const notifications = `[${JSON.stringify(good).replace('}', `,"title":${deep(20_000)}}`)}]`;
    expect(() => parseNotificationsFile(notifications, 'f.json')).toThrow(/^f\.json\[0\].*title: /);
    const accounts = `[{"id":"a-1","name":"Acme","highlights":${deep(20_000)}}]`;
    expect(() => parseAccountsFile(accounts, 'a.json')).toThrow(/^a\.json\[0\].*highlights/);
  });

  it('still has its lone surrogate found, wherever it is', () => {
    const accounts = `[{"id":"a-1","name":"Acme","highlights":${'['.repeat(20_000)}"\\ud800"${']'.repeat(20_000)}}]`;
    expect(() => parseAccountsFile(accounts, 'a.json')).toThrow(
      /^a\.json\[0\]\.highlights(\[0\]){20000}: is not well-formed Unicode \(a lone surrogate\); nothing was written$/,
    );
  });
});

describe('parseAccountsFile', () => {
  const acct = { id: 'acct-1', name: 'Acme', metrics: [{ label: 'Signups', value: 12, change: 0.1 }] };

  it('reads a valid array, filling what a report needs by default', () => {
    expect(parseAccountsFile(JSON.stringify([acct, { id: 'acct-2', name: 'Beta' }]), 'a.json')).toEqual([
      { id: 'acct-1', account: { name: 'Acme', metrics: acct.metrics, highlights: [] } },
      { id: 'acct-2', account: { name: 'Beta', metrics: [], highlights: [] } },
    ]);
  });

  it.each([
    ['not JSON', '[', /a\.json is not JSON/],
    // JSON.parse quotes the text around the fault: its line breaks are written \n, one line in all.
    [
      'CSV, not JSON',
      'id,name\nfoo,Foo\n',
      /^a\.json is not JSON: [^\n]*"id,name\\nfoo,Foo\\n" is not valid JSON \(line 1, column 1\); it reads as CSV, which is not taken: give a JSON array of accounts$/,
    ],
    [
      'JSON Lines, not a JSON array',
      '{"id":"a-1","name":"Acme"}\n{"id":"a-2","name":"Beta"}\n',
      /^a\.json is not JSON: [^\n]* \(line 2, column 1\); it reads as JSON Lines \(one object a line\), which is not taken: give a JSON array of accounts, the objects in \[ \] with a comma between each$/,
    ],
    [
      'CR-only lines, a NUL and an escape',
      'id\rfoo\u0000\u001b\r',
      /^a\.json is not JSON: [^\p{Cc}]*"id\\rfoo\\u0000\\u001B\\r" is not valid JSON \(line 1, column 1\)$/u,
    ],
    ['not an array', '{"id":"x"}', /a\.json must hold a JSON array of accounts/],
    ['a missing name', JSON.stringify([acct, { id: 'acct-2' }]), /a\.json\[1\]: account acct-2: name/],
    ['an unknown field', JSON.stringify([{ ...acct, nmae: 'x' }]), /a\.json\[0\]/],
    [
      'an id with a tab in it',
      JSON.stringify([{ ...acct, id: 'acct\t1' }]),
      /a\.json\[0\]: account id "acct\\t1": has a control character in it/,
    ],
    [
      'an unknown field of a metric',
      JSON.stringify([{ ...acct, metrics: [{ label: 'Signups', value: 1, chnage: 5 }] }]),
      /a\.json\[0\]: account acct-1: metrics\.0: .*chnage/,
    ],
    [
      'a metric without a value, saying what a value is',
      JSON.stringify([{ ...acct, metrics: [{ label: 'Signups' }] }]),
      /a\.json\[0\]: account acct-1: metrics\.0\.value: expected a number \(shown with thousands separators.*\) or a string \(shown as is.*\), got none; nothing was written$/,
    ],
    [
      'a metric with a null value',
      JSON.stringify([{ ...acct, metrics: [{ label: 'Signups', value: null }] }]),
      /metrics\.0\.value: expected a number .*, got null; nothing was written$/,
    ],
    [
      'a value too large for a number, as what it is',
      '[{"id":"acct-1","name":"Acme","metrics":[{"label":"Signups","value":1e400}]}]',
      /metrics\.0\.value: expected a number .*, got a number too large to represent \(read as Infinity\); nothing was written$/,
    ],
    [
      'a change too large for a number, below zero, as what it is',
      '[{"id":"acct-1","name":"Acme","metrics":[{"label":"Signups","value":1,"change":-1e400}]}]',
      /metrics\.0\.change: expected a number, the change in percent .*, got a number too large to represent \(read as -Infinity\); nothing was written$/,
    ],
    [
      'a change given as a string, saying it is a number in percent',
      JSON.stringify([{ ...acct, metrics: [{ label: 'Signups', value: 1, change: '5%' }] }]),
      /metrics\.0\.change: expected a number, the change in percent .*, got "5%"; nothing was written$/,
    ],
    [
      'a metric without a label',
      JSON.stringify([{ ...acct, metrics: [{ value: 1 }] }]),
      /a\.json\[0\]: account acct-1: metrics\.0\.label/,
    ],
    [
      'a bad dashboard URL',
      JSON.stringify([{ ...acct, dashboardUrl: 'not a url' }]),
      /a\.json\[0\]: account acct-1: dashboardUrl/,
    ],
    ['an id with a slash', JSON.stringify([{ ...acct, id: 'a/b' }]), /a\.json\[0\]: account id "a\/b".*'\/'/],
    ['a duplicate id', JSON.stringify([acct, acct]), /a\.json\[1\]: duplicate id acct-1 \(also a\.json\[0\]\)/],
    ['a blank id', JSON.stringify([{ ...acct, id: ' ' }]), /a\.json\[0\]: account id " ": is blank/],
    [
      'an id with blanks around it, which no accountId could name',
      JSON.stringify([{ ...acct, id: 'acct-1 ' }]),
      /^a\.json\[0\]: account id "acct-1 ": has blanks around it, which make it look like the id without them \("acct-1"\)/,
    ],
    [
      'a javascript: dashboard URL',
      JSON.stringify([{ ...acct, dashboardUrl: 'javascript:alert(1)' }]),
      /a\.json\[0\]: account acct-1: dashboardUrl: is not an http\(s\) URL/,
    ],
    [
      'an ftp: dashboard URL',
      JSON.stringify([{ ...acct, dashboardUrl: 'ftp://example.com/x' }]),
      /a\.json\[0\]: account acct-1: dashboardUrl: is not an http\(s\) URL/,
    ],
    ['a blank name', JSON.stringify([{ ...acct, name: '   ' }]), /a\.json\[0\]: account acct-1: name: is blank/],
    [
      'a name of an invisible character alone',
      JSON.stringify([{ ...acct, name: '\u200b' }]),
      /a\.json\[0\]: account acct-1: name: is blank/,
    ],
    [
      'a blank metric label',
      JSON.stringify([{ ...acct, metrics: [{ label: ' ', value: 1 }] }]),
      /a\.json\[0\]: account acct-1: metrics\.0\.label: expected a string, not blank, got " "/,
    ],
    [
      'a blank highlight',
      JSON.stringify([{ ...acct, highlights: ['ok', ''] }]),
      /a\.json\[0\]: account acct-1: highlights\.1: is blank/,
    ],
    [
      'an account too big for a document',
      JSON.stringify([acct, { ...acct, id: 'big', highlights: ['x'.repeat(1_100_000)] }]),
      /a\.json\[1\]: account big is \d+ bytes as Firestore counts a document .*; a document holds at most 1048576/,
    ],
    [
      // Under 1 MB of JSON, over 1 MiB as Firestore counts it: a number is 8 bytes there.
      'an account of many small metrics, too big as Firestore counts it',
      JSON.stringify([
        acct,
        { ...acct, id: 'many', metrics: Array.from({ length: 28_500 }, () => ({ label: 'a', value: 1, change: 1 })) },
      ]),
      /a\.json\[1\]: account many is 1\d{6} bytes as Firestore counts a document/,
    ],
  ])('names %s', (_what, text, message) => {
    expect(() => parseAccountsFile(text, 'a.json')).toThrow(message);
  });
});

describe('the command line', () => {
  it.each([
    [
      ['add', '--id', 'x'],
      "required options '--account <accountId>', '--channel <channelId>', '--cron <expr>', '--timezone <tz>' not specified",
    ],
    [
      ['add', '--id', 'x', '--account', 'a', '--channel', 'C1', '--cron', '* * * * *'],
      "required option '--timezone <tz>' not specified",
    ],
  ])('add %j names every required option not given, before the project is looked for', async (args, said) => {
    const program = buildProgram();
    let err = '';
    for (const c of [program, ...program.commands])
      c.configureOutput({ writeErr: (t) => (err += t), writeOut: () => {} });
    await expect(program.parseAsync(args, { from: 'user' })).rejects.toMatchObject({
      code: 'commander.missingMandatoryOptionValue',
    });
    expect(err.split('\n')[0]).toBe(`error: ${said}`);
  });

  it("lists --project in a command's help, marks add's required options and says a replace re-enables", () => {
    const add = buildProgram().commands.find((c) => c.name() === 'add');
    let help = '';
    add?.configureOutput({ writeOut: (s) => (help += s) });
    add?.outputHelp();
    expect(help).toContain('-p, --project <id>');
    expect(help.replace(/\s+/g, ' ')).toContain(
      "--channel <channelId> the Slack channel's id (C…, G… for an older private channel or a group direct message, or D… for the app's direct messages with a person; not the channel's name, a link to it, nor a user's id), at most 255 characters (required)",
    );
    expect(help).toContain('one that was paused comes back enabled');
  });

  it('lists every command in its help', () => {
    const help = buildProgram().helpInformation();
    for (const command of [
      'import',
      'import-accounts',
      'add',
      'reindex',
      'pause',
      'resume',
      'show',
      'list',
      'delete',
      'run',
      'redrive',
    ]) {
      expect(help).toContain(command);
    }
  });

  it("documents resume's bulk options in its help", () => {
    const resume = buildProgram().commands.find((c) => c.name() === 'resume');
    let help = '';
    resume?.configureOutput({ writeOut: (s) => (help += s) });
    resume?.outputHelp();
    expect(help).toContain('resume [options] [id]');
    for (const option of [
      '--paused-reason <reason>',
      '--all-paused',
      '--dry-run',
      '--page-size <n>',
      '-p, --project <id>',
    ]) {
      expect(help).toContain(option);
    }
    expect(help).toContain('slack-fanout resume --paused-reason invalid_auth');
    expect(help).toMatch(/skipped/);
  });
});

describe('a file of the other kind of entry', () => {
  const notification = { id: 'n-1', accountId: 'a', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' };
  const account = { id: 'a', name: 'Acme' };

  it('is said as such, naming the command that takes it', () => {
    expect(() => parseAccountsFile(JSON.stringify([notification, notification]), 'n.json')).toThrow(
      'n.json looks like a file of notifications (its entries have "cron" and no "name"): import it with `slack-fanout import`',
    );
    expect(() => parseNotificationsFile(JSON.stringify([account]), 'a.json')).toThrow(
      'a.json looks like a file of accounts (its entries have "name" and no "cron"): import it with `slack-fanout import-accounts`',
    );
  });

  it('only when every entry is: one stray entry is named as a bad entry', () => {
    // Named by its every problem (it lacks "name", and has the notification's fields), and alone.
    expect(() => parseAccountsFile(JSON.stringify([account, notification]), 'mixed.json')).toThrow(
      /^mixed\.json: 1 bad entry \(\d+ problems\); nothing was written:\n {2}mixed\.json\[1\]/,
    );
    expect(parseAccountsFile(JSON.stringify([account]), 'a.json')).toHaveLength(1);
  });
});

describe('readText', () => {
  const dir = mkdtempSync(join(tmpdir(), 'read-text-'));

  it('refuses a file over the limit before reading it, naming the file, its size and the limit', () => {
    // A sparse file: as big as it says, with nothing on the disk.
    const file = join(dir, 'huge.json');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, MAX_IMPORT_BYTES + 1);
    closeSync(fd);
    expect(() => readText(file)).toThrow(
      `${file} is 128.0 MiB (${MAX_IMPORT_BYTES + 1} bytes), more than the 128.0 MiB an import reads (the whole file is parsed in memory)`,
    );
  });

  it('with a smaller limit, the same', () => {
    const file = join(dir, 'small.json');
    writeFileSync(file, ' '.repeat(2048));
    expect(() => readText(file, 1024)).toThrow(/small\.json is 0\.0 MiB \(2048 bytes\), more than the 0\.0 MiB/);
    expect(readText(file, 2048)).toBe(' '.repeat(2048));
  });

  it('reads a device or a pipe, which has no size to check first, no further than the limit', () => {
    // Endless: a read to its end would fill the memory.
    expect(() => readText('/dev/zero', 3 * 1024 * 1024)).toThrow(
      '/dev/zero goes on past the 3.0 MiB an import reads (the whole file is parsed in memory; it was read that far and no further): split it',
    );
    expect(() => readText('-', 1024, '/dev/zero')).toThrow(/^stdin goes on past the 0\.0 MiB an import reads/);
    // A pipe that ends within the limit is read whole.
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `printf '[]' > ${fifo}`]);
    expect(readText(fifo)).toBe('[]');
    writer.kill();
  });

  it('says "not UTF-8" for a bad encoding only, and drops a byte-order mark', () => {
    const file = join(dir, 'latin1.json');
    writeFileSync(file, Buffer.from('["caf\xe9"]', 'latin1'));
    expect(() => readText(file)).toThrow(`${file} is not UTF-8 text`);
    expect(() => readText(file)).toThrow(
      /: the byte at offset \d+ \(0x[0-9A-F]{2}\), line \d+, column \d+, is not UTF-8; convert it to UTF-8$/,
    );
    writeFileSync(file, '\ufeff[]');
    expect(readText(file)).toBe('[]');
    expect(() => readText(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json: ENOENT \(no such file\)$/);
    expect(() => readText(dir)).toThrow(`cannot read ${dir}: it is a directory; give the JSON file in it`);
  });

  it('reads standard input for -, and names it stdin', () => {
    const piped = join(dir, 'piped.json');
    writeFileSync(piped, '[{"id":"n-1"}]');
    expect(readText('-', MAX_IMPORT_BYTES, piped)).toBe('[{"id":"n-1"}]');
    expect(() => readText('-', 4, piped)).toThrow(/^stdin is 0\.0 MiB \(14 bytes\), more than the 0\.0 MiB/);
    writeFileSync(piped, Buffer.from('["caf\xe9"]', 'latin1'));
    expect(() => readText('-', MAX_IMPORT_BYTES, piped)).toThrow('stdin is not UTF-8 text');
    writeFileSync(piped, '');
    expect(() => readText('-', MAX_IMPORT_BYTES, piped)).toThrow('stdin is empty: expected a JSON array');
    expect(sourceName('-')).toBe('stdin');
    expect(sourceName('./-')).toBe('./-');
  });
});

describe('progress off a terminal', () => {
  /** `progressOf` off a terminal, its lines kept, its clock `now`. */
  function offTerminal(o: Parameters<typeof progressOf>[0], now: () => number = () => 0) {
    const lines: string[] = [];
    const progress = progressOf(o, { tty: false, write: (line) => lines.push(line), now });
    return { lines, progress };
  }

  it('says one of a thing in the singular', () => {
    const { lines } = offTerminal({
      command: 'import-accounts',
      total: 1,
      noun: 'accounts',
      start: 'to save',
      verb: 'saved',
    });
    expect(lines).toEqual(['import-accounts: 1 account to save\n']);
  });

  it('writes a line to start, at most one every few seconds, and a last one when done', () => {
    let t = 0;
    const { lines, progress } = offTerminal(
      { command: 'import', total: 10_000, noun: 'notifications', start: 'to save', verb: 'saved' },
      () => t,
    );
    for (let n = 1; n <= 10_000; n++) {
      t += 1; // 10 s in all
      progress.update(n);
    }
    progress.stop(true);
    expect(lines[0]).toBe('import: 10000 notifications to save\n');
    expect(lines.at(-1)).toBe('import: 10000 of 10000 notifications saved\n');
    expect(lines.length).toBeLessThanOrEqual(2 + 10_000 / PROGRESS_EVERY_MS);
    expect(lines.length).toBeGreaterThan(2);
  });

  it('writes no last line when the work failed', () => {
    const { lines, progress } = offTerminal({
      command: 'reindex',
      total: 5,
      noun: 'notifications',
      start: 'to scan',
      verb: 'scanned',
    });
    progress.update(3);
    progress.stop(false);
    expect(lines).toEqual(['reindex: 5 notifications to scan\n']);
  });

  it('writes nothing once stopped, though the writes under way still report', () => {
    let t = 0;
    const { lines, progress } = offTerminal(
      { command: 'import-accounts', total: 20_000, noun: 'accounts', start: 'to save', verb: 'saved' },
      () => t,
    );
    progress.stop(false);
    t += 10 * PROGRESS_EVERY_MS;
    progress.update(1421);
    progress.stop(true);
    expect(lines).toEqual(['import-accounts: 20000 accounts to save\n']);
  });
});

describe('readerGone', () => {
  it('takes a closed pipe, a closed terminal and a stream they ended as a reader gone, and nothing else', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED', 'ENOSPC', 'EBADF'].map((c) => readerGone(err(c), true))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    // EIO from a file (a failing disk) is a failure, said.
    expect(readerGone(err('EIO'), false)).toBe(false);
  });
});

describe('failures', () => {
  it('a lost connection is one line that names Firestore, exit 1', () => {
    const grpc = Object.assign(
      new Error(
        '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
      ),
      { code: 14 },
    );
    expect(failureOf(new Error('saved 0 of 3 notifications before a write failed', { cause: grpc }))).toEqual({
      message: 'lost Firestore: saved 0 of 3 notifications before a write failed',
      exitCode: EXIT.failed,
    });
    expect(failureOf(grpc).message).toMatch(/^lost Firestore: 14 UNAVAILABLE: .*ECONNREFUSED 127\.0\.0\.1:1\.$/);
    expect(failureOf(new Error('boom'))).toEqual({ message: 'boom', exitCode: EXIT.failed });
  });

  it('says where it looked: the emulator, or the project and credentials', () => {
    expect(whereService('Firestore', 'p', { FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' })).toBe(
      'FIRESTORE_EMULATOR_HOST=127.0.0.1:8080',
    );
    expect(whereService('Pub/Sub', 'p', { FIRESTORE_EMULATOR_HOST: 'x:1' })).toBe(
      'pubsub.googleapis.com for project p, with application-default credentials',
    );
    expect(whereService('Firestore', 'p', { GOOGLE_APPLICATION_CREDENTIALS: '/k.json' })).toBe(
      'firestore.googleapis.com for project p, with GOOGLE_APPLICATION_CREDENTIALS=/k.json',
    );
  });

  it('a port nothing listens on is refused at once', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    expect(await connectProblem('127.0.0.1', port, 5000)).toBeNull();
    await new Promise((resolve) => server.close(resolve));
    const started = Date.now();
    expect(await connectProblem('127.0.0.1', port, 5000)).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('usage errors', () => {
  it.each([
    [['add', '--id', 'x', '--account', 'a', '--channel', 'C', '--cron', '--timezone', 'UTC'], '--timezone', '--cron'],
    [['add', '--id', '--account', 'a'], '--account', '--id'],
    [['-p', '--help', 'list'], '--help', '--project'],
    // Options with a parser of their own: a reason, a number.
    [['pause', 'n-1', '--reason', '--help'], '--help', '--reason'],
    [['resume', '--paused-reason', '--dry-run'], '--dry-run', '--paused-reason'],
    [['list', '--limit', '--after'], '--after', '--limit'],
  ])('%j: an option taken as the value of the one before is named as such', async (args, taken, option) => {
    const program = buildProgram();
    let said = '';
    for (const c of [program, ...program.commands])
      c.configureOutput({ writeErr: (t) => (said += t), writeOut: () => {} });
    await expect(program.parseAsync(args, { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
    expect(said).toContain(`${taken} is an option, not a value: give ${option} its value`);
  });

  it.each([
    [['add', '--id', 'x', '--title', '--version'], '--version is an option, not a value: give --title its value'],
    [['pause', 'n-1', '--reason', '-V'], '-V is an option, not a value: give --reason its value'],
    [
      ['-p', 'x', 'list', '--limit', '--version', '--', '-V'],
      '--version is an option, not a value: give --limit its value',
    ],
    [['list', '--paused', '--version'], undefined],
    [['--version'], undefined],
    [['add', '--title', '--', '--version'], undefined],
  ])('%j: the program’s --version taken as an option’s value is named', (args, message) => {
    expect(versionTakenAsValue(buildProgram(), args)).toBe(message);
  });

  it.each([
    [['add', '--id', 'a', '--account', 'x', '--id', 'b'], '--id is given twice ("a" and "b"): give it once'],
    [['-p', 'one', 'list', '-p', 'two'], '--project is given twice ("one" and "two"): give it once'],
    [['pause', 'n-1', '--reason', 'r1', '--reason=r2'], '--reason is given twice ("r1" and "r2"): give it once'],
  ])('%j: an option given twice is refused, naming both values', async (args, message) => {
    const program = buildProgram();
    let said = '';
    for (const c of [program, ...program.commands])
      c.configureOutput({ writeErr: (t) => (said += t), writeOut: () => {} });
    await expect(program.parseAsync(args, { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
    // The line is the slip alone: not "argument 'b' is invalid", as the second value may be good.
    expect(said.split('\n')[0]).toBe(`error: ${message}`);
  });

  it('throw a CommanderError (the command exits 2 on it), and the help lists the exit codes', async () => {
    const program = buildProgram();
    for (const c of [program, ...program.commands]) c.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    await expect(program.parseAsync(['no-such-command'], { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
    let full = '';
    const p = buildProgram().configureOutput({ writeOut: (s) => (full += s) });
    p.outputHelp();
    expect(full).toMatch(
      /Exit codes:\n {2}0 +done\n {2}1 +a failure while doing the work.*\n(?: {7}.*\n)+ {2}2 +bad input or usage/,
    );
    // Every command's help ends with them, after its own text.
    for (const command of p.commands) {
      let help = '';
      command.configureOutput({ writeOut: (s) => (help += s) });
      command.outputHelp();
      expect([command.name(), help]).toEqual([
        command.name(),
        expect.stringMatching(
          /\n {2}130 +interrupted \(Ctrl-C\); 143 by SIGTERM, 129 by SIGHUP, which stop a command as Ctrl-C does\n$/,
        ),
      ]);
      expect(help.match(/Exit codes:/g)).toHaveLength(1);
    }
  });

  it.each([
    ['import', ['replaces the whole notification', 'comes back enabled', 'at most 128 MiB']],
    [
      'import-accounts',
      ['value   a number', 'or a string', 'change  optional, a number: the change in percent, not a fraction'],
    ],
    ['add', ['up to 150 UTF-16 code units (2 for a character beyond U+FFFF, as most emoji are', 'at most 1,500 bytes']],
    ['pause', ['1 to 500 characters']],
    ['redrive', ['--topic <name>', '--page-size <n>', 'projects/{project}/topics/{id}']],
    ['resume', ['unlisted', 'with --paused-reason or --all-paused: notifications read and resumed per page']],
  ])("%s's help says it", (name, texts) => {
    const command = buildProgram().commands.find((c) => c.name() === name);
    let help = '';
    command?.configureOutput({ writeOut: (s) => (help += s) });
    command?.outputHelp();
    for (const text of texts) expect(help.replace(/\s+/g, ' ')).toContain(text.replace(/\s+/g, ' '));
  });
});

/**
 * For the tests of a describe block: the checks come before any client is made, so an address
 * nothing listens on is never dialled.
 */
function withFirestoreNeverDialled(): void {
  const saved = process.env.FIRESTORE_EMULATOR_HOST;
  beforeAll(() => {
    process.env.FIRESTORE_EMULATOR_HOST = '127.0.0.1:9';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = saved;
  });
}

describe('add, as typed', () => {
  withFirestoreNeverDialled();
  const base = [
    'add',
    '--id',
    'n-1',
    '--account',
    'a-1',
    '--channel',
    'C1',
    '--cron',
    '0 9 * * *',
    '--timezone',
    'UTC',
  ];
  const withOption = (flag: string, value: string) => {
    const args = [...base];
    const at = args.indexOf(flag);
    if (at >= 0) args[at + 1] = value;
    else args.push(flag, value);
    return args;
  };

  it.each([
    ['--channel', ' ', 'add: --channel: is blank'],
    ['--account', ' ', 'add: --account: is blank'],
    ['--account', ' a-1 ', 'add: --account: has blanks around it, which make it look like the id without them ("a-1")'],
    ['--team', ' ', 'add: --team: is blank'],
    ['--timezone', 'Mars/Olympus', 'add: --timezone: '],
    ['--cron', '61 * * * *', 'add: --cron: '],
  ])(
    '%s %j names the option, not a field of the stored document, before any client is made',
    async (flag, value, says) => {
      const program = buildProgram().exitOverride();
      for (const c of [program, ...program.commands]) c.configureOutput({ writeErr: () => {}, writeOut: () => {} });
      const run = program.parseAsync(['-p', 'demo-x', ...withOption(flag, value)], { from: 'user' });
      await expect(run).rejects.toThrow(says);
      await expect(run).rejects.not.toThrow(/slack\.|accountId|channelId|teamId/);
    },
  );

  it('names every one of several problems, a line each under a count, as an import does', async () => {
    const program = buildProgram().exitOverride();
    for (const c of [program, ...program.commands]) c.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    const args = withOption('--channel', 'C 1');
    args[args.indexOf('--cron') + 1] = '61 * * * *';
    args[args.indexOf('--timezone') + 1] = 'Mars/Olympus';
    const run = program.parseAsync(['-p', 'demo-x', ...args], { from: 'user' });
    await expect(run).rejects.toThrow(
      [
        'add: 3 problems:',
        '  --timezone: unknown time zone "Mars/Olympus": give an IANA name, a region and a city, such as Europe/Paris or America/New_York (or UTC)',
        '  --cron: invalid cron "61 * * * *": the minute field\'s value 61 is outside 0-59',
        '  --channel: has blanks, control characters or invisible characters in it, which no Slack id has',
      ].join('\n'),
    );
  });
});

/** What the command says of `args` (after `-p demo-unit`) as it refuses them; throws if it takes them. */
async function refused(...args: string[]): Promise<string> {
  const program = buildProgram();
  let err = '';
  for (const c of [program, ...program.commands]) {
    c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
  }
  try {
    await program.parseAsync(['-p', 'demo-unit', ...args], { from: 'user' });
  } catch (e) {
    return err || (e as Error).message;
  }
  throw new Error(`${args.join(' ')} was accepted`);
}

describe('words past a command’s arguments', () => {
  withFirestoreNeverDialled();

  it.each([
    [
      ['add', ...'--id a1 --account acc1 --channel C1 --timezone UTC'.split(' '), '--cron', '0 9 * * *', 'extra'],
      'error: add takes no argument, only options, not also "extra"\n',
    ],
    [
      ['import', 'a.json', 'b.json', 'c.json'],
      'error: import takes <file> alone, not also "b.json", "c.json": it imports one file; import several one after another\n',
    ],
    [['show', 'n-1', 'n-2'], 'error: show takes <id> alone, not also "n-2"\n'],
    [['dead-runs', 'now'], 'error: dead-runs takes no argument, only options, not also "now"\n'],
  ])('names each word past the arguments of %j, and what the command takes', async (args, message) => {
    expect(await refused(...args)).toContain(message);
  });
});

describe('an --after that cannot be an id', () => {
  withFirestoreNeverDialled();

  it.each([
    [['list', '--after', ''], '--after: notification id "": is blank'],
    [['deliveries', 's_1:2030-01-01T00:00:00Z', '--after', ' '], '--after: delivery id " ": is blank'],
  ])('is named by its option: %j', async (args, message) => {
    expect(await refused(...args)).toBe(message);
  });
});

describe('resume, as typed', () => {
  withFirestoreNeverDialled();

  const parse = (...args: string[]): Promise<string> => refused('resume', ...args);

  it.each([
    [[], 'resume: give a notification id, --paused-reason <reason> or --all-paused'],
    [
      ['n-1', '--paused-reason', 'invalid_auth'],
      'resume: give a notification id or --paused-reason, not both (got id "n-1")',
    ],
    [['n-1', '--all-paused'], 'resume: give a notification id or --all-paused, not both (got id "n-1")'],
    [['--paused-reason', 'invalid_auth', '--all-paused'], 'resume: give --paused-reason or --all-paused, not both'],
    [['n-1', '--dry-run'], 'resume: --dry-run goes with --paused-reason or --all-paused, not an id'],
    [['--paused-reason', ''], "option '--paused-reason <reason>' argument '' is invalid"],
    [['--paused-reason', '   '], "option '--paused-reason <reason>' argument '   ' is invalid"],
    [['--paused-reason', '   '], 'got a blank one'],
    [['n-1', '--page-size', '10'], 'resume: --page-size goes with --paused-reason or --all-paused, not an id'],
    [['--all-paused', '--page-size', '0'], "option '--page-size <n>' argument '0' is invalid"],
    [['--all-paused', '--page-size', '10001'], 'expected a whole number from 1 to 10,000, got "10001"'],
    [['a', 'b'], 'error: resume takes [id] alone, not also "b"'],
  ])('refuses %j', async (args, message) => {
    expect(await parse(...args)).toContain(message);
  });

  it("answers commander's own usage errors with where the help is, not the whole help under it", async () => {
    const said = await parse('--bogus');
    expect(said).toContain("error: unknown option '--bogus'");
    expect(said).toContain('(slack-fanout --help, or slack-fanout <command> --help, lists every option)');
    expect(said).not.toContain('Options:');
  });
});

describe('redrive, as typed', () => {
  withFirestoreNeverDialled();

  it.each([
    ['0', 'expected a whole number from 1 to 1,000, got "0"'],
    // Each of a page's deliveries is reopened in a transaction of its own, all at once.
    ['1001', 'expected a whole number from 1 to 1,000, got "1001"'],
  ])('refuses --page-size %s before reading anything', async (value, message) => {
    const program = buildProgram();
    let err = '';
    for (const c of [program, ...program.commands]) {
      c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
    }
    await expect(
      program.parseAsync(['-p', 'demo-unit', 'redrive', 'r-1', '--page-size', value], { from: 'user' }),
    ).rejects.toThrow();
    expect(err).toContain(`option '--page-size <n>' argument '${value}' is invalid. ${message}`);
  });
});

describe('emulator addresses', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['[::1]:8085', { host: '::1', port: 8085 }],
  ])('Firestore reads %j', (address, where) => {
    expect(emulatorHostPort('FIRESTORE_EMULATOR_HOST', address)).toEqual(where);
  });

  it.each([
    ['127.0.0.1:8085', { host: '127.0.0.1', port: 8085 }],
    // As its client reads it: a scheme and trailing slashes dropped.
    ['http://localhost:8085/', { host: 'localhost', port: 8085 }],
    ['https://emulators:443', { host: 'emulators', port: 443 }],
  ])('Pub/Sub reads %j', (address, where) => {
    expect(emulatorHostPort('PUBSUB_EMULATOR_HOST', address)).toEqual(where);
  });

  it.each([
    ['FIRESTORE_EMULATOR_HOST', 'http://127.0.0.1:8080'],
    ['FIRESTORE_EMULATOR_HOST', '127.0.0.1:8080/'],
    ['PUBSUB_EMULATOR_HOST', '[::1]:8085'],
  ])('%s refuses %j, which its client cannot read', (variable, address) => {
    expect(() => emulatorHostPort(variable, address)).toThrow(
      `${variable}=${JSON.stringify(address)} is not an emulator address`,
    );
  });

  it.each([
    '127.0.0.1:99999',
    '127.0.0.1:0',
    '127.0.0.1:',
    ':8080',
    '127.0.0.1:80a',
    '127.0.0.1 :8080',
    ' 127.0.0.1:8080',
    '  ',
    'emulators',
  ])('refuses %j, naming the variable and the form, exit 2', (address) => {
    expect(() => emulatorHostPort('PUBSUB_EMULATOR_HOST', address)).toThrow(
      `PUBSUB_EMULATOR_HOST=${JSON.stringify(address)} is not an emulator address: expected host:port, the port from 1 to 65535`,
    );
    expect(() => emulatorHostPort('FIRESTORE_EMULATOR_HOST', address)).toThrow(
      '(as `gcloud beta emulators firestore env-init` prints it, e.g. 127.0.0.1:8080)',
    );
    try {
      checkEmulatorVariables({ FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080', PUBSUB_EMULATOR_HOST: address });
      throw new Error('accepted');
    } catch (err) {
      expect((err as Error).message).toMatch(/^PUBSUB_EMULATOR_HOST=/);
      expect(failureOf(err).exitCode).toBe(EXIT.usage);
    }
  });
});

describe('checked before the credentials', () => {
  const names = [
    'FIRESTORE_EMULATOR_HOST',
    'PUBSUB_EMULATOR_HOST',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'GOOGLE_CLOUD_PROJECT',
  ] as const;
  const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  afterEach(() => {
    for (const n of names) {
      if (saved[n] === undefined) delete process.env[n];
      else process.env[n] = saved[n];
    }
  });

  const failure = async (env: Partial<Record<(typeof names)[number], string>>, args: string[]): Promise<string> => {
    for (const n of names) delete process.env[n];
    Object.assign(process.env, env);
    const program = buildProgram();
    for (const c of [program, ...program.commands]) c.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (err) {
      return failureOf(err).message;
    }
    throw new Error(`${args.join(' ')} was accepted`);
  };

  it('a bad project id is named with the rule, not reported as missing credentials', async () => {
    // No emulator variables and credentials that cannot load: the project is refused first.
    const message = await failure({ GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json' }, [
      '-p',
      'p1',
      'pause',
      'n-1',
    ]);
    expect(message).toBe(
      'project "p1" is not a Google Cloud project id (3 to 63 lower-case letters, digits and hyphens, starting ' +
        'with a letter and not ending with a hyphen, after an optional domain: prefix; a project made today has 6 to 30)',
    );
  });

  it('a blank --project is named as such, not as no project passed', async () => {
    for (const blank of ['', '  ']) {
      const message = await failure({ GOOGLE_CLOUD_PROJECT: 'demo-env' }, ['-p', blank, 'pause', 'n-1']);
      expect(message).toBe(`--project is blank (${JSON.stringify(blank)}): name the Google Cloud project`);
    }
  });

  it('a project with blanks around it is taken without them, and one of blanks only as none, as the services read it', async () => {
    // Past the project, the emulator address is the next check: the project was taken.
    for (const [env, args] of [
      [{ GOOGLE_CLOUD_PROJECT: ' demo-env ' }, []],
      [{}, ['-p', ' demo-x ']],
    ] as const) {
      const message = await failure({ ...env, FIRESTORE_EMULATOR_HOST: '127.0.0.1:99999' }, [...args, 'pause', 'n-1']);
      expect(message).toMatch(/^FIRESTORE_EMULATOR_HOST="127\.0\.0\.1:99999" is not an emulator address/);
    }
    const none = await failure({ GOOGLE_CLOUD_PROJECT: '   ' }, ['pause', 'n-1']);
    expect(none).toBe('no project: pass --project or set GOOGLE_CLOUD_PROJECT');
  });

  it('a bad emulator address is named before anything is dialled', async () => {
    const message = await failure({ FIRESTORE_EMULATOR_HOST: '127.0.0.1:99999' }, ['-p', 'demo-x', 'pause', 'n-1']);
    expect(message).toMatch(/^FIRESTORE_EMULATOR_HOST="127\.0\.0\.1:99999" is not an emulator address/);
  });

  it('with good input, the missing credentials are what is said', async () => {
    const message = await failure({ GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json' }, [
      '-p',
      'demo-x',
      'pause',
      'n-1',
    ]);
    expect(message).toMatch(/^no Google credentials/);
  });

  it('without credentials, a usage error of the command itself is named, not the credentials', async () => {
    const env = { GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json' };
    expect(await failure(env, ['-p', 'demo-x', 'import', '/nonexistent/notifications.json'])).toMatch(
      /\/nonexistent\/notifications\.json/,
    );
    expect(await failure(env, ['-p', 'demo-x', 'resume'])).toMatch(/^resume: give a notification id/);
    expect(await failure(env, ['-p', 'demo-x', 'run', 'x:2020-13-45T00:00:00Z'])).not.toMatch(/credentials/);
    // With good input, the credentials are what is said, for redrive too.
    expect(await failure(env, ['-p', 'demo-x', 'redrive', 's_1:2030-01-01T00:00:00Z'])).toMatch(
      /^no Google credentials/,
    );
  });

  it('names the emulator variable that is missing where the other is set', async () => {
    const env = { GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json', PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' };
    const message = await failure(env, ['-p', 'demo-x', 'pause', 'n-1']);
    expect(message).toMatch(
      /; PUBSUB_EMULATOR_HOST is set, but not FIRESTORE_EMULATOR_HOST: set it for the Firestore emulator$/,
    );
  });

  it('a credentials file that cannot be read is named whole, with why, on one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'creds-'));
    // Longer than a quoted id is shown (100 characters): a path is shown whole.
    mkdirSync(join(dir, '.config', 'gcloud', 'k'.repeat(120)), { recursive: true });
    const missing = join(dir, '.config', 'gcloud', 'k'.repeat(120), 'key.json');
    const said = await failure({ GOOGLE_APPLICATION_CREDENTIALS: missing }, ['-p', 'demo-x', 'pause', 'n-1']);
    // The whole path, and why, in the library's words (which differ between its versions).
    expect(said).toMatch(/^no Google credentials \([^)]*(does not exist|ENOENT)[^)]*\)/);
    expect(said.slice(0, said.indexOf('): make'))).toContain(missing);
    expect(said).toContain(
      `make GOOGLE_APPLICATION_CREDENTIALS (${JSON.stringify(missing)}) name a readable credentials file (a service account key, or the file \`gcloud auth application-default login\` writes), or unset it and run that command;`,
    );
    expect(said).not.toContain('or set GOOGLE_APPLICATION_CREDENTIALS');
    const notJson = join(dir, 'key.json');
    writeFileSync(notJson, 'not json\n');
    const bad = await failure({ GOOGLE_APPLICATION_CREDENTIALS: notJson }, ['-p', 'demo-x', 'pause', 'n-1']);
    expect(bad).toMatch(/^no Google credentials \(Unable to read the credential file .*is not valid JSON\)/);
    expect(bad.split('\n')).toHaveLength(1);
  });

  it.each([
    [
      'Could not load the default credentials. Browse to https://example.test/docs for more information.',
      'Could not load the default credentials',
    ],
    [
      'The file at /home/me/.config/k.json does not exist. ENOENT: x',
      'The file at /home/me/.config/k.json does not exist',
    ],
    ['a reason\nover two lines.', 'a reason over two lines'],
  ])('credentialsProblem(%j) is %j', (message, said) => {
    expect(credentialsProblem(message)).toBe(said);
  });
});

describe('pause --reason, as typed', () => {
  withFirestoreNeverDialled();

  const parse = async (reason: string): Promise<string> => {
    const program = buildProgram();
    let err = '';
    for (const c of [program, ...program.commands]) {
      c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
    }
    try {
      await program.parseAsync(['-p', 'demo-unit', 'pause', 'n-1', '--reason', reason], { from: 'user' });
    } catch (e) {
      return err || (e as Error).message;
    }
    return 'accepted';
  };

  it('counts characters, not UTF-16 units: 500 emoji pass the check, 501 are 501', async () => {
    // Past the check the command dials Firestore (nothing listens there): not a reason problem.
    expect(await parse('🙂'.repeat(500))).not.toMatch(/characters/);
    expect(await parse('🙂'.repeat(501))).toContain('at most 500 characters, got 501');
  });

  it('refuses a reason that is empty, blank, or made of invisible characters only, saying so', async () => {
    for (const reason of ['', '   ', '\u200b', ' \u2060\u00ad ', '\u3164', '\ufeff']) {
      expect(await parse(reason)).toBe(
        'pause: --reason: must not be empty or blank (only white space or invisible characters)',
      );
    }
  });

  it('keeps a reason without the blanks around it', async () => {
    const kept: (string | undefined)[] = [];
    const program = buildProgram();
    const pause = program.commands.find((c) => c.name() === 'pause');
    pause?.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    pause?.action((_id: string, o: { reason?: string }) => {
      kept.push(o.reason);
    });
    const pauseWith = (reason: string) =>
      program.parseAsync(['-p', 'demo-unit', 'pause', 'n-1', '--reason', reason], { from: 'user' });
    await pauseWith('  customer asked  ');
    await pauseWith(` ${'🙂'.repeat(500)} `);
    expect(kept).toEqual(['customer asked', '🙂'.repeat(500)]);
  });

  it('refuses a control character in a new reason: it would break or reverse every line it is printed in', async () => {
    for (const reason of ['two\nlines', 'evil\u202eTXET', 'tab\there', 'line\u2028sep', 'mark\u200fRLM']) {
      expect(await parse(reason)).toContain('has a control character in it');
    }
    expect(await parse('channel archived by ops')).not.toContain('control character');
  });
});

describe('silenceWarning (a bulk resume or redrive whose Firestore or Pub/Sub stops answering)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('says every 30 s without a finished page what it waits on, starts over on progress, and never gives up', () => {
    const lines: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => lines.push(String(chunk)) > 0);
    const env = { ...process.env };
    process.env.FIRESTORE_EMULATOR_HOST = '127.0.0.1:9';
    process.env.PUBSUB_EMULATOR_HOST = '127.0.0.1:10';
    try {
      const watch = silenceWarning('redrive', 'page', 'my-project');
      jest.advanceTimersByTime(29_000);
      expect(lines).toEqual([]);
      jest.advanceTimersByTime(2_000);
      expect(lines).toEqual([
        'redrive: no page has finished for 30 s (Firestore at FIRESTORE_EMULATOR_HOST=127.0.0.1:9, Pub/Sub at PUBSUB_EMULATOR_HOST=127.0.0.1:10); still waiting (Ctrl-C stops; running it again is safe)\n',
      ]);
      watch.moved();
      jest.advanceTimersByTime(29_000);
      expect(lines).toHaveLength(1);
      jest.advanceTimersByTime(600_000);
      expect(lines.length).toBeGreaterThan(10);
      watch.stop();
      const after = lines.length;
      jest.advanceTimersByTime(120_000);
      expect(lines).toHaveLength(after);
      expect(SILENCE_WARNING_MS).toBe(30_000);
    } finally {
      write.mockRestore();
      process.env = env;
    }
  });
});

describe('stallWatch (an import whose Firestore stops answering)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('warns every warnEvery ms of silence, starts over on progress, gives up at the timeout once', () => {
    const warned: number[] = [];
    const gaveUp: number[] = [];
    const watch = stallWatch({
      timeoutMs: 120_000,
      warnEveryMs: 30_000,
      warn: (ms) => warned.push(Math.round(ms / 1000)),
      giveUp: (ms) => gaveUp.push(Math.round(ms / 1000)),
      now: () => Date.now(),
    });
    jest.advanceTimersByTime(29_000);
    expect(warned).toEqual([]);
    jest.advanceTimersByTime(2_000);
    expect(warned).toEqual([30]);
    // Progress: the silence starts over, and so do the warnings.
    watch.moved();
    jest.advanceTimersByTime(59_000);
    expect(warned).toEqual([30, 30]);
    jest.advanceTimersByTime(2_000);
    expect(warned).toEqual([30, 30, 60]);
    expect(gaveUp).toEqual([]);
    jest.advanceTimersByTime(60_000);
    expect(warned).toEqual([30, 30, 60, 90]);
    expect(gaveUp).toEqual([120]);
    jest.advanceTimersByTime(600_000);
    expect(gaveUp).toEqual([120]);
    watch.stop();
  });

  test('says each step of the silence when it is due, whenever the last progress came', () => {
    const said: string[] = [];
    const watch = stallWatch({
      timeoutMs: 6_000,
      warnEveryMs: 2_000,
      warn: (ms) => said.push(`warn ${ms}`),
      giveUp: (ms) => said.push(`give up ${ms}`),
      now: () => Date.now(),
    });
    jest.advanceTimersByTime(900);
    watch.moved();
    jest.advanceTimersByTime(5_999);
    expect(said).toEqual(['warn 2000', 'warn 4000']);
    jest.advanceTimersByTime(1);
    expect(said).toEqual(['warn 2000', 'warn 4000', 'give up 6000']);
    watch.stop();
  });

  test('stopped, it says nothing more; the default timeout is 120 s', () => {
    const calls: string[] = [];
    const watch = stallWatch({
      timeoutMs: 5_000,
      warnEveryMs: 1_000,
      warn: () => calls.push('warn'),
      giveUp: () => calls.push('give up'),
    });
    watch.stop();
    jest.advanceTimersByTime(60_000);
    expect(calls).toEqual([]);
    expect(STALL_TIMEOUT_SECONDS).toBe(120);
  });
});

describe('notificationNotFound', () => {
  test('names a plain id as it is, and quotes one that looks like another, saying why', () => {
    expect(notificationNotFound('n-1')).toBe('notification n-1 does not exist');
    expect(notificationNotFound('n-1\u200b')).toBe(
      'notification "n-1\\u200B" does not exist; the id given has an invisible character in it (U+200B zero-width space), which makes it look like an id without it',
    );
    // A mark that turns the line's direction is written as its escape, not printed.
    expect(notificationNotFound('abc\u202edef')).toMatch(
      /^notification "abc\\u202Edef" does not exist; the id given has a control character/,
    );
    expect(notificationNotFound(' n-1')).toMatch(
      /^notification " n-1" does not exist; the id given has blanks around it/,
    );
  });
});

describe('withoutHelpOfHelp', () => {
  test.each([
    [['help', 'help'], ['help']],
    [
      ['-p', 'help', 'help', 'help', 'help'],
      ['-p', 'help', 'help'],
    ],
    [
      ['--project', 'x', 'help', 'help', 'add'],
      ['--project', 'x', 'help', 'add'],
    ],
    [
      ['help', 'add'],
      ['help', 'add'],
    ],
    [
      ['add', '--title', 'help', 'help'],
      ['add', '--title', 'help', 'help'],
    ],
    [[], []],
  ])('%j is read as %j', (args, read) => {
    expect(withoutHelpOfHelp(args)).toEqual(read);
  });
});

describe('unknownCommandOf', () => {
  it.each<[string[], string | undefined]>([
    [['status', '--help'], 'status'],
    [['-p', 'demo-x', 'status', '-h'], 'status'],
    [['--project', 'pause', 'stats'], 'stats'],
    [['help', 'status'], 'status'],
    [['help', 'pause'], undefined],
    [['help', 'help'], undefined],
    [['help'], undefined],
    [['pause', '--help'], undefined],
    [['-p', 'x', 'run', 'status'], undefined],
    [['--help'], undefined],
    [['--', 'status'], undefined],
    [[], undefined],
  ])('in %j: %j', (args, unknown) => {
    expect(unknownCommandOf(buildProgram(), args)).toBe(unknown);
  });
});

describe('checkedAfterSave (the accounts an import or add names, looked up once saved)', () => {
  afterEach(() => jest.useRealTimers());

  it('says what the check says, and a check that fails, as a warning that fails nothing', async () => {
    await expect(checkedAfterSave(Promise.resolve(null))).resolves.toBeNull();
    await expect(checkedAfterSave(Promise.resolve('1 account named here is not in Firestore'))).resolves.toBe(
      '1 account named here is not in Firestore',
    );
    await expect(checkedAfterSave(Promise.reject(new Error('14 UNAVAILABLE: no connection\n')))).resolves.toBe(
      'saved, but whether the accounts they name exist could not be checked: 14 UNAVAILABLE: no connection\\n',
    );
  });

  it('gives up on a Firestore that does not answer after 30 s, saying so', async () => {
    jest.useFakeTimers();
    const said = checkedAfterSave(new Promise<string | null>(() => {}));
    jest.advanceTimersByTime(29_999);
    let settled = false;
    void said.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    jest.advanceTimersByTime(1);
    await expect(said).resolves.toBe(
      'saved, but whether the accounts they name exist could not be checked: Firestore did not answer within 30 s',
    );
  });
});

describe('zoneCautions', () => {
  it('says each zone that reads as what it is not once, with how many notifications give it', () => {
    const items = ['EST', ' EST', 'America/New_York', 'Etc/GMT+5', 'UTC'].map((timezone) => ({ timezone }));
    expect(zoneCautions(items)).toEqual([
      expect.stringMatching(/^time zone "EST" is UTC-5 all year, .*give America\/New_York \(2 notifications\)$/),
      expect.stringMatching(/^time zone "Etc\/GMT\+5" is UTC-5, not UTC\+5: .* \(1 notification\)$/),
    ]);
  });

  it('says no count for one notification, and nothing for zones that read as they are', () => {
    expect(zoneCautions([{ timezone: 'MST' }])).toEqual([expect.stringMatching(/give America\/Denver$/)]);
    expect(
      zoneCautions(['Europe/Paris', 'HST', 'EST5EDT', 'Etc/GMT+0', 'Etc/GMT'].map((timezone) => ({ timezone }))),
    ).toEqual([]);
  });
});
