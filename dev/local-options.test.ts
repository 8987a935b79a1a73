import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  localProgram,
  MAX_ACCOUNTS,
  MAX_NOTIFICATIONS,
  MAX_SECONDS,
  parseArgs,
  readSlackFaults,
  startedByNpm,
} from './local-options';
import { ROOT } from './processes';

/** `npm start -- --help` as printed off a terminal (80 columns), the text after the options included. */
function help(): string {
  let out = '';
  const program = localProgram().configureOutput({ writeOut: (s) => (out += s), getOutHelpWidth: () => 80 });
  program.outputHelp();
  return out;
}

describe("npm start's options", () => {
  it('says each counted option’s range in its help', () => {
    const text = help().replace(/\s+/g, ' ');
    expect(text).toContain('demo notifications to seed, 1 to 1,000,000 (default: 200)');
    expect(text).toContain('demo accounts the notifications report on, 1 to 100,000 (default: 20)');
    expect(text).toContain("how long a tick's deliveries are waited for, 1 to 3,600 (with --once");
    expect(text).toContain('as Cloud Scheduler), 1 to 3,600 (default: 60)');
  });

  it('takes the ends of each range, and refuses just past them', () => {
    const parse = (...args: string[]) => {
      const program = localProgram()
        .exitOverride()
        .configureOutput({ writeErr: () => undefined });
      return program.parse(['node', 'local.js', ...args]).opts();
    };
    expect(parse('-n', String(MAX_NOTIFICATIONS), '--accounts', String(MAX_ACCOUNTS))).toMatchObject({
      notifications: MAX_NOTIFICATIONS,
      accounts: MAX_ACCOUNTS,
    });
    expect(parse('--timeout', String(MAX_SECONDS), '--interval', '1')).toMatchObject({ timeout: 3600, interval: 1 });
    expect(() => parse('-n', String(MAX_NOTIFICATIONS + 1))).toThrow(/from 1 to 1,000,000,/);
    expect(() => parse('--accounts', '0')).toThrow(/from 1 to 100,000,/);
    expect(() => parse('--interval', String(MAX_SECONDS + 1))).toThrow(/from 1 to 3,600,/);
  });

  it.each([
    [
      'blanks',
      'not a channel',
      '"not a channel" has blanks, control characters or invisible characters in it, which no Slack id has',
    ],
    [
      'an invisible character',
      'C0123\u200b',
      '"C0123\\u200B" has blanks, control characters or invisible characters in it',
    ],
    [
      'a control character',
      'C0123\u0085',
      '"C0123\\u0085" has blanks, control characters or invisible characters in it',
    ],
    ['nothing', '', '"" is blank'],
    ['more than 255 characters', `C${'1'.repeat(255)}`, '"… is longer than 255 characters (256)'],
  ])(
    'refuses a --channel with %s, as a notification saved with it would be, naming it escaped',
    (_what, channel, said) => {
      let err = '';
      const program = localProgram()
        .exitOverride()
        .configureOutput({ writeErr: (t) => (err += t), writeOut: () => undefined });
      expect(() => program.parse(['node', 'local.js', '--channel', channel])).toThrow();
      expect(err).toContain('is invalid. expected a Slack channel id such as C0123456789: "');
      expect(err).toContain(said);
    },
  );

  it("takes a --channel conversation id Slack could have, and refuses a channel's name or a user's id, saying what to give", () => {
    const parse = (channel: string) =>
      localProgram()
        .exitOverride()
        .configureOutput({ writeErr: () => undefined })
        .parse(['node', 'local.js', '--channel', channel]);
    for (const channel of ['C0123456789', 'G012AB', 'D0123456789', `C${'X'.repeat(254)}`]) {
      expect(parse(channel).opts().channel).toBe(channel);
    }
    for (const [channel, said] of [
      ['général', "looks like a channel's name: give the channel's id (C…"],
      ['#general', "looks like a channel's name"],
      ['U0123456789', "is a user's id: give the id of the app's direct message channel with them (D…)"],
    ] as const) {
      expect(() => parse(channel)).toThrow(said);
    }
  });

  it('takes LOG_LEVEL as the log level, as the services read it, unless --log-level is given', () => {
    const level = (env: NodeJS.ProcessEnv, ...args: string[]) => parseArgs(['node', 'local.js', ...args], env).logLevel;
    expect(level({})).toBe('info');
    expect(level({ LOG_LEVEL: 'debug' })).toBe('debug');
    expect(level({ LOG_LEVEL: ' warn ' })).toBe('warn');
    expect(level({ LOG_LEVEL: '' })).toBe('info');
    expect(level({ LOG_LEVEL: '  ' })).toBe('info');
    expect(level({ LOG_LEVEL: 'debug' }, '--log-level', 'error')).toBe('error');
    expect(level({ LOG_LEVEL: 'loud' }, '--log-level', 'error')).toBe('error');
    expect(help().replace(/\s+/g, ' ')).toContain('default: $LOG_LEVEL, else info');
  });

  it('answers a usage error with the error and where the help is, not the whole help under it', () => {
    let err = '';
    const program = localProgram()
      .exitOverride()
      .configureOutput({ writeErr: (t) => (err += t), writeOut: () => undefined });
    expect(() => program.parse(['node', 'local.js', '--bogus'])).toThrow();
    expect(err).toContain("error: unknown option '--bogus'");
    expect(err).toContain('(npm start -- --help lists every option)');
    expect(err).not.toContain('Options:');
  });

  it.each([
    [{ npm_lifecycle_event: 'start' }, ' (npm start -n 5 without -- passes only "5" on: npm takes -n for its own)\n'],
    [{}, 'as in npm start -- --once -n 5\n'],
  ])('says a lone number under npm is the value of an -n npm took (%j)', (env, ending) => {
    let err = '';
    jest.spyOn(process.stderr, 'write').mockImplementation((t) => {
      err += String(t);
      return true;
    });
    jest.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    try {
      expect(() => parseArgs(['node', 'local.js', '5'], env)).toThrow('exit 2');
    } finally {
      jest.restoreAllMocks();
    }
    expect(err.split('\n')[0]).toMatch(/^error: "5" is not an option: npm start takes options alone/);
    expect(`${err.split('\n')[0]}\n`.endsWith(ending)).toBe(true);
  });

  it('has its help pasted in the README exactly as it prints', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const pasted = /```\nnpm start -- --help\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(pasted).toBe(help());
  });
});

describe('startedByNpm', () => {
  it('is true under an npm script, which npm names, and false for node started by hand', () => {
    expect(startedByNpm({ npm_lifecycle_event: 'start' })).toBe(true);
    expect(startedByNpm({})).toBe(false);
    expect(startedByNpm({ npm_lifecycle_event: '' })).toBe(false);
  });
});

describe('--slack-faults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slack-faults-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  /** parseArgs's usage error for the arguments: its first line, and the exit code. */
  function usageError(args: string[], env: NodeJS.ProcessEnv = {}): { line: string; code: number } {
    let err = '';
    let code = -1;
    jest.spyOn(process.stderr, 'write').mockImplementation((t) => {
      err += String(t);
      return true;
    });
    jest.spyOn(process, 'exit').mockImplementation((c) => {
      code = Number(c);
      throw new Error(`exit ${c}`);
    });
    try {
      expect(() => parseArgs(['node', 'local.js', ...args], env)).toThrow(/^exit /);
    } finally {
      jest.restoreAllMocks();
    }
    return { line: err.split('\n')[0] ?? '', code };
  }

  it('reads the rules, and a seed, as POST /_admin/faults takes them', () => {
    const rules = [{ channelPrefix: 'C0', times: 5, respond: { kind: 'http', status: 503 } }];
    expect(
      parseArgs(['node', 'local.js', '--slack-faults', file('list.json', JSON.stringify(rules))], {}).slackFaults,
    ).toEqual({
      file: join(dir, 'list.json'),
      rules,
    });
    // A BOM, as some editors save JSON.
    const withSeed = file('seed.json', `\uFEFF${JSON.stringify({ rules, seed: 7 })}`);
    expect(readSlackFaults(withSeed)).toEqual({ file: withSeed, rules, seed: 7 });
  });

  it.each([
    ['missing.json', null, /cannot read ".*missing\.json": no such file$/],
    ['.', null, /cannot read ".*": a directory, not a file$/],
    ['bad.json', '[{"respond":', /"\S*bad\.json" is not JSON: /],
    ['empty.json', '', /"\S*empty\.json" is empty: expected what POST \/_admin\/faults takes/],
    ['blank.json', '\uFEFF \n', /"\S*blank\.json" is empty but for blanks: expected/],
    [
      'kind.json',
      '[{"respond":{"kind":"nope"}}]',
      /"\S*kind\.json": 0\.respond\.kind: .*\(the file holds what POST \/_admin\/faults takes/,
    ],
    ['object.json', '{"rule":[]}', /"\S*object\.json": .*rule/],
  ])('refuses %s before anything starts, naming it and the problem, exit 2', (name, text, message) => {
    const path = text === null ? join(dir, name) : file(name, text);
    const { line, code } = usageError(['--slack-faults', path]);
    expect(code).toBe(2);
    expect(line).toMatch(/^error: option '--slack-faults <file>' argument '.*' is invalid\. /);
    expect(line).toMatch(message);
  });

  it('is a usage error with SLACK_BOT_TOKEN, where posts go to real Slack', () => {
    const { line, code } = usageError(['--slack-faults', file('ok.json', '[]'), '--channel', 'C0123456789'], {
      SLACK_BOT_TOKEN: 'xoxb-1',
    });
    expect(code).toBe(2);
    expect(line).toBe(
      'error: --slack-faults is for the local Slack stand-in, and SLACK_BOT_TOKEN is set: posts go to real Slack',
    );
  });
});
