import { buildProgram, parseAccountsFile, parseNotificationsFile } from './slack-fanout';

const good = { id: 'n-1', accountId: 'a-1', channelId: 'C1', cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' };

describe('parseNotificationsFile', () => {
  it('reads a valid array', () => {
    expect(parseNotificationsFile(JSON.stringify([good]), 'f.json')).toEqual([good]);
  });

  it.each([
    ['not JSON', '{', /f\.json is not JSON/],
    ['not an array', '{}', /must hold a JSON array/],
    ['a missing field', JSON.stringify([good, { ...good, channelId: undefined }]), /f\.json\[1\]: channelId/],
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
      /f\.json\[0\]: notification id .*longer than 1475 bytes/,
    ],
    ['a huge channel id', JSON.stringify([{ ...good, channelId: 'C'.repeat(300) }]), /f\.json\[0\].*slack\.channelId/],
  ])('names %s', (_what, text, message) => {
    expect(() => parseNotificationsFile(text, 'f.json')).toThrow(message);
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
    ['not an array', '{"id":"x"}', /a\.json must hold a JSON array of accounts/],
    ['a missing name', JSON.stringify([acct, { id: 'acct-2' }]), /a\.json\[1\]: name/],
    ['an unknown field', JSON.stringify([{ ...acct, nmae: 'x' }]), /a\.json\[0\]/],
    [
      'a metric without a label',
      JSON.stringify([{ ...acct, metrics: [{ value: 1 }] }]),
      /a\.json\[0\]: metrics\.0\.label/,
    ],
    ['a bad dashboard URL', JSON.stringify([{ ...acct, dashboardUrl: 'not a url' }]), /a\.json\[0\]: dashboardUrl/],
    ['an id with a slash', JSON.stringify([{ ...acct, id: 'a/b' }]), /a\.json\[0\]: account id "a\/b".*'\/'/],
    ['a duplicate id', JSON.stringify([acct, acct]), /a\.json\[1\]: duplicate id acct-1 \(also a\.json\[0\]\)/],
    ['a blank id', JSON.stringify([{ ...acct, id: ' ' }]), /a\.json\[0\]: account id " ": is blank/],
    [
      'a javascript: dashboard URL',
      JSON.stringify([{ ...acct, dashboardUrl: 'javascript:alert(1)' }]),
      /a\.json\[0\]: dashboardUrl/,
    ],
    [
      'an account too big for a document',
      JSON.stringify([acct, { ...acct, id: 'big', highlights: ['x'.repeat(1_100_000)] }]),
      /a\.json\[1\]: account big is \d+ bytes; a Firestore document holds at most about 1 MB/,
    ],
  ])('names %s', (_what, text, message) => {
    expect(() => parseAccountsFile(text, 'a.json')).toThrow(message);
  });
});

describe('the command line', () => {
  it("lists --project in a command's help, marks add's required options and says a replace re-enables", () => {
    const add = buildProgram().commands.find((c) => c.name() === 'add');
    let help = '';
    add?.configureOutput({ writeOut: (s) => (help += s) });
    add?.outputHelp();
    expect(help).toContain('-p, --project <id>');
    expect(help).toMatch(/--channel <channelId> +the Slack channel id \(required\)/);
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

describe('resume, as typed', () => {
  const saved = process.env.FIRESTORE_EMULATOR_HOST;
  // The checks come before any client is made: an address nothing listens on is never dialled.
  beforeAll(() => {
    process.env.FIRESTORE_EMULATOR_HOST = '127.0.0.1:9';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = saved;
  });

  const parse = async (...args: string[]): Promise<string> => {
    const program = buildProgram();
    let err = '';
    for (const c of [program, ...program.commands]) {
      c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
    }
    try {
      await program.parseAsync(['-p', 'demo-unit', 'resume', ...args], { from: 'user' });
    } catch (e) {
      return err || (e as Error).message;
    }
    throw new Error(`resume ${args.join(' ')} was accepted`);
  };

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
    [['--all-paused', '--page-size', '0'], "option '--page-size <n>' argument '0' is invalid"],
    [['a', 'b'], 'too many arguments'],
  ])('refuses %j', async (args, message) => {
    expect(await parse(...args)).toContain(message);
  });
});
