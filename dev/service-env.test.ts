import {
  cloudRunProblem,
  type ServiceEnvSettings,
  serviceEnv,
  serviceEnvProblems,
  variablesSetOver,
} from './service-env';

const settings: ServiceEnvSettings = {
  projectId: 'slack-fanout-local',
  emulators: { PUBSUB_EMULATOR_HOST: '127.0.0.1:1', FIRESTORE_EMULATOR_HOST: '127.0.0.1:2' },
  slackApiUrl: 'http://127.0.0.1/api/',
  slackBotToken: 'xoxb-local-standin',
  logLevel: 'info',
  nackDelayMs: 10_000,
};

describe('serviceEnvProblems (what npm start refuses before anything starts)', () => {
  it('finds nothing in the environment npm start makes of a plain one', () => {
    expect(serviceEnvProblems(serviceEnv({ PATH: '/usr/bin' }, settings))).toEqual([]);
  });

  it('names a bad SLACK_API_URL in the notifier’s own words', () => {
    expect(serviceEnvProblems(serviceEnv({}, { ...settings, slackApiUrl: 'notaurl' }))).toEqual([
      'SLACK_API_URL: must be an http or https URL (got "notaurl")',
    ]);
  });

  it('names each variable passed on that a service would refuse, once, whichever service reads it', () => {
    const env = serviceEnv({ SLACK_TIMEOUT_MS: 'abc', DISPATCH_PAGE_SIZE: '0', K_SERVICE: 'somewhere' }, settings);
    const problems = serviceEnvProblems(env);
    expect(problems).toEqual([
      'SLACK_TIMEOUT_MS: must be a whole number (got "abc")',
      expect.stringMatching(/^AUTH_MODE=none is refused on Cloud Run \(K_SERVICE=somewhere\)/),
      expect.stringMatching(/^DISPATCH_PAGE_SIZE: .*\(got "0"\)$/),
      'ADMIN_OPEN_ON_LOOPBACK=true is refused on Cloud Run (K_SERVICE=somewhere)',
    ]);
  });

  it('leaves alone what npm start sets over: a PORT, HOST, LOG_LEVEL or AUTH_MODE of the shell', () => {
    const env = serviceEnv({ PORT: 'abc', HOST: '0.0.0.0', LOG_LEVEL: 'loud', AUTH_MODE: 'oidc' }, settings);
    expect(serviceEnvProblems(env)).toEqual([]);
  });
});

describe('variablesSetOver (what npm start says it does not use)', () => {
  it('names each variable of the shell the run sets its own over, with what it uses instead', () => {
    const shell = {
      PATH: '/usr/bin',
      NACK_DELAY_MS: '99999',
      AUTH_MODE: 'oidc',
      PORT: '8080',
      PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
      GOOGLE_CLOUD_PROJECT: 'my-prod',
      SLACK_TIMEOUT_MS: '5000',
      DISPATCH_TOPIC: 'custom-topic',
    };
    expect(variablesSetOver(shell, settings)).toEqual([
      'GOOGLE_CLOUD_PROJECT="my-prod" (it uses slack-fanout-local)',
      'PUBSUB_EMULATOR_HOST="127.0.0.1:8085" (it uses the Pub/Sub emulator it starts)',
      'AUTH_MODE="oidc" (it uses none)',
      'NACK_DELAY_MS="99999" (it uses 10000)',
      'PORT="8080" (it uses a port of its own per service)',
      'DISPATCH_TOPIC="custom-topic" (it uses slack-fanout-dispatch, the topic of the topology it makes)',
    ]);
    // And the dispatcher it starts publishes to that topic, whatever the shell says.
    expect(serviceEnv(shell, settings).DISPATCH_TOPIC).toBe('slack-fanout-dispatch');
  });

  it('names SLACK_API_URL when the run posts to the stand-in (no token), and not when it posts with a token', () => {
    const shell = { SLACK_API_URL: 'https://slack.example/api/' };
    expect(variablesSetOver(shell, settings)).toEqual([
      'SLACK_API_URL="https://slack.example/api/" (it uses the Slack stand-in, as no SLACK_BOT_TOKEN is set)',
    ]);
    expect(variablesSetOver(shell, { ...settings, slackApiUrl: 'https://slack.example/api/' })).toEqual([]);
  });

  it('names none that is unset, empty, or the value the run uses', () => {
    expect(variablesSetOver({ AUTH_MODE: 'none', HOST: '127.0.0.1', NACK_DELAY_MS: '', PATH: '/x' }, settings)).toEqual(
      [],
    );
    // The dispatch topic by its id, or by its full name in the run's project.
    for (const DISPATCH_TOPIC of [
      'slack-fanout-dispatch',
      'projects/slack-fanout-local/topics/slack-fanout-dispatch',
    ]) {
      expect(variablesSetOver({ DISPATCH_TOPIC }, settings)).toEqual([]);
    }
  });
});

describe('cloudRunProblem (npm start where K_SERVICE is set)', () => {
  it('names K_SERVICE and what to do, not the variables the run sets itself', () => {
    const problem = cloudRunProblem({ K_SERVICE: 'foo' });
    expect(problem).toContain('K_SERVICE is set ("foo")');
    expect(problem).toContain('unset K_SERVICE to run it here');
    expect(problem).not.toContain('AUTH_MODE=oidc');
    expect(cloudRunProblem({ K_SERVICE: '  ' })).toBeNull();
    expect(cloudRunProblem({})).toBeNull();
  });
});
