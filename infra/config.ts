import * as pulumi from '@pulumi/pulumi';
import { isEmail, LOG_LEVELS, mayHoldPassword, slackApiUrlSchema, tokenCharacterProblem } from '../shared/config';
import { canonicalTimeZone, isValidTimeZone, observesClockChanges, validateSchedule } from '../shared/schedule';
import { GCP_LIMITS } from './limits';
import { DEFAULT_TICK_CRON, tickCronProblem } from './tick';

/**
 * Every stack configuration key the program reads, in the project's namespace
 * (`pulumi config set <key> <value>`). `slackBotToken` is read apart, as a secret.
 * Pulumi.example.yaml documents each one; a test keeps the two in step.
 */
export const CONFIG_KEYS = [
  'region',
  'firestoreLocation',
  'dispatcherImage',
  'notifierImage',
  'dispatcherMaxInstances',
  'notifierMaxInstances',
  'dispatcherConcurrency',
  'notifierConcurrency',
  'schedulerCron',
  'schedulerTimezone',
  'tickDeadlineSeconds',
  'labels',
  'adminEmails',
  'logLevel',
  'slackApiUrl',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];
export const SECRET_CONFIG_KEYS = ['slackBotToken'] as const;

export type RawConfig = Readonly<Partial<Record<ConfigKey, string>>>;

export interface ConfigContext {
  /** The config namespace (the Pulumi project name), for error messages. */
  namespace: string;
  stack: string;
  /** `gcp:project` and `gcp:region`, the provider's own settings. */
  gcpProject?: string;
  gcpRegion?: string;
  /**
   * The Slack token's value, only to check it is there and not blank (the program itself reads
   * it as a secret Output); left out, it is not checked here.
   */
  slackBotToken?: string;
  /** Every key set in the namespace (`<namespace>:<key>`, as Pulumi keeps them): one the program does not read is named. */
  setKeys?: readonly string[];
}

export interface ServiceSettings {
  maxInstances: number;
  concurrency: number;
}

export interface InfraConfig {
  project: string;
  region: string;
  firestoreLocation: string;
  /** Absent until the images are built: the stack then creates everything the build needs, and no service. */
  images?: { dispatcher: string; notifier: string };
  dispatcher: ServiceSettings;
  notifier: ServiceSettings;
  scheduler: { cron: string; timeZone: string; attemptDeadlineSeconds: number };
  labels: Record<string, string>;
  adminEmails: string[];
  logLevel?: string;
  slackApiUrl?: string;
}

export interface StackConfig extends InfraConfig {
  slackBotToken: pulumi.Output<string>;
}

export interface ConfigProblem {
  key: string;
  message: string;
}

export class InfraConfigError extends Error {
  override readonly name = 'InfraConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`invalid stack configuration:\n${problems.map((p) => `  - ${p.key}: ${p.message}`).join('\n')}`);
  }
}

export const DEFAULTS = Object.freeze({
  dispatcherMaxInstances: 2,
  notifierMaxInstances: 20,
  dispatcherConcurrency: 10,
  notifierConcurrency: 80,
  // Every minute, a cron's finest step: a notification's occurrence waits at most a minute for
  // its tick. Ticks too far apart for the catch-up window are refused (tickCronProblem).
  schedulerCron: DEFAULT_TICK_CRON,
  schedulerTimezone: 'Etc/UTC',
  tickDeadlineSeconds: 300,
});

const RESERVED_LABELS = ['app', 'stack', 'managed-by'];

const REGION = /^[a-z]+-[a-z]+\d+$/;
const FIRESTORE_LOCATION = /^([a-z]+-[a-z]+\d+|[a-z]+\d+)$/;
const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const IMAGE = /^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+(:[\w][\w.-]{0,127}(@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

/**
 * Validates the stack configuration and fills in defaults. Pure, so that every
 * rule is tested with plain objects; it reports every problem at once.
 */
export function parseConfig(raw: RawConfig, ctx: ConfigContext): InfraConfig {
  const problems: ConfigProblem[] = [];
  const key = (k: string) => `${ctx.namespace}:${k}`;
  const fail = (k: string, message: string) => problems.push({ key: k.includes(':') ? k : key(k), message });
  const value = (k: ConfigKey): string | undefined => {
    const v = raw[k]?.trim();
    return v === '' ? undefined : v;
  };

  const int = (k: ConfigKey, fallback: number, min: number, max: number): number => {
    const v = value(k);
    if (v === undefined) return fallback;
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      fail(k, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return fallback;
    }
    return n;
  };

  const project = ctx.gcpProject?.trim() ?? '';
  if (project === '') {
    fail('gcp:project', 'is required: pulumi config set gcp:project <project-id>');
  } else if (!PROJECT_ID.test(project)) {
    fail('gcp:project', `is not a project id (got ${JSON.stringify(project)})`);
  }

  const region = value('region') ?? ctx.gcpRegion?.trim() ?? '';
  if (region === '') {
    fail('region', 'is required: pulumi config set region <region>, for example europe-west1');
  } else if (!REGION.test(region)) {
    fail('region', `is not a Google Cloud region (got ${JSON.stringify(region)})`);
  }

  const firestoreLocation = value('firestoreLocation') ?? region;
  if (value('firestoreLocation') !== undefined && !FIRESTORE_LOCATION.test(firestoreLocation)) {
    fail('firestoreLocation', `is not a Firestore location (got ${JSON.stringify(firestoreLocation)})`);
  }

  const dispatcherImage = value('dispatcherImage');
  const notifierImage = value('notifierImage');
  for (const [k, v] of [
    ['dispatcherImage', dispatcherImage],
    ['notifierImage', notifierImage],
  ] as const) {
    if (v !== undefined && !IMAGE.test(v)) {
      fail(k, `must be an image reference with a tag or a digest (got ${JSON.stringify(v)})`);
    }
  }
  // One image without the other would deploy half a pipeline.
  if ((dispatcherImage === undefined) !== (notifierImage === undefined)) {
    fail(
      dispatcherImage === undefined ? 'dispatcherImage' : 'notifierImage',
      'is required once the other image is set: set both dispatcherImage and notifierImage, or neither',
    );
  }

  const dispatcher: ServiceSettings = {
    maxInstances: int('dispatcherMaxInstances', DEFAULTS.dispatcherMaxInstances, 1, GCP_LIMITS.run.maxInstances),
    concurrency: int('dispatcherConcurrency', DEFAULTS.dispatcherConcurrency, 1, GCP_LIMITS.run.concurrency),
  };
  const notifier: ServiceSettings = {
    maxInstances: int('notifierMaxInstances', DEFAULTS.notifierMaxInstances, 1, GCP_LIMITS.run.maxInstances),
    concurrency: int('notifierConcurrency', DEFAULTS.notifierConcurrency, 1, GCP_LIMITS.run.concurrency),
  };

  const cron = value('schedulerCron') ?? DEFAULTS.schedulerCron;
  let cronValid = true;
  try {
    // The same check as a notification's schedule: five fields, each in its range.
    validateSchedule({ cron, timezone: 'UTC' });
  } catch (err) {
    cronValid = false;
    fail('schedulerCron', `must be a five-field cron expression: ${(err as Error).message}`);
  }
  const timeZone = value('schedulerTimezone') ?? DEFAULTS.schedulerTimezone;
  if (!isValidTimeZone(timeZone)) {
    fail('schedulerTimezone', `is not an IANA time zone (got ${JSON.stringify(timeZone)})`);
  } else {
    // The runtime takes a zone in any case; Cloud Scheduler takes the database's own spelling,
    // where every part of a name starts with a capital (Etc/UTC, America/Port-au-Prince).
    const spelt = canonicalTimeZone(timeZone);
    if (spelt !== timeZone && spelt.toLowerCase() === timeZone.toLowerCase()) {
      fail(
        'schedulerTimezone',
        `is written ${JSON.stringify(spelt)} in the time zone database (got ${JSON.stringify(timeZone)})`,
      );
    } else if (timeZone.split('/').some((part) => !/^[A-Z]/.test(part))) {
      fail(
        'schedulerTimezone',
        `is not written as the time zone database writes it, each part starting with a capital (got ${JSON.stringify(timeZone)}; it is ${JSON.stringify(spelt)})`,
      );
    } else if (observesClockChanges(timeZone)) {
      fail(
        'schedulerTimezone',
        `changes its clocks (got ${JSON.stringify(timeZone)}): Cloud Scheduler may tick once, not twice, through the hour the clocks go back, and an hour without a tick passes over the reports of that hour; the tick's zone changes nothing else (each notification has its own zone): use Etc/UTC, the default`,
      );
    }
  }
  const attemptDeadlineSeconds = int(
    'tickDeadlineSeconds',
    DEFAULTS.tickDeadlineSeconds,
    ...GCP_LIMITS.scheduler.attemptDeadlineSeconds,
  );
  // Whether its ticks come often enough, retried or not, for nothing to fall out of the catch-up window.
  const tickProblem = cronValid ? tickCronProblem(cron, attemptDeadlineSeconds) : null;
  if (tickProblem) fail('schedulerCron', tickProblem);

  const userLabels = parseLabels(value('labels'), (message) => fail('labels', message));
  const labels = { ...userLabels, app: 'slack-fanout', stack: labelValue(ctx.stack), 'managed-by': 'pulumi' };

  const adminEmails = parseList(value('adminEmails'), (message) => fail('adminEmails', message));
  for (const email of adminEmails) {
    // As the dispatcher reads ADMIN_EMAILS: one it would refuse would stop the new revision.
    if (!isEmail(email)) fail('adminEmails', `${JSON.stringify(email)} is not an email address`);
  }

  const logLevel = value('logLevel');
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    fail('logLevel', `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`);
  }

  const slackApiUrl = value('slackApiUrl');
  if (slackApiUrl !== undefined) {
    // As the notifier reads SLACK_API_URL (one it would refuse would stop the new revision), and https.
    const problem = isHttpsUrl(slackApiUrl)
      ? slackApiUrlSchema.safeParse(slackApiUrl).error?.issues[0]?.message
      : 'must be an https URL';
    // A URL that may hold a password is not shown back: Pulumi prints the error to the terminal and CI's log.
    const shown = mayHoldPassword(slackApiUrl) ? '' : ` (got ${JSON.stringify(slackApiUrl)})`;
    if (problem !== undefined) fail('slackApiUrl', `${problem}${shown}`);
  }

  if ('slackBotToken' in ctx) {
    if (ctx.slackBotToken === undefined) {
      fail('slackBotToken', 'is required: pulumi config set --secret slackBotToken xoxb-…');
    } else if (ctx.slackBotToken.trim() === '') {
      fail('slackBotToken', 'is blank: pulumi config set --secret slackBotToken xoxb-…');
    } else {
      // As the notifier reads it at start (blanks at its ends dropped): refused here, before a deploy
      // whose notifier would not start.
      const problem = tokenCharacterProblem(ctx.slackBotToken.trim());
      if (problem !== null) fail('slackBotToken', problem);
    }
  }
  const known: readonly string[] = [...CONFIG_KEYS, ...SECRET_CONFIG_KEYS];
  for (const full of ctx.setKeys ?? []) {
    if (!full.startsWith(`${ctx.namespace}:`)) continue;
    const k = full.slice(ctx.namespace.length + 1);
    if (known.includes(k)) continue;
    // A setting it differs from only in case, or one letter at the end (notifierMaxInstance).
    const lower = k.toLowerCase();
    const near = known.find((c) => {
      const l = c.toLowerCase();
      return l === lower || (Math.abs(l.length - lower.length) === 1 && (l.startsWith(lower) || lower.startsWith(l)));
    });
    fail(
      k,
      `is not a setting of this program${near ? `; did you mean ${key(near)}?` : ''} (settings: ${known.join(', ')})`,
    );
  }

  if (problems.length > 0) throw new InfraConfigError(problems);
  return {
    project,
    region,
    firestoreLocation,
    images:
      dispatcherImage !== undefined && notifierImage !== undefined
        ? { dispatcher: dispatcherImage, notifier: notifierImage }
        : undefined,
    dispatcher,
    notifier,
    scheduler: { cron, timeZone, attemptDeadlineSeconds },
    labels,
    adminEmails,
    logLevel,
    slackApiUrl,
  };
}

/** Reads the stack's configuration; the Slack token stays a secret Output throughout. */
export function loadConfig(): StackConfig {
  const config = new pulumi.Config();
  const gcpConfig = new pulumi.Config('gcp');
  const raw: Partial<Record<ConfigKey, string>> = {};
  for (const k of CONFIG_KEYS) raw[k] = config.get(k);
  const all = pulumi.runtime.allConfig();
  const parsed = parseConfig(raw, {
    namespace: config.name,
    stack: pulumi.getStack(),
    gcpProject: gcpConfig.get('project'),
    gcpRegion: gcpConfig.get('region'),
    // Read here only to be checked with every other key; it is used as the secret Output below.
    slackBotToken: all[`${config.name}:slackBotToken`],
    setKeys: Object.keys(all),
  });
  return { ...parsed, slackBotToken: config.requireSecret('slackBotToken') };
}

function isHttpsUrl(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

/** Label values allow only lowercase letters, digits, `_` and `-`; stack names allow more. */
export function labelValue(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .slice(0, 63);
}

function parseLabels(text: string | undefined, fail: (message: string) => void): Record<string, string> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('must be an object: pulumi config set --path labels.<key> <value>');
    return {};
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    fail('must be an object: pulumi config set --path labels.<key> <value>');
    return {};
  }
  const labels: Record<string, string> = {};
  const entries = Object.entries(parsed);
  // The program's own labels count against Google Cloud's limit too.
  const room = GCP_LIMITS.labelsPerResource - RESERVED_LABELS.length;
  if (entries.length > room) {
    fail(
      `has ${entries.length} labels; at most ${room} (Google Cloud takes ${GCP_LIMITS.labelsPerResource} on a resource, and the program sets ${RESERVED_LABELS.join(', ')})`,
    );
    return {};
  }
  for (const [k, given] of entries) {
    // `pulumi config set --path labels.<key> 1234` (or true) stores a number (or a boolean).
    const v = typeof given === 'number' || typeof given === 'boolean' ? String(given) : given;
    if (RESERVED_LABELS.includes(k)) {
      fail(`${JSON.stringify(k)} is set by the program and cannot be overridden`);
    } else if (!LABEL_KEY.test(k)) {
      fail(`${JSON.stringify(k)} is not a label key (lowercase letters, digits, _ and -, starting with a letter)`);
    } else if (typeof v !== 'string' || !LABEL_VALUE.test(v)) {
      fail(`the value of ${JSON.stringify(k)} must be lowercase letters, digits, _ and - (got ${JSON.stringify(v)})`);
    } else {
      labels[k] = v;
    }
  }
  return labels;
}

/** A list is either a comma-separated string or, set with `--path`, a JSON array. */
function parseList(text: string | undefined, fail: (message: string) => void): string[] {
  if (text === undefined) return [];
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) {
        return parsed.map((x) => x.trim()).filter((x) => x !== '');
      }
    } catch {
      // Reported below, with the same message as any other malformed list.
    }
    fail('must be a comma-separated list or a list of strings');
    return [];
  }
  return text
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}
