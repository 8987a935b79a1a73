import fc from 'fast-check';
import { type Config, ConfigError, describeConfig, ENV, loadConfig } from './config';
import { TOPOLOGY } from './topology';

const base = { [ENV.GOOGLE_CLOUD_PROJECT]: 'my-project' };
const TOKEN = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  return configErrorOf(() => loadConfig(env));
}

/** The ConfigError `load` throws; a failed test if it throws none. */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('the configuration was accepted');
}

describe('loadConfig', () => {
  it('fills the defaults from only the project id', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      projectId: 'my-project',
      port: 8080,
      logLevel: 'info',
      dispatchTopic: TOPOLOGY.dispatchTopic,
      dispatchPageSize: 1000,
      dispatchScheduleConcurrency: 16,
      dispatchLargeRuns: 4,
      dispatchPagesInFlight: 2,
      dispatchCheckpointIntervalMs: 1000,
      runLeaseSeconds: 60,
      catchUpWindowSeconds: 900,
      slackApiUrl: 'https://slack.com/api/',
      slackTimeoutMs: 10_000,
      claimTtlSeconds: TOPOLOGY.ackDeadlineSeconds,
      pauseAfterFailures: 3,
    });
    expect(config.slackBotToken).toBeUndefined();
  });

  it('reads numbers from their variables', () => {
    const config = loadConfig({ ...base, PORT: '9090', DISPATCH_PAGE_SIZE: '2', CATCHUP_WINDOW_SECONDS: '0' });
    expect(config.port).toBe(9090);
    expect(config.dispatchPageSize).toBe(2);
    expect(config.catchUpWindowSeconds).toBe(0);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ ...base, PORT: '', SLACK_BOT_TOKEN: '' })).toMatchObject({
      port: 8080,
      slackBotToken: undefined,
    });
  });

  it('treats a variable of only blanks as unset too, never as 0', () => {
    expect(loadConfig({ ...base, PORT: ' ', CATCHUP_WINDOW_SECONDS: '  \t', SLACK_BOT_TOKEN: ' ' })).toMatchObject({
      port: 8080,
      catchUpWindowSeconds: 900,
      slackBotToken: undefined,
    });
  });

  it('reads a number with blanks around it', () => {
    expect(loadConfig({ ...base, PORT: ' 9090 ' }).port).toBe(9090);
  });

  it('names the item of a list that is bad by its place as written, blanks counted', () => {
    const message = configError({ ...base, ADMIN_EMAILS: 'ops@example.com,,bad' }).message;
    expect(message).toContain('ADMIN_EMAILS: item 3, "bad"');
    expect(message.match(/ADMIN_EMAILS/g)).toHaveLength(1);
    expect(configError({ ...base, ADMIN_EMAILS: ' , ,ops@example.com, ,worse' }).message).toContain(
      'ADMIN_EMAILS: item 5, "worse"',
    );
    expect(configError({ ...base, ADMIN_EMAILS: 'bad,ops@example.com' }).message).toContain(
      'ADMIN_EMAILS: item 1, "bad"',
    );
  });

  it('does not read process.env when given an env', () => {
    const saved = process.env.GOOGLE_CLOUD_PROJECT;
    process.env.GOOGLE_CLOUD_PROJECT = 'from-process-env';
    try {
      expect(loadConfig(base).projectId).toBe('my-project');
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_CLOUD_PROJECT;
      else process.env.GOOGLE_CLOUD_PROJECT = saved;
    }
  });

  it.each([
    ['missing', {}],
    ['empty', { GOOGLE_CLOUD_PROJECT: '' }],
  ])('fails naming GOOGLE_CLOUD_PROJECT when it is %s', (_what, env) => {
    expect(configError(env).message).toContain('GOOGLE_CLOUD_PROJECT');
  });

  it.each(['Bad_Proj', 'ab', 'my-project-', '1project', 'my project'])(
    'fails naming GOOGLE_CLOUD_PROJECT and the rule when it is %j, which no project can be',
    (project) => {
      const { message } = configError({ GOOGLE_CLOUD_PROJECT: project });
      expect(message).toContain('GOOGLE_CLOUD_PROJECT');
      expect(message).toContain('is not a Google Cloud project id (3 to 63 lower-case letters');
    },
  );

  it('takes a project id with an older domain: prefix', () => {
    expect(loadConfig({ GOOGLE_CLOUD_PROJECT: 'example.com:my-project' }).projectId).toBe('example.com:my-project');
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['DISPATCH_PAGE_SIZE', '0'],
    ['RUN_LEASE_SECONDS', '-1'],
    ['CLAIM_TTL_SECONDS', 'abc'],
    ['PAUSE_AFTER_FAILURES', '1e9'],
    ['SLACK_TIMEOUT_MS', 'soon'],
    ['SLACK_TIMEOUT_MS', '30001'],
    ['LOG_LEVEL', 'loud'],
    ['SLACK_API_URL', 'not a url'],
    ['SLACK_API_URL', 'ftp://slack.example/api/'],
    ['DISPATCH_PAGE_SIZE', '0x10'],
    ['PORT', '1e3'],
    ['DISPATCH_PAGES_IN_FLIGHT', '2 pages'],
    ['DISPATCH_CHECKPOINT_INTERVAL_MS', '-1'],
    ['DISPATCH_CHECKPOINT_INTERVAL_MS', '60001'],
    ['DISPATCH_TOPIC', 'bad/topic'],
    ['DISPATCH_TOPIC', 'goog-topic'],
    ['DISPATCH_TOPIC', 'projects/p/subscriptions/s'],
  ])('names %s when it is %j, and shows the bad value', (name, value) => {
    const message = configError({ ...base, [name]: value }).message;
    expect(message).toContain(name);
    expect(message).toContain(JSON.stringify(value));
  });

  it.each([
    ['a user name and password', 'https://user:pw@slack.example/api/', 'must not carry a user name or password'],
    ['a user name', 'https://user@slack.example/api/', 'must not carry a user name or password'],
    ['a query', 'http://127.0.0.1:9806/api/?x=1', 'must not have a query or a fragment'],
    ['a fragment', 'http://127.0.0.1:9806/api/#x', 'must not have a query or a fragment'],
    ['an empty query', 'https://slack.com/api/?', 'must not have a query or a fragment'],
    ['an empty fragment', 'https://slack.com/api/#', 'must not have a query or a fragment'],
    ['a password with an @ in it', 'https://u:p@ss@slack.example/api/', 'must not carry a user name or password'],
    ['a password with a / in it', 'https://u:se/cret@slack.example/api/', 'must be an http or https URL'],
  ])('refuses a SLACK_API_URL with %s, never showing a password', (_what, url, says) => {
    const message = configError({ ...base, SLACK_API_URL: url }).message;
    expect(message).toContain(`SLACK_API_URL: ${says}`);
    // A URL that may hold a password is not shown at all; another is.
    if (url.includes('@')) expect(message).not.toContain('@');
    else expect(message).toContain(JSON.stringify(url));
  });

  it('takes a dispatch topic as an id or as a full name', () => {
    expect(loadConfig({ ...base, DISPATCH_TOPIC: 'fanout.dispatch-2' }).dispatchTopic).toBe('fanout.dispatch-2');
    expect(loadConfig({ ...base, DISPATCH_TOPIC: 'projects/p/topics/t-1' }).dispatchTopic).toBe(
      'projects/p/topics/t-1',
    );
  });

  it('refuses the dead-letter topic as the dispatch topic: what a tick published there would be recorded dead', () => {
    for (const topic of ['slack-fanout-dead-letter', 'projects/p/topics/slack-fanout-dead-letter']) {
      expect(configError({ ...base, DISPATCH_TOPIC: topic }).message).toContain(
        `DISPATCH_TOPIC: ${topic} is the dead-letter topic`,
      );
    }
  });

  it('names a number past 2^53 by its range alone, once', () => {
    const message = configError({ ...base, PORT: '99999999999999999999' }).message;
    expect(message.match(/PORT: /g)).toHaveLength(1);
    expect(message).toContain('PORT: must be at most 65535');
  });

  it('shows a bad value once, where its problem quotes it already', () => {
    const message = configError({ ...base, DISPATCH_TOPIC: 'ab' }).message;
    expect(message.split('"ab"')).toHaveLength(2);
  });

  it('names every bad variable at once', () => {
    const message = configError({ PORT: 'x', DISPATCH_PAGE_SIZE: 'y' }).message;
    for (const name of ['GOOGLE_CLOUD_PROJECT', 'PORT', 'DISPATCH_PAGE_SIZE']) expect(message).toContain(name);
  });
});

describe('the Slack token stays secret', () => {
  it('is read', () => {
    expect(loadConfig({ ...base, SLACK_BOT_TOKEN: TOKEN }).slackBotToken).toBe(TOKEN);
  });

  it('never appears in a ConfigError, whatever else is wrong', () => {
    const message = configError({ PORT: 'x', LOG_LEVEL: 'loud', SLACK_BOT_TOKEN: TOKEN }).message;
    expect(message).not.toContain(TOKEN);
    expect(message).not.toContain(TOKEN.slice(5, 20));
  });

  it('never appears in describeConfig, which says only whether it is set', () => {
    const described = describeConfig(loadConfig({ ...base, SLACK_BOT_TOKEN: TOKEN }));
    expect(JSON.stringify(described)).not.toContain(TOKEN);
    expect(described.slackBotToken).toBe('[set]');
    expect(describeConfig(loadConfig(base)).slackBotToken).toBe('[not set]');
    // The rest is still there for the start-up log line.
    expect(described.projectId).toBe('my-project');
  });

  it('refuses a token with a character beyond printable ASCII, naming the character and its place, never the token', () => {
    for (const [token, said] of [
      ['xoxb-…', 'holds U+2026 at character 6'],
      // A line break inside it (one at an end is dropped with the blanks, as of every variable).
      [`xoxb-1\n2`, 'holds U+000A at character 7'],
      [`xoxb-12\u00e934`, 'holds U+00E9 at character 8'],
    ] as const) {
      const message = configError({ ...base, SLACK_BOT_TOKEN: token }).message;
      expect(message).toContain(`SLACK_BOT_TOKEN: ${said}, which no Slack token has (a token is printable ASCII)`);
      expect(message).not.toContain(token.trim());
    }
  });

  it('holds for any token and any broken configuration (property)', () => {
    const token = fc
      .string({
        unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-"\\ '),
        minLength: 12,
        maxLength: 80,
      })
      .map((t) => `xoxb-${t}`);
    const broken = fc.subarray(['PORT', 'DISPATCH_PAGE_SIZE', 'LOG_LEVEL', 'GOOGLE_CLOUD_PROJECT'], { minLength: 1 });
    fc.assert(
      fc.property(token, broken, (t, names) => {
        const env: NodeJS.ProcessEnv = { ...base, SLACK_BOT_TOKEN: t };
        for (const n of names) env[n] = n === 'GOOGLE_CLOUD_PROJECT' ? '' : 'bad-value';
        expect(configError(env).message).not.toContain(t);
        const ok: Config = loadConfig({ ...base, SLACK_BOT_TOKEN: t });
        expect(JSON.stringify(describeConfig(ok))).not.toContain(t);
      }),
      { numRuns: 100 },
    );
  });
});

describe('claim and Slack timeout', () => {
  it('refuses a claim that would not outlast the Slack call, naming both variables', () => {
    expect(() =>
      loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', CLAIM_TTL_SECONDS: '5', SLACK_TIMEOUT_MS: '10000' }),
    ).toThrow(/CLAIM_TTL_SECONDS.*SLACK_TIMEOUT_MS/);
    expect(
      loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', CLAIM_TTL_SECONDS: '5', SLACK_TIMEOUT_MS: '1000' })
        .claimTtlSeconds,
    ).toBe(5);
  });
});

describe('checkpoint interval and run lease', () => {
  it('refuses an interval longer than a quarter of the lease each checkpoint renews, naming both variables', () => {
    const env = { GOOGLE_CLOUD_PROJECT: 'my-project', RUN_LEASE_SECONDS: '8' };
    expect(() => loadConfig({ ...env, DISPATCH_CHECKPOINT_INTERVAL_MS: '2001' })).toThrow(
      /DISPATCH_CHECKPOINT_INTERVAL_MS \(2001 ms\).*RUN_LEASE_SECONDS \(8 s\)/,
    );
    expect(loadConfig({ ...env, DISPATCH_CHECKPOINT_INTERVAL_MS: '2000' }).dispatchCheckpointIntervalMs).toBe(2000);
    expect(loadConfig({ ...env, DISPATCH_CHECKPOINT_INTERVAL_MS: '0' }).dispatchCheckpointIntervalMs).toBe(0);
  });
});

describe('the claim against the Slack timeout', () => {
  const claimProblem = (env: Record<string, string>) =>
    configErrorOf(() => loadConfig({ ...base, SLACK_BOT_TOKEN: TOKEN, ...env }, 'notifier')).problems.find((p) =>
      p.startsWith('CLAIM_TTL_SECONDS'),
    );

  it('names the least claim and the longest timeout that fix it, and each fix is taken', () => {
    for (const [claim, timeout] of [
      ['11', '10000'],
      ['21', '10000'],
      ['60', '30000'],
      ['3', '1500'],
    ] as const) {
      const problem = claimProblem({ CLAIM_TTL_SECONDS: claim, SLACK_TIMEOUT_MS: timeout }) ?? '';
      const least = /to (\d+) or more/.exec(problem)?.[1];
      const longest = /SLACK_TIMEOUT_MS to (\d+) or less/.exec(problem)?.[1];
      expect({ claim, timeout, least: least !== undefined, longest: longest !== undefined }).toEqual({
        claim,
        timeout,
        least: true,
        longest: true,
      });
      const env = (c: string, t: string) => ({
        ...base,
        SLACK_BOT_TOKEN: TOKEN,
        CLAIM_TTL_SECONDS: c,
        SLACK_TIMEOUT_MS: t,
      });
      // Each fix is the edge: taken as said, refused one step short.
      expect(loadConfig(env(least as string, timeout), 'notifier').claimTtlSeconds).toBe(Number(least));
      expect(claimProblem({ CLAIM_TTL_SECONDS: String(Number(least) - 1), SLACK_TIMEOUT_MS: timeout })).toBeDefined();
      expect(loadConfig(env(claim, longest as string), 'notifier').slackTimeoutMs).toBe(Number(longest));
      expect(claimProblem({ CLAIM_TTL_SECONDS: claim, SLACK_TIMEOUT_MS: String(Number(longest) + 1) })).toBeDefined();
    }
  });

  it('offers no timeout below the least one taken', () => {
    const problem = claimProblem({ CLAIM_TTL_SECONDS: '1', SLACK_TIMEOUT_MS: '100' });
    expect(problem).toMatch(/must be more than 1.2 s, .*; set CLAIM_TTL_SECONDS to 2 or more$/);
  });
});

describe('each service reads its own variables', () => {
  it("leaves the notifier's variables alone in the dispatcher, and the dispatcher's in the notifier", () => {
    const shared = { ...base, CLAIM_TTL_SECONDS: '11', SLACK_API_URL: 'slack.com/api' };
    const dispatcher = loadConfig(shared, 'dispatcher');
    expect(dispatcher.claimTtlSeconds).toBe(TOPOLOGY.ackDeadlineSeconds);
    expect(dispatcher.slackApiUrl).toBe('https://slack.com/api/');
    const notifier = configErrorOf(() => loadConfig(shared, 'notifier'));
    expect(notifier.problems).toEqual([
      expect.stringMatching(/^SLACK_API_URL: must be an http or https URL/),
      expect.stringMatching(
        /^CLAIM_TTL_SECONDS \(11 s\) must be more than 21 s, twice SLACK_TIMEOUT_MS \(10000 ms\) and a second: .*; set CLAIM_TTL_SECONDS to 22 or more, or SLACK_TIMEOUT_MS to 4999 or less$/,
      ),
      'SLACK_BOT_TOKEN is required: the notifier needs a bot token to post',
    ]);
    const dispatcherOnly = configErrorOf(() => loadConfig({ ...base, DISPATCH_PAGE_SIZE: '0' }, 'dispatcher'));
    expect(dispatcherOnly.problems).toEqual([expect.stringMatching(/^DISPATCH_PAGE_SIZE: /)]);
    expect(loadConfig({ ...base, DISPATCH_PAGE_SIZE: '0', SLACK_BOT_TOKEN: TOKEN }, 'notifier').dispatchPageSize).toBe(
      1000,
    );
  });

  it('checks every variable when no service is named', () => {
    const err = configError({ ...base, CLAIM_TTL_SECONDS: '11', DISPATCH_PAGE_SIZE: '0' });
    expect(err.problems).toEqual([
      expect.stringMatching(/^DISPATCH_PAGE_SIZE: /),
      expect.stringMatching(/^CLAIM_TTL_SECONDS \(11 s\) must be more than /),
    ]);
  });

  it('names a bad value together with the rules between variables that still hold', () => {
    const err = configError({ ...base, PORT: 'abc', CLAIM_TTL_SECONDS: '5' });
    expect(err.problems).toEqual([
      'PORT: must be a whole number (got "abc")',
      expect.stringMatching(/^CLAIM_TTL_SECONDS \(5 s\) must be more than /),
    ]);
    // A refused side of a rule is named once, not again by the rule.
    expect(configError({ ...base, SLACK_TIMEOUT_MS: 'soon', CLAIM_TTL_SECONDS: '5' }).problems).toEqual([
      expect.stringMatching(/^SLACK_TIMEOUT_MS: must be a whole number/),
    ]);
  });
});

describe("the emulators' addresses", () => {
  const bad = {
    ...base,
    SLACK_BOT_TOKEN: TOKEN,
    PUBSUB_EMULATOR_HOST: 'localhost:abc',
    FIRESTORE_EMULATOR_HOST: '127.0.0.1:99999',
  };

  it('are checked as the services start, each named with what it holds', () => {
    expect(configErrorOf(() => loadConfig(bad, 'dispatcher')).problems).toEqual([
      expect.stringMatching(
        /^FIRESTORE_EMULATOR_HOST="127\.0\.0\.1:99999" is not an emulator address: expected host:port/,
      ),
      expect.stringMatching(/^PUBSUB_EMULATOR_HOST="localhost:abc" is not an emulator address/),
    ]);
  });

  it("leave the notifier's start alone for Pub/Sub, which it does not use", () => {
    expect(configErrorOf(() => loadConfig(bad, 'notifier')).problems).toEqual([
      expect.stringMatching(/^FIRESTORE_EMULATOR_HOST=/),
    ]);
    expect(() => loadConfig({ ...bad, FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' }, 'notifier')).not.toThrow();
  });

  it('take host:port, as each client reads it', () => {
    for (const address of ['127.0.0.1:8085', 'emulators.internal:443']) {
      expect(() =>
        loadConfig({ ...base, PUBSUB_EMULATOR_HOST: address, FIRESTORE_EMULATOR_HOST: address }, 'dispatcher'),
      ).not.toThrow();
    }
    const clients = { PUBSUB_EMULATOR_HOST: 'http://localhost:8085/', FIRESTORE_EMULATOR_HOST: '[::1]:8080' };
    expect(() => loadConfig({ ...base, ...clients }, 'dispatcher')).not.toThrow();
  });

  it('refuse blanks around an address, and a host without a port, which the clients would not reach', () => {
    const err = configErrorOf(() =>
      loadConfig(
        { ...base, PUBSUB_EMULATOR_HOST: 'localhost', FIRESTORE_EMULATOR_HOST: ' 127.0.0.1:8080' },
        'dispatcher',
      ),
    );
    expect(err.problems).toEqual([
      expect.stringMatching(/^FIRESTORE_EMULATOR_HOST=" 127\.0\.0\.1:8080" is not an emulator address/),
      expect.stringMatching(/^PUBSUB_EMULATOR_HOST="localhost" is not an emulator address/),
    ]);
    // Empty is unset, for the clients too.
    expect(() => loadConfig({ ...base, PUBSUB_EMULATOR_HOST: '' }, 'dispatcher')).not.toThrow();
  });
});

describe('describeConfig of a service', () => {
  it("shows what the service reads, not the other's fields at defaults it never read", () => {
    const config = loadConfig({ ...base, SLACK_BOT_TOKEN: TOKEN });
    const notifier = describeConfig(config, 'notifier');
    expect(notifier).toMatchObject({ projectId: 'my-project', claimTtlSeconds: 60, slackBotToken: '[set]' });
    expect(notifier).not.toHaveProperty('dispatchPageSize');
    expect(notifier).not.toHaveProperty('dispatchTopic');
    const dispatcher = describeConfig(config, 'dispatcher');
    expect(dispatcher).toMatchObject({ dispatchPageSize: 1000, dispatchTopic: TOPOLOGY.dispatchTopic });
    expect(dispatcher).not.toHaveProperty('slackBotToken');
    expect(dispatcher).not.toHaveProperty('claimTtlSeconds');
  });
});

describe('blanks around a value', () => {
  it('are dropped from every value, not only numbers', () => {
    const config = loadConfig({
      ...base,
      GOOGLE_CLOUD_PROJECT: ' my-project ',
      LOG_LEVEL: 'info ',
      AUTH_MODE: ' none',
      ADMIN_OPEN_ON_LOOPBACK: 'true ',
      DISPATCH_TOPIC: 'slack-fanout-dispatch\t',
      HOST: ' 127.0.0.1 ',
    });
    expect(config).toMatchObject({
      projectId: 'my-project',
      logLevel: 'info',
      authMode: 'none',
      adminOpenOnLoopback: true,
      dispatchTopic: 'slack-fanout-dispatch',
      host: '127.0.0.1',
    });
  });
});

describe('HOST', () => {
  it.each(['127.0.0.1', '0.0.0.0', '::1', '::', 'localhost', 'svc-1.internal', 'fd00::1', 'project_service_1'])(
    'takes %s',
    (host) => {
      expect(loadConfig({ ...base, HOST: host }).host).toBe(host);
    },
  );

  it.each(['not a host', 'http://127.0.0.1', '127.0.0.1:8080', '[::1]', '-host', 'a..b'])(
    'refuses %j, naming it',
    (host) => {
      expect(configError({ ...base, HOST: host }).problems).toEqual([
        `HOST: is not an IP address or a host name to listen on (got ${JSON.stringify(host)})`,
      ]);
    },
  );
});
