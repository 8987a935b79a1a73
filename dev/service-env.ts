import { loadServiceConfig } from '../shared/auth';
import { ConfigError } from '../shared/config';
import { TOPOLOGY } from '../shared/topology';

/**
 * The environment `npm start` gives the notifier and the dispatcher: this process's own, with
 * what the local run sets over it. Whatever it passes on (SLACK_API_URL with a real token,
 * SLACK_TIMEOUT_MS, DISPATCH_PAGE_SIZE, K_SERVICE…) the services check as they start; so the
 * runner checks it first, with the services' own check, and refuses a bad value as a usage
 * error before anything starts.
 */

export interface ServiceEnvSettings {
  projectId: string;
  /** PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST. */
  emulators: Record<string, string>;
  slackApiUrl: string;
  slackBotToken: string;
  logLevel: string;
  nackDelayMs: number;
}

export function serviceEnv(base: NodeJS.ProcessEnv, s: ServiceEnvSettings): NodeJS.ProcessEnv {
  return {
    ...base,
    ...s.emulators,
    GOOGLE_CLOUD_PROJECT: s.projectId,
    SLACK_API_URL: s.slackApiUrl,
    SLACK_BOT_TOKEN: s.slackBotToken,
    LOG_LEVEL: s.logLevel,
    // The emulator sends no OIDC token; verification is switched off explicitly, here only.
    AUTH_MODE: 'none',
    // The emulator redelivers a nacked message at once: the notifier paces retries instead.
    NACK_DELAY_MS: String(s.nackDelayMs),
    METADATA_SERVER_DETECTION: 'none',
    // Verification is off, so nothing but this machine may reach the services.
    HOST: '127.0.0.1',
    // The status page and the admin API, open to this machine alone (the dispatcher checks HOST).
    ADMIN_OPEN_ON_LOOPBACK: 'true',
    // The run makes the topology under its own names: a dispatcher publishing to another topic
    // would find none there (or one no notifier reads).
    DISPATCH_TOPIC: TOPOLOGY.dispatchTopic,
  };
}

/**
 * What the notifier or the dispatcher would refuse in `env` as it starts (each problem once, in
 * the services' own words, `SLACK_API_URL: must be an http or https URL (got "notaurl")`), or
 * none. PORT is the runner's to set, per service, so a PORT in `env` is not checked.
 */
export function serviceEnvProblems(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  for (const service of ['notifier', 'dispatcher'] as const) {
    try {
      loadServiceConfig(service, { ...env, PORT: '0' });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) if (!problems.includes(p)) problems.push(p);
    }
  }
  return problems;
}

/**
 * Why `npm start` does not run where K_SERVICE is set (on Cloud Run), or null. The services
 * would refuse the run's own AUTH_MODE=none and ADMIN_OPEN_ON_LOOPBACK=true there, and their
 * advice (set AUTH_MODE=oidc) is not the user's to follow: the run sets those itself.
 */
export function cloudRunProblem(base: NodeJS.ProcessEnv): string | null {
  const service = base.K_SERVICE?.trim();
  if (!service) return null;
  return `K_SERVICE is set (${JSON.stringify(base.K_SERVICE)}), which tells the services they run on Cloud Run: npm start runs them on this machine's emulators with token checks off, which they refuse there; unset K_SERVICE to run it here`;
}

/**
 * The variables of `base` the local run sets its own value over for the services, each with
 * what it uses instead, to say so: `npm start` with NACK_DELAY_MS=99999 or AUTH_MODE=oidc in the
 * shell would otherwise run with values other than those the shell shows. PORT is set per
 * service; the emulators' addresses are those of the emulators it starts. A variable set to the
 * value the run uses is not named.
 */
export function variablesSetOver(base: NodeJS.ProcessEnv, s: ServiceEnvSettings): string[] {
  const uses: Record<string, string> = {
    GOOGLE_CLOUD_PROJECT: s.projectId,
    // The shell's address is the run's with a token to post with (then not named); else the stand-in's.
    SLACK_API_URL: 'the Slack stand-in, as no SLACK_BOT_TOKEN is set',
    PUBSUB_EMULATOR_HOST: 'the Pub/Sub emulator it starts',
    FIRESTORE_EMULATOR_HOST: 'the Firestore emulator it starts',
    AUTH_MODE: 'none',
    NACK_DELAY_MS: String(s.nackDelayMs),
    HOST: '127.0.0.1',
    PORT: 'a port of its own per service',
    ADMIN_OPEN_ON_LOOPBACK: 'true',
    DISPATCH_TOPIC: `${TOPOLOGY.dispatchTopic}, the topic of the topology it makes`,
  };
  const ours = serviceEnv({}, s);
  // The dispatch topic by its full name in the run's project is the same topic.
  const same = (name: string, value: string) =>
    value === ours[name] ||
    (name === 'DISPATCH_TOPIC' && value === `projects/${s.projectId}/topics/${TOPOLOGY.dispatchTopic}`);
  return Object.entries(uses)
    .filter(([name]) => {
      const value = base[name]?.trim();
      return value !== undefined && value !== '' && !same(name, value);
    })
    .map(([name, instead]) => `${name}=${JSON.stringify(base[name])} (it uses ${instead})`);
}
