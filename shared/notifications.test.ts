import { FieldValue, Timestamp } from '@google-cloud/firestore';
import {
  firstDueAt,
  InvalidNotificationError,
  NEW_SCHEDULE_GRACE_MS,
  type NewNotification,
  notificationDoc,
  notificationProblems,
  scheduleRepair,
} from './notifications';

describe('firstDueAt: when a schedule made now is first due', () => {
  const everyTwo = { cron: '*/2 * * * *', timezone: 'UTC' };
  const at = (iso: string) => new Date(iso);

  it('is the instant just past, within a minute of it: a notification moved there before its tick is still sent', () => {
    expect(firstDueAt(everyTwo, at('2026-11-30T13:24:01.400Z'))).toEqual(at('2026-11-30T13:24:00.000Z'));
    expect(firstDueAt(everyTwo, at('2026-11-30T13:25:00.000Z'))).toEqual(at('2026-11-30T13:24:00.000Z'));
  });

  it('is the next instant once the last is more than a minute past', () => {
    expect(NEW_SCHEDULE_GRACE_MS).toBe(60_000);
    expect(firstDueAt(everyTwo, at('2026-11-30T13:25:00.001Z'))).toEqual(at('2026-11-30T13:26:00.000Z'));
    const daily = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
    expect(firstDueAt(daily, at('2026-12-07T10:00:00.000Z'))).toEqual(at('2026-12-08T08:00:00.000Z'));
  });
});

describe('scheduleRepair: a stored schedule document that cannot run as it is', () => {
  const s = { cron: '* * * * *', timezone: 'America/Sao_Paulo' };
  const next = new Date('2026-11-30T13:38:00.000Z');
  const sound = { ...s, nextRunAt: Timestamp.fromDate(new Date('2026-11-30T13:37:00.000Z')), activeOccurrence: null };

  it('leaves a sound one alone, its cron spaced as any of its notifications wrote it', () => {
    expect(scheduleRepair(sound, s, next)).toBeNull();
    expect(scheduleRepair({ ...sound, cron: '*  * *   * *' }, s, next)).toBeNull();
  });

  it('gives back the cron, time zone and a due time to one a run-state write made again without them', () => {
    const remade = { lastRunAt: Timestamp.fromDate(next), activeOccurrence: null, nextRunAt: Timestamp.fromDate(next) };
    expect(scheduleRepair(remade, s, next)).toEqual({ ...s });
    expect(scheduleRepair({ activeOccurrence: null }, s, next)).toEqual({ ...s, nextRunAt: next });
  });

  it('makes one due that no due query finds: nextRunAt missing, or not a time', () => {
    const { nextRunAt: _, ...without } = sound;
    expect(scheduleRepair(without, s, next)).toEqual({ nextRunAt: next });
    expect(scheduleRepair({ ...sound, nextRunAt: '2026-11-30T13:20:00Z' }, s, next)).toEqual({ nextRunAt: next });
  });

  it('enables one disabled although its cron and time zone are valid', () => {
    const disabled = {
      ...sound,
      timezone: '',
      nextRunAt: Timestamp.fromDate(new Date('9999-12-31T00:00:00Z')),
      invalidReason: 'unknown time zone ""',
    };
    expect(scheduleRepair(disabled, s, next)).toEqual({
      ...s,
      nextRunAt: next,
      invalidReason: FieldValue.delete(),
    });
  });
});

describe('notificationDoc: blank fields are named, never dropped or kept unseen', () => {
  const base = { id: 'n-1', accountId: 'a-1', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' };
  const problemOf = (n: Partial<NewNotification>) => {
    try {
      notificationDoc({ ...base, ...n });
      return null;
    } catch (err) {
      if (!(err instanceof InvalidNotificationError)) throw err;
      return [err.field, err.problem];
    }
  };

  it.each(['', '   '])('a title of %j', (title) => {
    expect(problemOf({ title })).toEqual([
      'title',
      'is blank: leave the title out for the default, "{account name}: scheduled report"',
    ]);
  });

  it.each(['', '  '])('a workspace or channel id of %j', (id) => {
    expect(problemOf({ teamId: id })).toEqual(['teamId', 'is blank']);
    expect(problemOf({ channelId: id })).toEqual(['channelId', 'is blank']);
  });

  // Control characters too, C1's such as U+0085 (a line break JavaScript's \s does not take) and DEL.
  it.each([' C1 ', 'C1\t', '\u00a0C1'])('a Slack id with blanks around it, %j, is named with the id to give', (id) => {
    const problem = 'has blanks around it, which no Slack id has: give it as "C1"';
    expect(problemOf({ channelId: id })).toEqual(['channelId', problem]);
    expect(problemOf({ teamId: id })).toEqual(['teamId', problem]);
  });

  it.each(['C\u200b1', '\u200b', '\ufeffC1', 'C1\u0007', 'C1\u001b[31m', 'C\u00851', 'C1\u007f', 'C\u00001'])(
    'a Slack id with blanks or invisible characters, %j',
    (id) => {
      const problem = 'has blanks, control characters or invisible characters in it, which no Slack id has';
      expect(problemOf({ channelId: id })).toEqual(['channelId', problem]);
      expect(problemOf({ teamId: id })).toEqual(['teamId', problem]);
    },
  );

  it.each([
    ['general', "looks like a channel's name"],
    ['#ops-reports', "looks like a channel's name"],
    ['@alice', "looks like a channel's name"],
    ['U0123ABCD', "is a user's id"],
    ['W0123ABCD', "is a user's id"],
    ['2025', "is not a conversation's id, which begins with C"],
    ['https://acme.slack.com/archives/C0ACME01', 'is a link to the conversation: give its id alone, "C0ACME01"'],
    ['開発', "is not a conversation's id, which begins with C"],
  ])(
    "a channel's name or a user's id where a conversation's id goes, %j, is named, saying what to give",
    (id, said) => {
      expect(problemOf({ channelId: id })?.[0]).toBe('channelId');
      expect(problemOf({ channelId: id })?.[1]).toContain(said);
      // A workspace id is not a conversation's.
      expect(problemOf({ teamId: 'T0123' })).toBeNull();
    },
  );

  it('a title of invisible characters only is blank; one with blanks around words is kept', () => {
    expect(problemOf({ title: '\u200b\u2060' })?.[0]).toBe('title');
    expect(problemOf({ title: '\u00ad\u00ad' })?.[0]).toBe('title');
    expect(problemOf({ channelId: 'C1\u00ad' })?.[0]).toBe('channelId');
    expect(notificationDoc({ ...base, title: ' Weekly ' }).report).toEqual({
      kind: 'account-summary',
      title: ' Weekly ',
    });
  });

  // Unicode's Default_Ignorable_Code_Point, not only the four first listed: fillers, format marks,
  // variation selectors and tags alone show nothing either.
  it.each(['\u3164', ' \u115f\u1160 ', '\u180e', '\u034f\u2061', '\ufe0f', '\u200d\u{e0067}\u{e007f}', '\uffa0'])(
    'a title of %j is blank',
    (title) => {
      expect(problemOf({ title })).toEqual([
        'title',
        'is blank: leave the title out for the default, "{account name}: scheduled report"',
      ]);
    },
  );

  it.each([
    ['Weekly\nreport', '"\\n"'],
    ['Weekly \u202eevil\u202c end', '"\\u202E"'],
    ['ding \u0007', '"\\u0007"'],
    ['a\tb', '"\\t"'],
    ['one\u2028two', '"\\u2028"'],
  ])('a title with a control character, %j, is refused, naming it', (title, named) => {
    expect(problemOf({ title })).toEqual([
      'title',
      `holds ${named}, a control character (a line break or line separator, a tab, a mark that turns or sets the text’s direction), which a report's one-line header cannot show`,
    ]);
  });

  it('a title with an emoji made of joiners, selectors and tags is kept', () => {
    const title = '🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f} 👩\u200d💻 ❤\ufe0f';
    expect(notificationDoc({ ...base, title }).report).toEqual({ kind: 'account-summary', title });
  });

  it.each(['C\u31641', '\u180eC1', 'C1\ufe0f'])('a Slack id with an invisible character, %j', (id) => {
    const problem = 'has blanks, control characters or invisible characters in it, which no Slack id has';
    expect(problemOf({ channelId: id })).toEqual(['channelId', problem]);
    expect(problemOf({ teamId: id })).toEqual(['teamId', problem]);
  });

  // An accountId names an account by its id, which import-accounts takes without blanks around it.
  it.each([' a-1', 'a-1 ', ' a-1 ', 'a-1\u00a0'])('an accountId with blanks around it, %j', (accountId) => {
    const problem = 'has blanks around it, which make it look like the id without them ("a-1"): write it without them';
    expect(problemOf({ accountId })).toEqual(['accountId', problem]);
    expect(() => notificationDoc({ ...base, accountId })).toThrow(`notification n-1: accountId: ${problem}`);
  });

  it('an accountId with an invisible character of Unicode’s wider list, named', () => {
    expect(problemOf({ accountId: 'a\u31641' })).toEqual([
      'accountId',
      'has an invisible character in it (U+3164 Hangul filler), which makes it look like an id without it',
    ]);
  });

  it('an accountId with blanks inside it is its own', () => {
    expect(notificationDoc({ ...base, accountId: 'acct 1' }).accountId).toBe('acct 1');
  });

  it('refuses a title longer than a header shows, in UTF-16 units, naming it', () => {
    expect(() => notificationDoc({ ...base, title: '😀'.repeat(76) })).toThrow(
      /^notification n-1: title: is 152 UTF-16 code units long \(a character beyond U\+FFFF, as most emoji are, counts 2\)/,
    );
    expect(problemOf({ title: 'x'.repeat(151) })?.[0]).toBe('title');
    expect(notificationDoc({ ...base, title: '😀'.repeat(75) }).report?.title).toBe('😀'.repeat(75));
  });

  it('names the field as written, not as stored', () => {
    expect(() => notificationDoc({ ...base, teamId: '' })).toThrow(/notification n-1: teamId: is blank/);
  });

  it('keeps a title and a workspace given', () => {
    expect(notificationDoc({ ...base, title: 'Weekly', teamId: 'T1' })).toMatchObject({
      report: { title: 'Weekly' },
      slack: { teamId: 'T1', channelId: 'C1' },
    });
  });
});

describe('notificationProblems: every field that is wrong, the first as notificationDoc throws it', () => {
  const base = { id: 'n-1', accountId: 'a-1', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' };
  const thrown = (n: NewNotification): InvalidNotificationError | null => {
    try {
      notificationDoc(n);
      return null;
    } catch (err) {
      if (!(err instanceof InvalidNotificationError)) throw err;
      return err;
    }
  };

  it('none for a good one', () => {
    expect(notificationProblems(base)).toEqual([]);
    expect(thrown(base)).toBeNull();
  });

  it('names a cron and a time zone both wrong, the zone first, as notificationDoc throws it', () => {
    const n = { ...base, cron: '61 * * * *', timezone: 'Mars/Base' };
    const problems = notificationProblems(n);
    expect(problems.map((p) => p.field)).toEqual(['timezone', 'cron']);
    expect(problems[0]?.message).toMatch(/^notification n-1: .*Mars\/Base/);
    expect(problems[1]?.message).toMatch(/^notification n-1: .*61/);
    // Each alone: one problem, the same one.
    expect(notificationProblems({ ...base, cron: '61 * * * *' }).map((p) => p.field)).toEqual(['cron']);
    expect(notificationProblems({ ...base, timezone: 'Mars/Base' }).map((p) => p.field)).toEqual(['timezone']);
  });

  it("refuses a step longer than its field's cycle when a notification is saved, naming the cron", () => {
    const n = { ...base, cron: '*/90 * * * *' };
    expect(notificationProblems(n).map((p) => [p.field, p.message])).toEqual([
      [
        'cron',
        'notification n-1: invalid cron "*/90 * * * *": the minute field\'s "*/90" steps by 90, more than the 60 minutes of its cycle (0-59), so it gives 0 alone: cron cannot say every 90 minutes; write the minutes it is to run at',
      ],
    ]);
    expect(thrown(n)?.field).toBe('cron');
    expect(notificationProblems({ ...base, cron: '*/60 * * * *' })).toEqual([]);
    // Beside a zone that is wrong too: both named at once.
    expect(notificationProblems({ ...n, timezone: 'Mars/Base' }).map((p) => p.field)).toEqual(['timezone', 'cron']);
  });

  it('throws, from notificationDoc, the field and message it threw before problems were listed', () => {
    const cases: [Partial<NewNotification>, string, RegExp][] = [
      [{ cron: '', timezone: '' }, 'timezone', /^notification n-1: time zone is blank/],
      [{ cron: '61 * * * *', timezone: 'Mars/Base' }, 'timezone', /^notification n-1: unknown time zone "Mars\/Base"/],
      [{ cron: '61 * * * *' }, 'cron', /^notification n-1: invalid cron "61 \* \* \* \*"/],
      [{ channelId: 'C 1', title: '\u0007bell' }, 'channelId', /^notification n-1: channelId: has blanks/],
      [{ channelId: '', teamId: '' }, 'teamId', /^notification n-1: teamId: is blank$/],
      [{ title: '\n' }, 'title', /^notification n-1: title: is blank: leave the title out/],
    ];
    for (const [change, field, message] of cases) {
      const err = thrown({ ...base, ...change });
      expect({ change, field: err?.field }).toEqual({ change, field });
      expect(err?.message).toMatch(message);
      expect(err?.message).toBe(notificationProblems({ ...base, ...change })[0]?.message);
    }
  });

  it('names a cron that reads "time zone" as the cron it is, and the zone beside it', () => {
    expect(notificationProblems({ ...base, cron: 'time zone' }).map((p) => p.field)).toEqual(['cron']);
    expect(notificationProblems({ ...base, cron: 'time zone', timezone: 'Mars/Base' }).map((p) => p.field)).toEqual([
      'timezone',
      'cron',
    ]);
  });

  it('names each field once, by its first problem, in the order they are checked', () => {
    const n = { ...base, id: 'n\u200b1', channelId: 'C 1', teamId: '', title: '\u0007bell' };
    const problems = notificationProblems(n);
    expect(problems.map((p) => p.field)).toEqual(['channelId', 'title', 'teamId', 'id']);
    expect(problems[2]?.message).toMatch(/teamId: is blank/);
    expect(problems[3]?.message).toMatch(/^notification id "n\\u200B1": /);
    // Refused by two checks each (the id rules and the document's schema; blank, and a line
    // break in a title): one problem each, the first check's.
    const twice = notificationProblems({ ...base, accountId: '', title: '\n' });
    expect(twice.map((p) => p.field)).toEqual(['accountId', 'title']);
    expect(twice[1]?.problem).toMatch(/^is blank: leave the title out/);
    // Two fields the document's schema refuses: a problem each, each naming its own field.
    const two = notificationProblems({ ...base, channelId: '', teamId: '' });
    expect(two.map((p) => [p.field, p.message])).toEqual([
      ['teamId', 'notification n-1: teamId: is blank'],
      ['channelId', 'notification n-1: channelId: is blank'],
    ]);
  });
});
