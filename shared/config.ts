import { isIP } from 'node:net';
import { deadLetterTopicProblem, topicNameProblem } from './cli-args';
import { EMULATOR_VARIABLES, emulatorAddress } from './emulator-address';
import { postWindowMs } from './errors';
import { quoted } from './model';
import { TOPOLOGY } from './topology';
import { z } from './zod';

/** The services' log levels (LOG_LEVEL), quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Due schedules a tick dispatches at once, unless DISPATCH_SCHEDULE_CONCURRENCY says otherwise. */
export const DEFAULT_SCHEDULE_CONCURRENCY = 16;
/** Of those, runs at once that may read a large part of their index, unless DISPATCH_LARGE_RUNS says otherwise. */
export const DEFAULT_LARGE_RUNS = 4;
/**
 * How long a redrive or a bulk resume of the admin API may take before it is answered 504
 * (ADMIN_DEADLINE_SECONDS); infra/ sets less under a request timeout that would cut it short.
 */
export const DEFAULT_ADMIN_DEADLINE_SECONDS = 240;
/**
 * How long a tick may dispatch before it stops its runs at their checkpoints and answers 503
 * (TICK_DEADLINE_SECONDS): 15 s under Cloud Scheduler's attempt deadline as infra/ sets it by
 * default (300 s), as infra/ sets it from any other.
 */
export const DEFAULT_TICK_DEADLINE_SECONDS = 285;
/** How old an occurrence may be and still be sent, unless CATCHUP_WINDOW_SECONDS says otherwise. */
export const DEFAULT_CATCH_UP_WINDOW_SECONDS = 900;
/** The shortest Slack call timeout taken. */
const SLACK_TIMEOUT_MIN_MS = 100;

/**
 * Every environment variable the services read, in one list. The README's
 * "Configuration" table is this list.
 */
export const ENV = {
  GOOGLE_CLOUD_PROJECT: 'GOOGLE_CLOUD_PROJECT',
  PORT: 'PORT',
  HOST: 'HOST',
  LOG_LEVEL: 'LOG_LEVEL',
  DISPATCH_TOPIC: 'DISPATCH_TOPIC',
  DISPATCH_PAGE_SIZE: 'DISPATCH_PAGE_SIZE',
  DISPATCH_SCHEDULE_CONCURRENCY: 'DISPATCH_SCHEDULE_CONCURRENCY',
  DISPATCH_LARGE_RUNS: 'DISPATCH_LARGE_RUNS',
  DISPATCH_PAGES_IN_FLIGHT: 'DISPATCH_PAGES_IN_FLIGHT',
  DISPATCH_CHECKPOINT_INTERVAL_MS: 'DISPATCH_CHECKPOINT_INTERVAL_MS',
  RUN_LEASE_SECONDS: 'RUN_LEASE_SECONDS',
  CATCHUP_WINDOW_SECONDS: 'CATCHUP_WINDOW_SECONDS',
  SLACK_API_URL: 'SLACK_API_URL',
  SLACK_BOT_TOKEN: 'SLACK_BOT_TOKEN',
  SLACK_TIMEOUT_MS: 'SLACK_TIMEOUT_MS',
  CLAIM_TTL_SECONDS: 'CLAIM_TTL_SECONDS',
  PAUSE_AFTER_FAILURES: 'PAUSE_AFTER_FAILURES',
  NACK_DELAY_MS: 'NACK_DELAY_MS',
  AUTH_MODE: 'AUTH_MODE',
  AUTH_AUDIENCE: 'AUTH_AUDIENCE',
  TICK_INVOKER_EMAIL: 'TICK_INVOKER_EMAIL',
  PUSH_INVOKER_EMAIL: 'PUSH_INVOKER_EMAIL',
  ADMIN_EMAILS: 'ADMIN_EMAILS',
  ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: 'ALLOW_INSECURE_AUTH_ON_CLOUD_RUN',
  ADMIN_OPEN_ON_LOOPBACK: 'ADMIN_OPEN_ON_LOOPBACK',
  ADMIN_DEADLINE_SECONDS: 'ADMIN_DEADLINE_SECONDS',
  TICK_DEADLINE_SECONDS: 'TICK_DEADLINE_SECONDS',
  AUTH_TRUST_CLOUD_RUN_IAM: 'AUTH_TRUST_CLOUD_RUN_IAM',
  /** Set by Cloud Run itself; its presence is how a service knows it runs there. */
  K_SERVICE: 'K_SERVICE',
} as const;

/** A whole number written in decimal: `0x10`, `1e3` or `12abc` are errors, not 16, 1000 or 12. */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    // Whole already (the pattern): `.int()` would add its own "Too big" to a value past 2^53.
    .pipe(z.number().min(min).max(max));

/**
 * The items of a comma-separated list, each with its place in the list as written (1-based,
 * blanks counted), for an error to name; blanks between commas are ignored.
 */
function writtenItems(s: string): { item: string; position: number }[] {
  return s
    .split(',')
    .map((v, i) => ({ item: v.trim(), position: i + 1 }))
    .filter((v) => v.item !== '');
}

/** The items of a comma-separated list; blanks between commas are ignored. */
function listItems(s: string): string[] {
  return writtenItems(s).map((v) => v.item);
}

/** A comma-separated list; blanks between commas are ignored. */
const list = <T extends z.ZodType<string, string>>(item: T) => z.string().transform(listItems).pipe(z.array(item));

// Google writes service-account emails in lower case; comparing lower case avoids a silent 403.
const email = () => z.email().transform((e) => e.toLowerCase());

/** Whether the services take `value` as an email (ADMIN_EMAILS, the invokers'): infra checks with it too. */
export function isEmail(value: string): boolean {
  return email().safeParse(value).success;
}

/** A Google Cloud project id: lower-case letters, digits and hyphens, from a letter (an older one may have a `domain:` prefix). */
const PROJECT_ID = /^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{1,61}[a-z0-9]$/;

/** Why `project` cannot be a Google Cloud project id, or null when it can. */
export function projectIdProblem(project: string): string | null {
  return PROJECT_ID.test(project)
    ? null
    : 'is not a Google Cloud project id (3 to 63 lower-case letters, digits and hyphens, starting with a ' +
        'letter and not ending with a hyphen, after an optional domain: prefix; a project made today has 6 to 30)';
}

/**
 * A host name: dot-separated labels of letters, digits and hyphens (`localhost`, `svc.internal`),
 * and underscores, which resolvers take though host names may not have them (a container's
 * `project_service_1`).
 */
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/**
 * SLACK_API_URL: an http or https URL to which each call's method is added. infra/ checks its
 * slackApiUrl with it, so that a value the notifier would refuse stops the deploy, not the revision.
 */
export const slackApiUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  // Node's fetch refuses a URL with credentials in it: every call would fail, named as a timeout.
  .refine((u) => {
    const url = URL.canParse(u) ? new URL(u) : null;
    return url === null || (url.username === '' && url.password === '');
  }, 'must not carry a user name or password (the token goes in SLACK_BOT_TOKEN)')
  // Each call adds its method to the path: a query or a fragment would end up before it.
  // Written, even empty (`…/api/?`): the URL parser reads an empty one as none.
  .refine(
    (u) => !/[?#]/.test(u),
    'must not have a query or a fragment: each call adds its method (chat.postMessage) to its path',
  );

const schema = z.object({
  projectId: z
    .string()
    .min(1)
    .superRefine((project, ctx) => {
      const problem = projectIdProblem(project);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  port: int(0, 65535).default(8080),
  host: z
    .string()
    .refine((h) => isIP(h) !== 0 || HOST_NAME.test(h), 'is not an IP address or a host name to listen on')
    .optional(),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  dispatchTopic: z
    .string()
    .min(1)
    .superRefine((name, ctx) => {
      const problem = topicNameProblem(name) ?? deadLetterTopicProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default(TOPOLOGY.dispatchTopic),
  // A page is one publish request: the publisher's batch holds up to 1,000 messages.
  dispatchPageSize: int(1, 5000).default(1000),
  // Schedules at once: a small one is a few Firestore round trips, so many at once keep a tick
  // of many schedules short; of those, only DISPATCH_LARGE_RUNS read a large index at once.
  dispatchScheduleConcurrency: int(1, 64).default(DEFAULT_SCHEDULE_CONCURRENCY),
  dispatchLargeRuns: int(1, 32).default(DEFAULT_LARGE_RUNS),
  // Pages of one run being published at once: the next is sent while Pub/Sub answers the last.
  dispatchPagesInFlight: int(1, 16).default(2),
  // The least time between a run's checkpoints: each is a transaction (docs/PERFORMANCE.md, item 24).
  dispatchCheckpointIntervalMs: int(0, 60_000).default(1000),
  runLeaseSeconds: int(5, 3600).default(60),
  catchUpWindowSeconds: int(0, 7 * 24 * 3600).default(DEFAULT_CATCH_UP_WINDOW_SECONDS),
  slackApiUrl: slackApiUrlSchema.default('https://slack.com/api/'),
  slackBotToken: z
    .string()
    .min(1)
    .refine((t) => tokenCharacterProblem(t) === null, {
      error: (issue) => tokenCharacterProblem(issue.input as string) ?? '',
    })
    .optional(),
  // At most 30 s: a timed-out post may still land, and the next attempt must not look for it
  // before it could have (the retry policy's 10 s backoff plus at most 20 s of held nack).
  slackTimeoutMs: int(SLACK_TIMEOUT_MIN_MS, 30_000).default(10_000),
  claimTtlSeconds: int(1, 3600).default(TOPOLOGY.ackDeadlineSeconds),
  pauseAfterFailures: int(1, 1000).default(3),
  nackDelayMs: int(0, 30_000).default(0),
  authMode: z.enum(['oidc', 'none']).default('oidc'),
  authAudience: list(z.string().min(1)).default([]),
  tickInvokerEmail: email().optional(),
  pushInvokerEmail: email().optional(),
  adminEmails: list(email()).default([]),
  allowInsecureAuthOnCloudRun: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
  authTrustCloudRunIam: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
  adminOpenOnLoopback: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
  // A redrive's or bulk resume's deadline (one item's is the lesser of 20 s and it): under the
  // dispatcher's request timeout on Cloud Run, which infra/ sets it from.
  adminDeadlineSeconds: int(1, 3600).default(DEFAULT_ADMIN_DEADLINE_SECONDS),
  // A tick's deadline: under Cloud Scheduler's attempt deadline, which infra/ sets it from.
  tickDeadlineSeconds: int(1, 3600).default(DEFAULT_TICK_DEADLINE_SECONDS),
  cloudRunService: z.string().min(1).optional(),
});

export type Config = z.infer<typeof schema>;

/** The two services; each reads the variables of its own and those of both. */
export type ServiceName = 'dispatcher' | 'notifier';

/**
 * Which service reads each variable (the README's "service" column): a service leaves the
 * other's alone, so one env file for both cannot stop a service on a value it never reads.
 */
const READ_BY: Record<keyof Config, ServiceName | 'both'> = {
  projectId: 'both',
  port: 'both',
  host: 'both',
  logLevel: 'both',
  dispatchTopic: 'dispatcher',
  dispatchPageSize: 'dispatcher',
  dispatchScheduleConcurrency: 'dispatcher',
  dispatchLargeRuns: 'dispatcher',
  dispatchPagesInFlight: 'dispatcher',
  dispatchCheckpointIntervalMs: 'dispatcher',
  runLeaseSeconds: 'dispatcher',
  catchUpWindowSeconds: 'dispatcher',
  slackApiUrl: 'notifier',
  slackBotToken: 'notifier',
  slackTimeoutMs: 'notifier',
  claimTtlSeconds: 'notifier',
  pauseAfterFailures: 'notifier',
  nackDelayMs: 'notifier',
  authMode: 'both',
  authAudience: 'both',
  tickInvokerEmail: 'dispatcher',
  pushInvokerEmail: 'notifier',
  adminEmails: 'dispatcher',
  allowInsecureAuthOnCloudRun: 'both',
  authTrustCloudRunIam: 'both',
  adminOpenOnLoopback: 'dispatcher',
  adminDeadlineSeconds: 'dispatcher',
  tickDeadlineSeconds: 'dispatcher',
  cloudRunService: 'both',
};

const FIELD_TO_ENV: Record<keyof Config, string> = {
  projectId: ENV.GOOGLE_CLOUD_PROJECT,
  port: ENV.PORT,
  host: ENV.HOST,
  logLevel: ENV.LOG_LEVEL,
  dispatchTopic: ENV.DISPATCH_TOPIC,
  dispatchPageSize: ENV.DISPATCH_PAGE_SIZE,
  dispatchScheduleConcurrency: ENV.DISPATCH_SCHEDULE_CONCURRENCY,
  dispatchLargeRuns: ENV.DISPATCH_LARGE_RUNS,
  dispatchPagesInFlight: ENV.DISPATCH_PAGES_IN_FLIGHT,
  dispatchCheckpointIntervalMs: ENV.DISPATCH_CHECKPOINT_INTERVAL_MS,
  runLeaseSeconds: ENV.RUN_LEASE_SECONDS,
  catchUpWindowSeconds: ENV.CATCHUP_WINDOW_SECONDS,
  slackApiUrl: ENV.SLACK_API_URL,
  slackBotToken: ENV.SLACK_BOT_TOKEN,
  slackTimeoutMs: ENV.SLACK_TIMEOUT_MS,
  claimTtlSeconds: ENV.CLAIM_TTL_SECONDS,
  pauseAfterFailures: ENV.PAUSE_AFTER_FAILURES,
  nackDelayMs: ENV.NACK_DELAY_MS,
  authMode: ENV.AUTH_MODE,
  authAudience: ENV.AUTH_AUDIENCE,
  tickInvokerEmail: ENV.TICK_INVOKER_EMAIL,
  pushInvokerEmail: ENV.PUSH_INVOKER_EMAIL,
  adminEmails: ENV.ADMIN_EMAILS,
  allowInsecureAuthOnCloudRun: ENV.ALLOW_INSECURE_AUTH_ON_CLOUD_RUN,
  authTrustCloudRunIam: ENV.AUTH_TRUST_CLOUD_RUN_IAM,
  adminOpenOnLoopback: ENV.ADMIN_OPEN_ON_LOOPBACK,
  adminDeadlineSeconds: ENV.ADMIN_DEADLINE_SECONDS,
  tickDeadlineSeconds: ENV.TICK_DEADLINE_SECONDS,
  cloudRunService: ENV.K_SERVICE,
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Each problem on its own, where the error names several: a caller can add its own to them. */
  readonly problems: string[];

  constructor(message: string, problems: string[] = [message]) {
    super(message);
    this.problems = problems;
  }

  /** One error naming every problem in `problems`, as `invalid configuration: a; b`. */
  static of(problems: string[]): ConfigError {
    return new ConfigError(`invalid configuration: ${problems.join('; ')}`, problems);
  }
}

/** The notifier's one required variable beyond the project (with AUTH_MODE=oidc, the auth ones too). */
export const TOKEN_REQUIRED = `${ENV.SLACK_BOT_TOKEN} is required: the notifier needs a bot token to post`;

/** What reading the configuration found: every problem, and the variables whose values were refused. */
export interface ConfigReading {
  /** The values read; a refused one stands at its default (or unset), for further checks to go on with. */
  config: Config;
  problems: string[];
  /** The variables whose values were refused, by name (`PORT`): a later check leaves them to their problem. */
  refused: Set<string>;
}

/**
 * Reads every variable `service` reads (with none given, every variable) and checks it,
 * going on past a bad value so that every problem is named at once. A value is taken with
 * the blanks around it dropped; one that is empty or only blanks counts as unset.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env, service?: ServiceName): ConfigReading {
  const problems: string[] = [];
  const refused = new Set<string>();
  const values: Record<string, unknown> = {};
  for (const [field, shape] of Object.entries(schema.shape) as [keyof Config, z.ZodType][]) {
    const name = FIELD_TO_ENV[field];
    const readBy = READ_BY[field];
    const written = readBy === 'both' || service === undefined || readBy === service ? env[name]?.trim() : undefined;
    const raw = written === '' ? undefined : written;
    const parsed = shape.safeParse(raw);
    if (parsed.success) {
      values[field] = parsed.data;
      continue;
    }
    refused.add(name);
    problems.push(...parsed.error.issues.map((issue) => fieldProblem(name, raw, issue)));
    const fallback = shape.safeParse(undefined);
    values[field] = fallback.success ? fallback.data : undefined;
  }
  // Checked as the schema's types say; a refused value stands at its default for the checks below.
  const config = values as Config;
  const unrefused = (...names: string[]) => names.every((n) => !refused.has(n));
  // A post starts only on a claim that outlasts the Slack call and as long again, in which a call
  // that timed out may still land (notifier/deliver.ts): a shorter claim would never post, and one
  // shorter than that would let a second attempt post while the first still may.
  if (
    service !== 'dispatcher' &&
    unrefused(ENV.CLAIM_TTL_SECONDS, ENV.SLACK_TIMEOUT_MS) &&
    config.claimTtlSeconds * 1000 <= postWindowMs(config.slackTimeoutMs) + 1000
  ) {
    const neededMs = postWindowMs(config.slackTimeoutMs) + 1000;
    // The fixes, as whole values of each variable: the least claim, and the longest timeout.
    const leastClaim = Math.floor(neededMs / 1000) + 1;
    const longestTimeout = Math.ceil((config.claimTtlSeconds * 1000 - 1000) / 2) - 1;
    const timeoutFix =
      longestTimeout >= SLACK_TIMEOUT_MIN_MS ? `, or ${ENV.SLACK_TIMEOUT_MS} to ${longestTimeout} or less` : '';
    problems.push(
      `${ENV.CLAIM_TTL_SECONDS} (${config.claimTtlSeconds} s) must be more than ${neededMs / 1000} s, twice ${ENV.SLACK_TIMEOUT_MS} (${config.slackTimeoutMs} ms) and a second: a post starts only while its claim outlasts the call and as long again, in which a call that timed out may still land; set ${ENV.CLAIM_TTL_SECONDS} to ${leastClaim} or more${timeoutFix}`,
    );
  }
  // A checkpoint renews the run's lease: the lease must outlast several intervals.
  if (
    service !== 'notifier' &&
    unrefused(ENV.DISPATCH_CHECKPOINT_INTERVAL_MS, ENV.RUN_LEASE_SECONDS) &&
    config.dispatchCheckpointIntervalMs * 4 > config.runLeaseSeconds * 1000
  ) {
    problems.push(
      `${ENV.DISPATCH_CHECKPOINT_INTERVAL_MS} (${config.dispatchCheckpointIntervalMs} ms) must be at most a quarter of ${ENV.RUN_LEASE_SECONDS} (${config.runLeaseSeconds} s), as each checkpoint renews the run's lease`,
    );
  }
  if (service === 'notifier' && !config.slackBotToken && unrefused(ENV.SLACK_BOT_TOKEN)) problems.push(TOKEN_REQUIRED);
  // The emulators' addresses, read by the clients: Pub/Sub's never says it has a bad one.
  for (const [client, variable] of Object.entries(EMULATOR_VARIABLES)) {
    // As the client reads it: blanks are not dropped (an empty value is unset, for the clients too).
    const value = env[variable];
    if (!value || (service === 'notifier' && client === 'Pub/Sub')) continue;
    const at = emulatorAddress(variable, value);
    if (at.problem !== undefined) {
      refused.add(variable);
      problems.push(at.problem);
    }
  }
  return { config, problems, refused };
}

/**
 * Why a bot token cannot be one, or null: a Slack token is printable ASCII. One with another
 * character was mangled in the copy (an ellipsis from an example, a line break); past U+00FF or
 * a control character, it cannot even go in the HTTP header that carries it, and each call
 * failed before it left, read as a Slack that did not answer. Named by its code point and
 * place, the token itself never shown.
 */
export function tokenCharacterProblem(token: string): string | null {
  const at = token.search(/[^\x20-\x7e]/);
  if (at < 0) return null;
  const code = token.codePointAt(at) ?? 0;
  const name = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `holds ${name} at character ${at + 1}, which no Slack token has (a token is printable ASCII): copy the token again, whole, from the app's settings (OAuth & Permissions)`;
}

/** Whether a URL as written may hold a user's password (`user:pw@host`), so is not shown back. */
export function mayHoldPassword(url: string): boolean {
  return url.includes('@');
}

/** One problem of a variable's value, naming the variable (and, in a list, the item). */
function fieldProblem(name: string, raw: string | undefined, issue: z.core.$ZodIssue): string {
  if (raw === undefined) return `${name} is required`;
  // An item of a list: name the item, not the whole list, by its place as written.
  const index = issue.path[0];
  if (typeof index === 'number') {
    const written = writtenItems(raw)[index];
    return `${name}: item ${written?.position ?? index + 1}, ${JSON.stringify(written?.item)}: ${issue.message}`;
  }
  // The value of a secret is never echoed back, nor a URL that may hold a password (`user:pw@`).
  const secret = name === ENV.SLACK_BOT_TOKEN || (name === ENV.SLACK_API_URL && mayHoldPassword(raw));
  // A message that quotes the value already (a topic name's) is not followed by it again.
  const shown = secret || issue.message.includes(quoted(raw)) ? '' : ` (got ${JSON.stringify(raw)})`;
  return `${name}: ${issue.message}${shown}`;
}

/**
 * Reads and validates the configuration (of `service`, or with none given, of both); throws
 * a ConfigError naming every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, service?: ServiceName): Config {
  const { config, problems } = readConfig(env, service);
  if (problems.length > 0) throw ConfigError.of(problems);
  return config;
}

/**
 * The configuration with secrets removed, for a start-up log line: of `service`, only what it
 * reads (another service's fields would show defaults it never took from the environment).
 */
export function describeConfig(config: Config, service?: ServiceName): Record<string, unknown> {
  const { slackBotToken, ...rest } = config;
  const read = (field: string) => service === undefined || [service, 'both'].includes(READ_BY[field as keyof Config]);
  const shown = Object.fromEntries(Object.entries(rest).filter(([field]) => read(field)));
  return read('slackBotToken') ? { ...shown, slackBotToken: slackBotToken ? '[set]' : '[not set]' } : shown;
}
