#!/usr/bin/env node
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { type Firestore, type Query, Timestamp } from '@google-cloud/firestore';
import type { PubSub } from '@google-cloud/pubsub';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { GoogleAuth } from 'google-auth-library';
import pino from 'pino';
import {
  deadLetterTopicProblem,
  nonBlankText,
  optionTakenAsValue,
  positiveInt,
  refuseExcessArguments,
  refuseOptionSlips,
  takeExcessArguments,
  topicName,
} from '../shared/cli-args';
import { raceTimeout, within } from '../shared/concurrency';
import { projectIdProblem } from '../shared/config';
import { EMULATOR_VARIABLES, type EmulatedService, emulatorAddress } from '../shared/emulator-address';
import { abandonedAtTerminate, createFirestore } from '../shared/firestore';
import { buildQuery, FirestoreStore } from '../shared/firestore-store';
import { CODES, grpcCode } from '../shared/grpc';
import { withTimeout } from '../shared/http';
import { firstFaultOffset, keyPathText, keysGivenTwiceIfShallow } from '../shared/json-keys';
import { createLogger, type Logger } from '../shared/logger';
import { indexedSchedule } from '../shared/members';
import { canonicalRunId, runIdProblem } from '../shared/messages';
import {
  type Account,
  accountSchema,
  checkedPauseReason,
  DELIVERY_STATUSES,
  type DeliveryDoc,
  type DeliveryStatus,
  documentStorageSize,
  endsDelivery,
  escapedUnshowable,
  excerpt,
  loneSurrogatePath,
  lookalikeIdNote,
  looksBlank,
  MAX_DOCUMENT_BYTES,
  MAX_PAUSE_REASON_CHARS,
  metricSchema,
  newIdProblem,
  quoted,
  reasonHint,
  storedCount,
  userIdProblem,
  webUrlSchema,
} from '../shared/model';
import { connectProblem, http2Problem } from '../shared/net';
import {
  DEFAULT_PAUSE_REASON,
  deleteNotification,
  enabledOutput,
  missingAccounts,
  type NewNotification,
  nextRunOf,
  notificationProblems,
  type PausedSelector,
  pausedQuery,
  RESUME_PAGE_SIZE,
  RESUME_PAGE_SIZE_MAX,
  type ResumePausedResult,
  reindexNotifications,
  resumePaused,
  SaveInterrupted,
  type SaveOptions,
  saveAccounts,
  saveNotifications,
  setNotificationEnabled,
} from '../shared/notifications';
import { QUERIES } from '../shared/queries';
import {
  addRunResult,
  emptyRunsResult,
  firestoreRedriveLedger,
  markInterrupted,
  pausedLeftPhrase,
  REDRIVE_PAGE_SIZE,
  REDRIVE_PAGE_SIZE_MAX,
  REDRIVE_STRANDED_AFTER_MS,
  type RedrivePublisher,
  type RedriveResult,
  type RedriveRunsResult,
  redrivable,
  redriveRun,
  runSummary,
} from '../shared/redrive';
import { dashboardUrlProblem } from '../shared/report';
import { MAX_CRON_CHARS, MAX_TIMEZONE_CHARS, SCHEDULE_ID_PATTERN, timeZoneCaution } from '../shared/schedule';
import { onStopSignals, type StopSignal, type StopSignals, signalExitCode, stoppingLine } from '../shared/signals';
import { COLLECTIONS, TOPOLOGY } from '../shared/topology';
import { counted } from '../shared/words';
import { z } from '../shared/zod';

/**
 * `slack-fanout`: the operator's command line. It talks to Firestore and Pub/Sub directly
 * with the caller's own Google credentials (or the emulators, when their env vars are set).
 */

const newNotificationSchema = z.strictObject({
  // Blank ids and fields are named as such by notificationDoc ("is blank"), with the rest.
  id: z.string().min(1),
  accountId: z.string().min(1),
  channelId: z.string(),
  teamId: z.string().optional(),
  cron: z.string().min(1),
  timezone: z.string().min(1),
  // Its length is checked with the rest of the save (notificationDoc), as every save's is.
  title: z.string().optional(),
  enabled: z.boolean().optional(),
});

/** Text that shows something: not empty, nor only blanks and invisible characters. */
const notBlank = (text: string) => !looksBlank(text);

const newAccountSchema = accountSchema
  .extend({
    id: z.string().min(1),
    // A misspelt field of a metric (`chnage`) is named, not dropped: the report would lack it.
    // A blank label or highlight would show as an empty bold mark or bullet.
    metrics: z
      .array(metricSchema.extend({ label: metricSchema.shape.label.refine(notBlank, 'is blank') }).strict())
      .default([]),
    highlights: z.array(z.string().refine(notBlank, 'is blank')).default([]),
    // A link in a Slack message: the web's own schemes only.
    dashboardUrl: webUrlSchema
      .superRefine((url, ctx) => {
        const problem = dashboardUrlProblem(url);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    // The report's title is "{name}: scheduled report": a blank name is a mistake.
    name: z.string().min(1).refine(notBlank, 'is blank'),
  })
  .strict();

export type NewAccount = { id: string; account: Account };

/**
 * The exit codes, as `--help` and the README list them: 0 done; 1 a failure while doing the work
 * (Firestore or Pub/Sub out of reach, a write that failed, a bulk resume or redrive that left
 * some undone); 2 bad input or usage, before anything is written (an unknown command or option, a bad file
 * or id, a notification or run that does not exist, no project, no credentials); 130 interrupted.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** An error the command line reports in one line, with its exit code (bad input unless said). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}

/** How long a command waits for Firestore or Pub/Sub to take a connection before it gives up. */
const REACH_TIMEOUT_MS = 5000;
type Service = EmulatedService;
const SERVICE_HOST: Record<Service, string> = {
  Firestore: 'firestore.googleapis.com',
  'Pub/Sub': 'pubsub.googleapis.com',
};
/** With a proxy, the clients connect through it: a direct probe would say nothing. */
const PROXY_VARIABLES = ['grpc_proxy', 'https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'];

/** Where a command looks for a service, as its errors say: the emulator, or the project and credentials. */
export function whereService(service: Service, projectId: string, env: NodeJS.ProcessEnv = process.env): string {
  const variable = EMULATOR_VARIABLES[service];
  if (env[variable]) return `${variable}=${env[variable]}`;
  const credentials = env.GOOGLE_APPLICATION_CREDENTIALS
    ? `GOOGLE_APPLICATION_CREDENTIALS=${env.GOOGLE_APPLICATION_CREDENTIALS}`
    : 'application-default credentials';
  return `${SERVICE_HOST[service]} for project ${projectId}, with ${credentials}`;
}

/** Host and port of an emulator address, or a CliError that names the variable (emulatorAddress). */
export function emulatorHostPort(variable: string, address: string): { host: string; port: number } {
  const at = emulatorAddress(variable, address);
  if (at.problem !== undefined) throw new CliError(at.problem);
  return at;
}

/** Both emulator variables, when set, are addresses (emulatorAddress). */
export function checkEmulatorVariables(env: NodeJS.ProcessEnv = process.env): void {
  for (const variable of Object.values(EMULATOR_VARIABLES)) {
    const value = env[variable];
    if (value) emulatorHostPort(variable, value);
  }
}

/** Where the command's Firestore is, once it has one: named by an error that reaches it no more. */
let firestoreAt: string | undefined;

/**
 * A quick check, before a command's first call, that a service takes a connection: the clients
 * themselves retry an address that does not answer for most of a minute, then fail with a raw
 * gRPC error. One TCP connection (instant on an emulator, one round trip off it) costs the
 * normal path next to nothing.
 */
async function checkReachable(service: Service, projectId: string, env: NodeJS.ProcessEnv = process.env) {
  const emulator = env[EMULATOR_VARIABLES[service]];
  if (!emulator && PROXY_VARIABLES.some((v) => env[v])) return;
  const { host, port } = emulator
    ? emulatorHostPort(EMULATOR_VARIABLES[service], emulator)
    : { host: SERVICE_HOST[service], port: 443 };
  const why = await connectProblem(host, port, REACH_TIMEOUT_MS);
  if (why) {
    throw new CliError(
      `cannot reach ${service} at ${whereService(service, projectId, env)}: ${why}${emulator ? ' (is the emulator running?)' : ''}`,
      EXIT.failed,
    );
  }
  // Another server at the emulator's address (a neighbouring port: the Slack stand-in, a
  // service) takes the connection and never answers a gRPC call: said now, not after 10 s.
  // An HTTP/1 server answers the preface at once; one that is silent is left to the first call's deadline.
  const notGrpc = emulator ? await http2Problem(host, port, HTTP2_PROBE_TIMEOUT_MS) : null;
  if (notGrpc) {
    throw new CliError(
      `cannot use ${service}: ${whereService(service, projectId, env)} took the connection, but ${notGrpc}: is that the ${service} emulator's address?`,
      EXIT.failed,
    );
  }
}

/** How long an emulator's address may take to answer HTTP/2's preface before nothing is concluded from it. */
const HTTP2_PROBE_TIMEOUT_MS = 1000;

/** How long the first read may take before the command gives up on a Firestore that took the connection. */
const FIRST_ANSWER_TIMEOUT_MS = 10_000;

/** What checkEnvironment has passed in this process: nothing, Firestore's needs, or Pub/Sub's as well. */
let environmentChecked: 'none' | 'firestore' | 'publishing' = 'none';

/**
 * The emulator addresses, then the credentials (for Pub/Sub too when the command publishes),
 * before anything is dialled. Called as a command opens its clients, once it has checked what
 * was typed (its arguments, its file): a usage error is then named as such on a machine without
 * credentials too.
 */
async function checkEnvironment(publishes: boolean): Promise<void> {
  if (environmentChecked === 'publishing' || (environmentChecked === 'firestore' && !publishes)) return;
  checkEmulatorVariables();
  await checkCredentials(publishes);
  environmentChecked = publishes ? 'publishing' : 'firestore';
}

/**
 * The command's Firestore client, once Firestore is known to take a connection and to answer a
 * first read: a server that accepts connections but does not answer (a stopped emulator, an
 * overloaded one) would otherwise hold the command, silent, with no deadline.
 */
async function openFirestore(projectId: string): Promise<Firestore> {
  await checkEnvironment(false);
  await checkReachable('Firestore', projectId);
  firestoreAt = whereService('Firestore', projectId);
  const db = createFirestore(projectId);
  let silent = false;
  try {
    await withTimeout(db.collection(COLLECTIONS.schedules).limit(1).get(), FIRST_ANSWER_TIMEOUT_MS, () => {
      silent = true;
      return `Firestore at ${firestoreAt} took the connection but did not answer a first read within ${FIRST_ANSWER_TIMEOUT_MS / 1000} s`;
    });
  } catch (err) {
    void db.terminate().catch(() => undefined);
    if (silent || isUnreachable(err)) {
      throw new CliError(`cannot use Firestore: ${(err as Error).message}`, EXIT.failed);
    }
    if (grpcCode(err) === CODES.UNIMPLEMENTED) throw notThatService('Firestore', projectId, err);
    throw err;
  }
  return db;
}

/** A server that took the first call but has no such method: another service at that address (the two emulator variables swapped). */
function notThatService(service: Service, projectId: string, err: unknown): CliError {
  const other = service === 'Firestore' ? 'Pub/Sub' : 'Firestore';
  const emulated = Boolean(process.env[EMULATOR_VARIABLES[service]]);
  return new CliError(
    `cannot use ${service}: ${whereService(service, projectId)} answered, but not as ${service} (${(err as Error).message})${emulated ? `; is that the ${other} emulator's address?` : ''}${service === 'Pub/Sub' ? '; nothing was redriven' : ''}`,
    EXIT.failed,
  );
}

/** An error of a connection lost or never made (gRPC UNAVAILABLE or DEADLINE_EXCEEDED), here or in its causes. */
function isUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = grpcCode(e);
    if (code === CODES.UNAVAILABLE || code === CODES.DEADLINE_EXCEEDED) return true;
  }
  return false;
}

/**
 * `redrive --topic`: a topic name (topicName), and not the dead-letter topic: a message
 * published there is recorded dead again at once, with nothing posted, while the redrive
 * counts it redriven.
 */
export function redriveTopic(value: string): string {
  const name = topicName(value);
  const problem = deadLetterTopicProblem(name);
  if (problem !== null) {
    throw new InvalidArgumentError(
      `${problem}; a redrive publishes to the dispatch topic (${TOPOLOGY.dispatchTopic} unless you named it otherwise)`,
    );
  }
  return name;
}

/**
 * Before anything is reopened: the redrive's topic, where it exists, has a subscription, so
 * what is published there reaches a notifier. Without one, Pub/Sub takes the messages and delivers them
 * to no one, and the deliveries would wait as retrying until they expire. A caller that may
 * publish but not list the topic's subscriptions is told so, and the redrive goes on.
 */
async function checkRedriveTopic(pubsub: PubSub, topic: string, projectId: string): Promise<void> {
  let subscriptions: unknown[];
  // Redrive's first Pub/Sub call: a Pub/Sub that took the connection but answers nothing (a
  // stopped emulator) is said within the same 10 s as such a Firestore, before anything is reopened.
  let silent = false;
  try {
    [subscriptions] = await withTimeout(pubsub.topic(topic).getSubscriptions(), FIRST_ANSWER_TIMEOUT_MS, () => {
      silent = true;
      return `Pub/Sub at ${whereService('Pub/Sub', projectId)} took the connection but did not answer a first call (listing the subscriptions of topic ${topic}) within ${FIRST_ANSWER_TIMEOUT_MS / 1000} s; nothing was redriven`;
    });
  } catch (err) {
    if (silent) throw new CliError(`cannot use Pub/Sub: ${(err as Error).message}`, EXIT.failed);
    if (grpcCode(err) === CODES.NOT_FOUND) throw noSuchTopic(topic, projectId);
    if (grpcCode(err) === CODES.UNIMPLEMENTED) throw notThatService('Pub/Sub', projectId, err);
    // A caller that may publish but not list: the check alone is passed over.
    if (grpcCode(err) === CODES.PERMISSION_DENIED) {
      process.stderr.write(
        `redrive: may not list the subscriptions of topic ${topic} (${(err as Error).message}); going on without that check\n`,
      );
      return;
    }
    throw new CliError(
      `cannot use Pub/Sub at ${whereService('Pub/Sub', projectId)}: listing the subscriptions of topic ${topic} failed (${(err as Error).message}); nothing was redriven`,
      EXIT.failed,
    );
  }
  if (subscriptions.length > 0) return;
  // The emulator lists none for a topic that does not exist, where Pub/Sub answers NOT_FOUND.
  const [exists] = await withTimeout(pubsub.topic(topic).exists(), FIRST_ANSWER_TIMEOUT_MS, () => {
    return `Pub/Sub at ${whereService('Pub/Sub', projectId)} did not say within ${FIRST_ANSWER_TIMEOUT_MS / 1000} s whether topic ${topic} exists; nothing was redriven`;
  }).catch((err: unknown) => {
    throw new CliError(`cannot use Pub/Sub: ${(err as Error).message}`, EXIT.failed);
  });
  if (!exists) throw noSuchTopic(topic, projectId);
  throw new CliError(
    `topic ${topic} has no subscription: what is published there reaches no notifier; nothing was redriven (${DISPATCH_TOPIC_NOTE})`,
  );
}

const DISPATCH_TOPIC_NOTE = `the dispatch topic is ${TOPOLOGY.dispatchTopic} unless you named it otherwise`;

/** A redrive's topic that does not exist (noSuchTopic). */
class TopicMissing extends CliError {}

/** A redrive's topic that does not exist: said before anything is reopened. */
function noSuchTopic(topic: string, projectId: string): CliError {
  return new TopicMissing(
    // A full name (projects/…/topics/…) names its own project.
    `topic ${topic} does not exist${topic.includes('/') ? '' : ` in project ${projectId}`}; nothing was redriven (${DISPATCH_TOPIC_NOTE})`,
  );
}

export function failureOf(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*Resolution note:\s*$/, '');
  if (isUnreachable(err)) {
    return { message: `lost Firestore${firestoreAt ? ` at ${firestoreAt}` : ''}: ${message}`, exitCode: EXIT.failed };
  }
  return { message, exitCode: EXIT.failed };
}

function projectOf(opts: { project?: string }): string {
  // Blanks around it dropped, and only blanks read as unset, as the services read GOOGLE_CLOUD_PROJECT.
  const project = opts.project?.trim() ?? (process.env.GOOGLE_CLOUD_PROJECT?.trim() || undefined);
  if (opts.project !== undefined && opts.project.trim() === '') {
    throw new CliError(`--project is blank (${quoted(opts.project)}): name the Google Cloud project`);
  }
  if (!project) throw new CliError('no project: pass --project or set GOOGLE_CLOUD_PROJECT');
  const problem = projectIdProblem(project);
  if (problem) throw new CliError(`project ${quoted(project)} ${problem}`);
  return project;
}

/**
 * Off the emulators, Google credentials must be there before a command starts: the clients
 * would otherwise fail later, in the background, with a stack trace.
 */
async function checkCredentials(usesPubSub: boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (env.FIRESTORE_EMULATOR_HOST && (!usesPubSub || env.PUBSUB_EMULATOR_HOST)) return;
  try {
    await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getClient();
  } catch (err) {
    const file = env.GOOGLE_APPLICATION_CREDENTIALS;
    const fix = file
      ? `make GOOGLE_APPLICATION_CREDENTIALS (${quoted(file, MAX_SHOWN_PATH)}) name a readable credentials file (a service account key, or the file \`gcloud auth application-default login\` writes), or unset it and run that command`
      : 'run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS';
    throw new CliError(
      `no Google credentials (${credentialsProblem((err as Error).message)}): ${fix}; ${emulatorsNote(usesPubSub, env)}`,
    );
  }
}

/**
 * What a credentials error says of the emulators: which variable is missing where one of the
 * two is set (a command copied with FIRESTORE_EMULATOR_HOST alone, then made a redrive).
 */
function emulatorsNote(usesPubSub: boolean, env: NodeJS.ProcessEnv): string {
  if (env.FIRESTORE_EMULATOR_HOST && usesPubSub) {
    return 'FIRESTORE_EMULATOR_HOST is set, but not PUBSUB_EMULATOR_HOST, which redrive needs as well (it publishes to Pub/Sub): set it for the Pub/Sub emulator';
  }
  if (env.PUBSUB_EMULATOR_HOST && !env.FIRESTORE_EMULATOR_HOST) {
    return 'PUBSUB_EMULATOR_HOST is set, but not FIRESTORE_EMULATOR_HOST: set it for the Firestore emulator';
  }
  return 'for the emulators set FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST';
}

/** The longest path an error shows whole: Linux's PATH_MAX. */
const MAX_SHOWN_PATH = 4096;

/**
 * The auth library's reason, on one line and to its first sentence's end: a path's dots
 * (`/home/me/.config/…`) are not one, and a pointer to its docs is left out.
 */
export function credentialsProblem(message: string): string {
  const line = message.replace(/\s+/g, ' ').trim();
  const end = line.search(/\.\s+(?=[A-Z])/);
  return escapedUnshowable(excerpt(end === -1 ? line.replace(/\.$/, '') : line.slice(0, end), 400));
}

/** A notification as `list` shows it: what says who gets what, when, and whether it is paused. */
function listed(id: string, d: Record<string, unknown>): Record<string, unknown> {
  const slack = (d.slack ?? {}) as { channelId?: unknown; teamId?: unknown };
  const schedule = (d.schedule ?? {}) as { cron?: unknown; timezone?: unknown };
  return {
    id,
    accountId: d.accountId ?? null,
    channelId: slack.channelId ?? null,
    ...(slack.teamId ? { teamId: slack.teamId } : {}),
    cron: schedule.cron ?? null,
    timezone: schedule.timezone ?? null,
    enabled: d.enabled !== false,
    ...(typeof d.pausedReason === 'string' ? { pausedReason: d.pausedReason } : {}),
  };
}

/** The query `list` pages through: every notification, or the paused ones, of every schedule or of one. */
function listQuery(db: Firestore, o: { paused?: boolean; schedule?: string }): Query {
  if (o.schedule === undefined) {
    return o.paused
      ? buildQuery(db, QUERIES.disabledNotifications, { enabled: false })
      : buildQuery(db, QUERIES.notificationsById, {});
  }
  return o.paused
    ? buildQuery(db, QUERIES.disabledNotificationsOfSchedule, { scheduleId: o.schedule, enabled: false })
    : buildQuery(db, QUERIES.notificationsOfSchedule, { scheduleId: o.schedule });
}

/** `list --schedule <id>` for a schedule that neither a schedule document nor a notification has. */
export function scheduleNotFound(id: string): string {
  // A schedule's own id is written as it is; another, quoted, with what one looks like.
  if (SCHEDULE_ID_PATTERN.test(id)) return `schedule ${id} does not exist, and no notification has it`;
  return `schedule ${quoted(id, 500)} does not exist, and no notification has it (a schedule id is s_ and 20 hex digits, as a tick's log names it)`;
}

/** What `deliveries` reads of each delivery. */
const LISTED_DELIVERY_FIELDS = [
  'notificationId',
  'attempts',
  'outcomeUnknown',
  'lastError',
  'channelId',
  'postTargets',
  'slackTs',
  'sentAt',
  'updatedAt',
] as const;

/** A delivery as `deliveries` lists it: what happened to it, and when, without the ledger's claim fields. */
function listedDelivery(id: string, d: Record<string, unknown>): Record<string, unknown> {
  const e = d.lastError as { code?: unknown; slackError?: unknown; message?: unknown; at?: unknown } | null | undefined;
  return {
    id,
    notificationId: d.notificationId ?? null,
    attempts: d.attempts ?? 0,
    // Not sent, though an attempt's post may have landed: the next attempt (a redrive's) looks first.
    ...(d.outcomeUnknown === true && typeof d.slackTs !== 'string' ? { outcomeUnknown: true } : {}),
    ...(e
      ? {
          lastError: {
            code: e.code ?? null,
            ...(typeof e.slackError === 'string' ? { slackError: e.slackError } : {}),
            message: e.message ?? null,
            at: e.at ?? null,
          },
        }
      : {}),
    ...(typeof d.channelId === 'string' ? { channelId: d.channelId } : {}),
    // Where its attempts were to post (a sent one says where it posted, as channelId): the
    // channel a failure speaks of, though the notification may have moved since.
    ...(typeof d.channelId !== 'string' && channelsTried(d.postTargets).length > 0
      ? { channelsTried: channelsTried(d.postTargets) }
      : {}),
    ...(typeof d.slackTs === 'string' ? { slackTs: d.slackTs } : {}),
    ...(d.sentAt ? { sentAt: d.sentAt } : {}),
    updatedAt: d.updatedAt ?? null,
  };
}

/** The channel ids of a delivery's stored post targets, oldest first, each once. */
function channelsTried(targets: unknown): string[] {
  if (!Array.isArray(targets)) return [];
  const ids = targets.map((t) => (t as { channelId?: unknown } | null)?.channelId);
  return [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
}

/** The statuses a redrive sends again, whose runs `dead-runs` and `failed-runs` list. */
export type RedrivenStatus = 'dead' | 'failed';

/** One run that has dead (or failed) deliveries, as `dead-runs` (or `failed-runs`) lists it. */
export type RunOfStatus<S extends RedrivenStatus> = { runId: string } & Record<S, number>;

/**
 * Dead (or failed) deliveries' runs, counted as the deliveries are read (a page at a time: what
 * is kept is a count a run, not the deliveries), each with how many of them it holds, the
 * latest occurrence first (then by id); those that name no run (a record of a message too
 * broken to name one) are counted apart, as no redrive of a run reaches them. Of the failed, a
 * record a broken message left (no attempt made: endsDelivery) is not a failure of its
 * delivery and is not counted: no redrive sends it.
 */
export class RunTally<S extends RedrivenStatus> {
  private readonly byRun = new Map<string, { count: number; occurrence: string }>();
  private withoutRun = 0;
  /** Deliveries counted so far. */
  count = 0;

  constructor(readonly status: S) {}

  /** The fields `add` reads of a delivery: of a failed one, also what tells a failure from a broken message's record. */
  get fields(): string[] {
    return this.status === 'failed' ? ['runId', 'occurrence', 'attempts', 'lastError'] : ['runId', 'occurrence'];
  }

  add(d: Record<string, unknown>): void {
    if (
      this.status === 'failed' &&
      !endsDelivery({
        status: 'failed',
        attempts: storedCount(d.attempts),
        lastError: d.lastError as DeliveryDoc['lastError'],
      })
    ) {
      return;
    }
    this.count += 1;
    if (typeof d.runId !== 'string' || d.runId === '') {
      this.withoutRun += 1;
      return;
    }
    const seen = this.byRun.get(d.runId);
    if (seen) seen.count += 1;
    else this.byRun.set(d.runId, { count: 1, occurrence: typeof d.occurrence === 'string' ? d.occurrence : '' });
  }

  result(): { runs: RunOfStatus<S>[]; withoutRun: number } {
    const runs = [...this.byRun.entries()].sort(([a, x], [b, y]) =>
      x.occurrence < y.occurrence ? 1 : x.occurrence > y.occurrence ? -1 : a < b ? -1 : 1,
    );
    return {
      runs: runs.map(([runId, { count }]) => ({ runId, [this.status]: count }) as RunOfStatus<S>),
      withoutRun: this.withoutRun,
    };
  }
}

/**
 * Every delivery of `status` read into a RunTally, a page at a time; after each full page,
 * `command` says on stderr how many it has read.
 */
async function tallyRuns<S extends RedrivenStatus>(
  store: FirestoreStore,
  status: S,
  pageSize: number,
  stall: { moved(): void },
  command?: string,
): Promise<RunTally<S>> {
  const tally = new RunTally(status);
  let cursor: string | null = null;
  let read = 0;
  for (;;) {
    const page = await store.deliveriesInStatus(status, cursor, pageSize, tally.fields);
    stall.moved();
    read += page.length;
    for (const d of page) tally.add(d.data);
    if (page.length < pageSize) return tally;
    cursor = page.at(-1)?.id ?? null;
    if (command)
      process.stderr.write(`${command}: ${counted(read, `${status} delivery`, `${status} deliveries`)} read so far\n`);
  }
}

/**
 * The runs with deliveries a redrive reopened and did not publish (retrying, still marked:
 * `redrivePending`), which neither dead-runs nor failed-runs lists, read a page at a time.
 */
async function runsLeftReopened(store: FirestoreStore, pageSize: number, stall: { moved(): void }): Promise<string[]> {
  const runs = new Set<string>();
  let cursor: string | null = null;
  let read = 0;
  for (;;) {
    const page = await store.redrivePendingDeliveries(cursor, pageSize, ['runId', 'status']);
    stall.moved();
    read += page.length;
    for (const d of page) {
      // Marked, and still retrying: the mark outlives nothing else, but is read as the redrive reads it.
      if (d.data.status === 'retrying' && typeof d.data.runId === 'string' && d.data.runId !== '') {
        runs.add(d.data.runId);
      }
    }
    if (page.length < pageSize) return [...runs];
    cursor = page.at(-1)?.id ?? null;
    process.stderr.write(
      `redrive: ${counted(read, 'delivery', 'deliveries')} reopened by a redrive and not yet published read so far\n`,
    );
  }
}

/** RunTally over dead `deliveries` at once. */
export function deadRunsOf(deliveries: readonly Record<string, unknown>[]): {
  runs: RunOfStatus<'dead'>[];
  withoutRun: number;
} {
  const tally = new RunTally('dead');
  for (const d of deliveries) tally.add(d);
  return tally.result();
}

/** What a redrive's signal handlers read: whether it has begun reopening, its counts so far, its run under way. */
interface RedriveState {
  started: boolean;
  sofar: string;
  current: string | undefined;
}

/** A redrive's counts, as its progress lines say them. */
function redriveCounts(r: Pick<RedriveResult, 'redriven' | 'skipped' | 'failed' | 'paused'>): string {
  return `${r.redriven} redriven, ${r.skipped} skipped, ${r.failed} failed${r.paused === undefined ? '' : `, ${r.paused} left as ${r.paused === 1 ? 'it is' : 'they are'} (notification paused)`}`;
}

/** Of a run's failed deliveries, those a redrive --failed leaves failed whatever is fixed. */
const FAILED_LEFT_AS_THEY_ARE =
  "one of a notification paused stays failed until it is resumed; one of a notification deleted since, and a broken message's record, stay failed";

/**
 * What a redrive (of one run, or of every run) says on stderr, once done, of what it left:
 * failed deliveries of deleted notifications, dead (and with `failed`, failed) deliveries of
 * paused ones, and deliveries another redrive is to publish. `runs` names what failed-runs
 * still lists; `more`, notifications left unnamed.
 */
function redriveLeftLines(
  r: Pick<RedriveResult, 'deleted' | 'paused' | 'pausedNotifications' | 'waiting' | 'waitingUntil'>,
  o: { runs: string; more: string; failed: boolean },
): string[] {
  const lines: string[] = [];
  const deleted = r.deleted ?? 0;
  if (deleted > 0) {
    lines.push(
      `redrive: ${counted(deleted, 'failed delivery', 'failed deliveries')} left failed, as ${deleted === 1 ? 'its notification is' : 'their notifications are'} deleted: nothing is left to send (counted in skipped; failed-runs still lists ${o.runs}, and a redrive passes ${deleted === 1 ? 'it' : 'them'} over again)\n`,
    );
  }
  const paused = r.paused ?? 0;
  if (paused > 0) {
    const named = r.pausedNotifications ?? [];
    lines.push(
      `redrive: ${pausedLeftPhrase(paused, named.length, o.failed)}: ${named.join(', ')}${o.more}; \`slack-fanout resume <id>\` (or \`resume --paused-reason <code>\`), then redrive again${o.failed ? ' with --failed' : ''}\n`,
    );
  }
  if (r.waiting > 0) {
    lines.push(
      `redrive: ${r.waiting} reopened by another redrive ${r.waiting === 1 ? 'was' : 'were'} waiting for it to publish ${r.waiting === 1 ? 'it' : 'them'} when reached (a redrive still running publishes ${r.waiting === 1 ? 'it' : 'them'} itself: \`slack-fanout run <runId>\` shows what is still retrying); a redrive after ${r.waitingUntil} takes over any a stopped one left\n`,
    );
  }
  return lines;
}

/** What `redrive --all-runs` works with. */
interface AllRunsRedrive {
  store: FirestoreStore;
  pubsub: PubSub;
  publisher: RedrivePublisher;
  topic: string;
  projectId: string;
  pageSize: number;
  failed: boolean;
  stops: StopSignals;
  log: Logger;
  state: RedriveState;
}

/**
 * `redrive --all-runs`: lists the runs with dead deliveries (with `failed`, or failed ones) and
 * those a stopped redrive left deliveries of reopened and unpublished, then redrives each in
 * turn, as `redrive <runId>` would, printing their counts summed.
 */
async function redriveAllRuns(c: AllRunsRedrive): Promise<void> {
  const { store, stops, state } = c;
  const stall = silenceWarning('redrive', 'page', c.projectId);
  let total: RedriveRunsResult;
  let withoutRun: number;
  try {
    const dead = (await tallyRuns(store, 'dead', DEAD_RUNS_PAGE_SIZE, stall, 'redrive')).result();
    const failed = c.failed ? (await tallyRuns(store, 'failed', DEAD_RUNS_PAGE_SIZE, stall, 'redrive')).result() : null;
    withoutRun = dead.withoutRun + (failed?.withoutRun ?? 0);
    const runIds = dead.runs.map((r) => r.runId);
    const listed = new Set(runIds);
    const add = (ids: string[]) => {
      const added = ids.filter((id) => !listed.has(id));
      for (const id of added) listed.add(id);
      runIds.push(...added);
      return added.length;
    };
    const failedAlone = failed ? add(failed.runs.map((r) => r.runId)) : 0;
    // Last, the runs a stopped redrive left deliveries of reopened and unpublished, which
    // neither list names: each run's redrive takes those over (or counts them waiting).
    const reopenedAlone = add(await runsLeftReopened(store, DEAD_RUNS_PAGE_SIZE, stall));
    total = emptyRunsResult(runIds.length, c.failed);
    if (runIds.length > 0) {
      // Nothing to redrive needs no topic: checked only once there is.
      await checkRedriveTopic(c.pubsub, c.topic, c.projectId);
      const kinds = [
        dead.runs.length > 0 ? `${dead.runs.length} with dead deliveries` : '',
        failedAlone > 0 ? `${failedAlone} with failed ones alone` : '',
        reopenedAlone > 0 ? `${reopenedAlone} with deliveries a stopped redrive left reopened alone` : '',
      ].filter((k) => k !== '');
      process.stderr.write(`redrive: ${counted(runIds.length, 'run', 'runs')} to redrive: ${kinds.join(', ')}\n`);
    }
    state.started = true;
    for (const [i, runId] of runIds.entries()) {
      if (stops.signal.aborted) {
        markInterrupted(total);
        break;
      }
      state.current = runId;
      const { redriven, skipped, failed: failedSoFar, paused } = total;
      const result = await redriveRun(runId, {
        ledger: firestoreRedriveLedger(store),
        publisher: c.publisher,
        isDraining: () => stops.signal.aborted,
        log: c.log,
        pageSize: c.pageSize,
        failed: c.failed,
        onProgress: (r) => {
          stall.moved();
          const pausedSoFar =
            paused === undefined && r.paused === undefined ? {} : { paused: (paused ?? 0) + (r.paused ?? 0) };
          state.sofar = `${redriveCounts({ redriven: redriven + r.redriven, skipped: skipped + r.skipped, failed: failedSoFar + r.failed, ...pausedSoFar })} in ${i + 1} of ${runIds.length} runs`;
          process.stderr.write(
            `redrive: run ${i + 1} of ${runIds.length} (${runId}): ${redriveCounts(r)}; ${state.sofar} so far\n`,
          );
        },
      });
      stall.moved();
      addRunResult(total, result);
      if (result.interrupted || result.stopped !== undefined) break;
    }
  } finally {
    stall.stop();
    stops.remove();
  }
  print(total);
  const still = c.failed ? 'dead or failed' : 'dead';
  if (total.listed === 0) process.stderr.write(`redrive: no run has ${still} deliveries: nothing to redrive\n`);
  if (withoutRun > 0) {
    process.stderr.write(
      `redrive: ${counted(withoutRun, `${still} delivery names`, `${still} deliveries name`)} no run, which no redrive reaches (recorded from a message too broken to name one; the notifier's log has each)\n`,
    );
  }
  // A run holds one delivery a notification: a run with more paused than it named, or more
  // names in all than kept, means notifications left unnamed.
  const named = total.pausedNotifications ?? [];
  const unnamed =
    new Set(total.runs.flatMap((r) => r.pausedNotifications ?? [])).size > named.length ||
    total.runs.some((r) => (r.paused ?? 0) > (r.pausedNotifications?.length ?? 0));
  for (const line of redriveLeftLines(total, {
    runs: (total.deleted ?? 0) === 1 ? 'its run' : 'their runs',
    more: unnamed ? ` (the first ${named.length}; others too)` : '',
    failed: c.failed,
  })) {
    process.stderr.write(line);
  }
  // Without --failed, the failed deliveries are counted once the redrive is done, as a hint of
  // how to send them: best-effort and bounded, as the count of a single run's redrive.
  if (!c.failed) {
    const failedRuns = await within(
      tallyRuns(store, 'failed', DEAD_RUNS_PAGE_SIZE, { moved: () => undefined }).catch(() => null),
      REDRIVE_COUNT_MS,
    );
    const left = failedRuns?.result().runs ?? [];
    const count = left.reduce((n, r) => n + r.failed, 0);
    if (count > 0) {
      process.stderr.write(
        `redrive: ${counted(count, 'delivery', 'deliveries')} of ${counted(left.length, 'run', 'runs')} failed (a permanent error, not out of attempts) and ${count === 1 ? 'is' : 'are'} not redriven: redrive sends dead deliveries alone; \`slack-fanout failed-runs\` lists ${left.length === 1 ? 'its run' : 'their runs'}, \`slack-fanout deliveries <runId> --status failed\` says why each failed, and once the cause is fixed \`slack-fanout redrive --all-runs --failed\` sends ${count === 1 ? 'it' : 'them'} again (${FAILED_LEFT_AS_THEY_ARE})\n`,
      );
    }
  }
  // Last, where it stopped: the line to act on.
  const last = total.runs.at(-1);
  const where =
    last && (last.interrupted || last.stopped !== undefined)
      ? `in run ${total.runs.length} of ${total.listed} (${last.runId})`
      : `after ${counted(total.runs.length, 'run', 'runs')} of ${total.listed}`;
  const again = `\`slack-fanout redrive --all-runs${c.failed ? ' --failed' : ''}\``;
  if (total.stopped !== undefined) {
    process.stderr.write(
      `redrive: stopped ${where} (${total.stopped}): what it had not reached is still ${still}; ${again} again takes it once Pub/Sub takes pages\n`,
    );
  }
  if (total.interrupted) {
    process.stderr.write(
      `redrive: interrupted ${where}: what it had not reached is still ${still}; ${again} again takes it (running it again is safe)\n`,
    );
    process.exitCode = stops.exitCode();
  }
  if (total.failed > 0 && !total.interrupted) process.exitCode = EXIT.failed;
}

function print(value: unknown): void {
  // Firestore Timestamps print as ISO times, not as {_seconds, _nanoseconds}.
  const replacer = (_key: string, v: unknown) => (v instanceof Timestamp ? v.toDate().toISOString() : v);
  process.stdout.write(`${JSON.stringify(value, replacer, 2)}\n`);
}

/** A run id as typed (the occurrence in any RFC 3339 spelling) as runs are stored, or a CliError naming what is wrong with it. */
function typedRunId(input: string): string {
  // As copied: from a log or a terminal with blanks around it, or out of a URL (%3A for the colon).
  let typed = input.trim();
  if (/%[0-9A-Fa-f]{2}/.test(typed)) {
    try {
      typed = decodeURIComponent(typed);
    } catch {
      // Not percent-encoding after all: taken as typed.
    }
  }
  docId('run', typed);
  const problem = runIdProblem(typed);
  if (problem) throw new CliError(`run id ${quoted(typed)} ${problem}`);
  return canonicalRunId(typed);
}

/**
 * "run <id>" for a message that it does not exist: an id with a character that does not show (a
 * zero-width space pasted with it) quoted with its escape and the character named, as a
 * notification id's is, since it looks like an id that may well exist.
 */
function runNamed(runId: string): string {
  const note = lookalikeIdNote(runId);
  return note === null ? `run ${runId}` : `run ${quoted(runId, 1100)} (${note})`;
}

/** A Firestore document id as typed on the command line, or a CliError naming it. */
function docId(what: string, id: string, option?: string): string {
  const problem = userIdProblem(id);
  if (problem) throw new CliError(`${option ? `${option}: ` : ''}${what} id ${quoted(id)}: ${problem}`);
  return id;
}

/**
 * The largest file `import` and `import-accounts` read. The whole file is read, decoded and
 * parsed in memory before anything is written (so that a bad entry stops it all): the text takes
 * up to twice its size as a string, and the parsed entries several times more. 128 MiB is over
 * half a million notifications and keeps an import well within Node's default heap (V8 cannot
 * make a string of more than about 512 MiB at all); a bigger set is imported as several files,
 * one after another.
 */
export const MAX_IMPORT_BYTES = 128 * 1024 * 1024;

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** How an import's messages name its file: `-` is standard input, as for most commands that read a file. */
export function sourceName(file: string): string {
  return file === '-' ? 'stdin' : file;
}

/**
 * A file's text (`-`: standard input, to its end): at most `limit` bytes, strict UTF-8 (a
 * byte-order mark is dropped), or a CliError naming it.
 */
export function readText(path: string, limit = MAX_IMPORT_BYTES, stdin: number | string = 0): string {
  const fromStdin = path === '-';
  const file = sourceName(path);
  // `size` null: a pipe or a device, read up to the limit and no further.
  const tooBig = (size: number | null) =>
    new CliError(
      `${file} ${size === null ? 'goes on past' : `is ${mib(size)} (${size} bytes), more than`} the ${mib(limit)} an import reads (the whole file is parsed in memory${size === null ? '; it was read that far and no further' : ''}): split it into several files and import them one after another`,
    );
  let bytes: Buffer | null;
  const source = fromStdin ? stdin : path;
  try {
    const fd = typeof source === 'number' ? source : openSync(source, 'r');
    try {
      // Checked before reading: a huge file would otherwise fill the memory, or fail to read at all.
      const stat = fstatSync(fd);
      if (stat.isFile() && stat.size > limit) throw tooBig(stat.size);
      bytes = readAtMost(fd, limit);
    } finally {
      if (typeof source !== 'number') closeSync(fd);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new CliError(`cannot read ${file}: it is a directory; give the JSON file in it`);
    if (code === 'ENOENT') throw new CliError(`cannot read ${file}: ENOENT (no such file)`);
    throw new CliError(`cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  // A pipe or a device has no size to check first.
  if (bytes === null) throw tooBig(null);
  if (bytes.length === 0) throw new CliError(`${file} is empty: expected a JSON array`);
  try {
    // Strict: a file in another encoding is an error, not ids quietly full of U+FFFD. A BOM is dropped.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') {
      throw new CliError(`${file} is not UTF-8 text: ${firstNonUtf8(bytes)}; convert it to UTF-8`);
    }
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The most one read of an import's input takes: a pipe gives 64 KiB at a time, a file more. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * All that the open descriptor `fd` gives, or null once it has given more than `limit` bytes:
 * a pipe or a device (`/dev/zero`) is read no further than that.
 */
function readAtMost(fd: number, limit: number): Buffer | null {
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      // Standard input left non-blocking by whatever opened it: nothing to read yet.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      continue;
    }
    if (n === 0) return Buffer.concat(chunks, total);
    total += n;
    if (total > limit) return null;
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
}

/** Reads a JSON array of notifications, naming every bad entry. */
export function parseNotificationsFile(text: string, file: string): NewNotification[] {
  const data = parseJsonArray(text, file, 'notifications');
  refuseOtherKind(data, file, { has: 'name', lacks: 'cron', kind: 'accounts', command: 'import-accounts' });
  return parseNotificationEntries(data, (i) => `${file}[${i}]`, { file, keysTwice: keysTwiceByEntry(text) });
}

/**
 * The keys an import file's entries give twice (`{"accountId": "a", "accountId": "b"}`), by
 * entry, each as the path within it (`accountId`, `slack.channelId`): JSON.parse keeps the last
 * without a word, and either may have been meant, so each is named, as an option given twice is.
 */
function keysTwiceByEntry(text: string): Map<number, string[]> {
  const byEntry = new Map<number, string[]>();
  for (const { path, key } of keysGivenTwiceIfShallow(text, Number.POSITIVE_INFINITY)) {
    const [entry, ...within] = path;
    if (typeof entry !== 'number') continue;
    byEntry.set(entry, [...(byEntry.get(entry) ?? []), keyPathText(within, key)]);
  }
  return byEntry;
}

/**
 * A file of the other command's entries (accounts given to `import`, notifications to
 * `import-accounts`) is said as such, rather than as every entry missing a field: each of its
 * entries has a field only the other kind has, and lacks one this kind needs.
 */
function refuseOtherKind(
  data: unknown[],
  file: string,
  other: { has: string; lacks: string; kind: string; command: string },
): void {
  const looksOther = (e: unknown) =>
    typeof e === 'object' && e !== null && Object.hasOwn(e, other.has) && !Object.hasOwn(e, other.lacks);
  if (data.length > 0 && data.every(looksOther)) {
    throw new CliError(
      `${file} looks like a file of ${other.kind} (its entries have "${other.has}" and no "${other.lacks}"): import it with \`slack-fanout ${other.command}\``,
    );
  }
}

/**
 * Whether a file that is not JSON is likely CSV, an export's usual form: named `.csv`, or its
 * first line, not the start of JSON, has a comma in it (a header row, `id,accountId,…`).
 */
function looksLikeCsv(text: string, file: string): boolean {
  const first = text.trimStart().split(/\r\n|\r|\n/, 1)[0] ?? '';
  return /\.csv$/i.test(file) || (!/^[[{"]/.test(first) && first.includes(','));
}

/**
 * Whether a text that is not JSON is likely JSON Lines (NDJSON, another usual export): its first
 * two lines that are not blank are each a JSON object of their own.
 */
function looksLikeJsonLines(text: string): boolean {
  const lines = text
    .split(/\r\n|\r|\n/, 50)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(0, 2);
  return (
    lines.length === 2 &&
    lines.every((l) => {
      try {
        const v: unknown = JSON.parse(l);
        return typeof v === 'object' && v !== null && !Array.isArray(v);
      } catch {
        return false;
      }
    })
  );
}

function parseJsonArray(text: string, file: string, of: string): unknown[] {
  // Said as an empty file is, not as JSON that ends too soon (a file of a BOM alone is empty once
  // readText has dropped it).
  if (text.trim() === '') {
    throw new CliError(`${file} is empty${text === '' ? '' : ' but for blanks'}: expected a JSON array`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // JSON.parse quotes the text around the fault, line breaks and all: one line, its control
    // characters written as escapes (\n, \r, \t, \u0000).
    const kind = looksLikeCsv(text, file)
      ? `; it reads as CSV, which is not taken: give a JSON array of ${of}`
      : looksLikeJsonLines(text)
        ? `; it reads as JSON Lines (one object a line), which is not taken: give a JSON array of ${of}, the objects in [ ] with a comma between each`
        : '';
    throw new CliError(
      `${file} is not JSON: ${escapedUnshowable((err as Error).message)}${lineAndColumn(text, err)}${kind}`,
    );
  }
  if (!Array.isArray(data)) throw new CliError(`${file} must hold a JSON array of ${of}`);
  return data;
}

/**
 * Where JSON.parse's `at position 29` is in the text, ` (line 2, column 5)`, for an editor to go
 * to; where its message names no position, the first fault a walk of the text finds; nothing
 * where the message names the line itself (later Node versions) or the walk finds no fault.
 */
export function lineAndColumn(text: string, err: unknown): string {
  const message = String((err as { message?: unknown } | null)?.message ?? '');
  if (/\(line \d+ column \d+\)/.test(message)) return '';
  const at = /at position (\d+)/.exec(message);
  const found = at === null ? firstFaultOffset(text) : Number(at[1]);
  if (found === undefined) return '';
  const position = Math.min(found, text.length);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - (before.lastIndexOf('\n') + 1) + 1;
  return ` (line ${line}, column ${column})`;
}

/** How many problems an import's error lists; it counts the rest. */
export const MAX_LISTED_PROBLEMS = 20;

/** How many problems of one entry an import's error lists; it counts the rest of them. */
export const MAX_LISTED_PER_ENTRY = 5;

/** A problem of an import's entry: the entry's index and place (`f.json[3]`), and the line. */
interface EntryProblem {
  entry: number;
  where: string;
  text: string;
}

/**
 * One problem is named on its own line, as `add`'s field is; several are all named, each entry's
 * problems (up to MAX_LISTED_PER_ENTRY of an entry, up to MAX_LISTED_PROBLEMS lines in all, the
 * rest counted), so a file is mended in one pass, not one run per entry or per field, and one
 * entry of many problems does not hide the others.
 */
function entriesError(problems: EntryProblem[], source: string | undefined): CliError {
  // `add` has one entry and no file: its problem says it all, or its problems a line each.
  if (source === undefined) {
    const [first] = problems;
    if (problems.length <= 1 || first === undefined) return new CliError(first?.text ?? 'no entry');
    const own = (p: EntryProblem) => (p.text.startsWith(`${p.where}: `) ? p.text.slice(p.where.length + 2) : p.text);
    return new CliError(
      `${first.where}: ${problems.length} problems:\n${problems.map((p) => `  ${own(p)}`).join('\n')}`,
    );
  }
  // One problem is said on its line, with what came of the file.
  if (problems.length === 1) return new CliError(`${problems[0]?.text ?? 'no entry'}; nothing was written`);
  const entries = new Set(problems.map((p) => p.entry)).size;
  const listed: string[] = [];
  // Problems listed, or counted on their entry's last line.
  let accounted = 0;
  for (let i = 0; i < problems.length && listed.length < MAX_LISTED_PROBLEMS; ) {
    const entry = problems[i]?.entry;
    let end = i;
    while (end < problems.length && problems[end]?.entry === entry) end++;
    const own = problems.slice(i, end);
    const take = Math.min(own.length, MAX_LISTED_PER_ENTRY, MAX_LISTED_PROBLEMS - listed.length);
    for (const p of own.slice(0, take)) listed.push(`  ${p.text}`);
    accounted += take;
    if (own.length > take && take === MAX_LISTED_PER_ENTRY && listed.length < MAX_LISTED_PROBLEMS) {
      listed.push(`  ${own[0]?.where}: … and ${counted(own.length - take, 'more problem')} of this entry`);
      accounted += own.length - take;
    }
    i = end;
  }
  const rest = problems.length - accounted;
  // One problem an entry: counted as entries, as before entries were named by their every problem.
  const onePerEntry = problems.length === entries;
  if (rest > 0) {
    listed.push(
      `  … and ${onePerEntry ? counted(rest, 'more bad entry', 'more bad entries') : counted(rest, 'more problem')} not listed`,
    );
  }
  const head = onePerEntry
    ? counted(entries, 'bad entry', 'bad entries')
    : `${counted(entries, 'bad entry', 'bad entries')} (${counted(problems.length, 'problem')})`;
  return new CliError(`${source}: ${head}; nothing was written:\n${listed.join('\n')}`);
}

/**
 * Where the first byte that is not UTF-8 is, for an error: its offset, its value, and the line
 * and column of the character it stands at (read as the lenient decoder reads it, U+FFFD).
 */
export function firstNonUtf8(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8', { ignoreBOM: false }).decode(bytes);
  // The decoder drops a leading byte-order mark from the text; its 3 bytes still count.
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  // Before the first bad byte every U+FFFD is one written in the file, as its 3 bytes.
  let offset = bom;
  let from = 0;
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    offset += Buffer.byteLength(text.slice(from, at), 'utf8');
    from = at + 1;
    if (bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd) {
      offset += 3;
      continue;
    }
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    const byte = (bytes[offset] ?? 0).toString(16).toUpperCase().padStart(2, '0');
    return `the byte at offset ${offset.toLocaleString('en-US')} (0x${byte}), line ${line}, column ${column}, is not UTF-8`;
  }
  return 'a byte is not UTF-8';
}

/** Reads a JSON array of accounts (the data a report shows), naming every bad entry. */
export function parseAccountsFile(text: string, file: string): NewAccount[] {
  const data = parseJsonArray(text, file, 'accounts');
  refuseOtherKind(data, file, { has: 'cron', lacks: 'name', kind: 'notifications', command: 'import' });
  const entries = validEntries(data, {
    schema: newAccountSchema,
    where: (i) => `${file}[${i}]`,
    source: file,
    keysTwice: keysTwiceByEntry(text),
    noun: 'account',
    problems: (a) => {
      const problem = newIdProblem(a.id);
      const { id, ...account } = a;
      // As stored (saveAccounts), and as Firestore counts it.
      const bytes = documentStorageSize([COLLECTIONS.accounts, id], accountSchema.parse(account));
      return [
        ...(problem ? [`account id ${quoted(a.id)}: ${problem}`] : []),
        ...(bytes > MAX_DOCUMENT_BYTES
          ? [
              `account ${problem ? quoted(id) : id} is ${bytes} bytes as Firestore counts a document (a number is 8 bytes, a string or ` +
                `a field name its UTF-8 and 1 more); a document holds at most ${MAX_DOCUMENT_BYTES}`,
            ]
          : []),
      ];
    },
    explain: explainAccountField,
  });
  return entries.map(({ id, ...account }) => ({ id, account }));
}

/** What a metric's field holds, for an error about it (shared/report.ts shows them). */
const METRIC_FIELDS: Record<string, string> = {
  label: 'a string, not blank',
  value: 'a number (shown with thousands separators: 1200 as 1,200) or a string (shown as is, e.g. "$1.2k")',
  change: 'a number, the change in percent (12.5 is shown as ▲ 12.5%), or no change field',
};

/** An import-accounts error about a metric's field says what the field holds. */
function explainAccountField(path: string[], received: unknown): string | undefined {
  const field = path[0] === 'metrics' && path.length === 3 ? path[2] : undefined;
  const holds = field === undefined ? undefined : METRIC_FIELDS[field];
  if (!holds) return undefined;
  return `expected ${holds}, got ${shownValue(received)}`;
}

/**
 * A value from an import file as its error shows it. JSON.parse reads a number too large for a
 * double (1e400) as Infinity, which JSON.stringify writes as null: it is named for what it is.
 */
function shownValue(received: unknown): string {
  if (received === undefined) return 'none';
  if (typeof received === 'number' && !Number.isFinite(received)) {
    return `a number too large to represent (read as ${received})`;
  }
  // A string quoted as ids are: an invisible character in it is named (`"\u200B"`), not shown as nothing.
  if (typeof received === 'string') return quoted(received);
  return excerpt(JSON.stringify(received) ?? String(received));
}

/** A value of each field of a notification entry that its schema and its checks take. */
const NOTIFICATION_STAND_INS: Record<string, unknown> = {
  id: 'n',
  accountId: 'a',
  channelId: 'C0',
  teamId: 'T0',
  cron: '0 9 * * *',
  timezone: 'UTC',
  title: 'Report',
  enabled: true,
};

/**
 * Validates notifications (schema, ids, cron, time zone, no id twice), naming every bad one
 * by `where`, and by its id when it is an import file's entry (`add` names its fields by option).
 */
function parseNotificationEntries(
  entries: unknown[],
  where: (i: number) => string,
  {
    file,
    fieldName,
    keysTwice,
  }: { file?: string; fieldName?: (field: string) => string; keysTwice?: Map<number, string[]> },
): NewNotification[] {
  return validEntries(entries, {
    schema: newNotificationSchema,
    where,
    ...(file !== undefined ? { source: file } : {}),
    ...(keysTwice ? { keysTwice } : {}),
    ...(fieldName ? { fieldName } : { noun: 'notification' }),
    // `add` names the field by its option: --channel: is blank, not slack.channelId.
    problems: (n) =>
      notificationProblems(n as NewNotification).map((err) => ({
        field: err.field,
        text: fieldName ? `${fieldName(err.field)}: ${err.problem}` : err.message,
      })),
    stand: NOTIFICATION_STAND_INS,
  }) as NewNotification[];
}

/**
 * The entries of an import, each checked by `schema` and then `problems`, no id twice: a
 * CliError names every bad entry by `where` (and a field by `fieldName`). With a `noun`, a
 * schema error also names the entry by its id (`f.json[3]: account acme: name: …`), as
 * `problems`'s messages do, when the entry has an id that can be one and the error is not about it.
 */
function validEntries<T extends { id: string }>(
  entries: unknown[],
  o: {
    schema: z.ZodType<T>;
    where: (i: number) => string;
    /**
     * What else is wrong with an entry the schema takes, each problem a line (with the field it
     * is about, where it is about one); none, [].
     */
    problems: (entry: T) => (string | { field: string; text: string })[];
    /**
     * A value the schema takes for each field (by its name in the entry): an entry the schema
     * refuses is checked again with its refused fields set to these and its unknown keys left
     * out, so that the other fields' problems (a blank channel beside an `enabled` of 1) are
     * named in the same run, a missing field stood in for as a refused one is. Without them, or
     * when the id is refused, they are not looked for.
     */
    stand?: Record<string, unknown>;
    noun?: string;
    /** The file, to head a list of several bad entries (`add` has one entry, and no file). */
    source?: string;
    fieldName?: (field: string) => string;
    explain?: (path: string[], received: unknown) => string | undefined;
    /** Keys an entry gives twice, by entry (keysTwiceByEntry). */
    keysTwice?: Map<number, string[]>;
  },
): T[] {
  const {
    schema,
    where,
    problems: problemsOf,
    noun,
    source,
    fieldName = (field) => field,
    explain = () => undefined,
  } = o;
  const textOf = (why: string | { text: string }) => (typeof why === 'string' ? why : why.text);
  /** The problems of an entry's fields the schema took, its refused ones stood in for (`stand`). */
  const othersRefused = (entry: unknown, issues: z.core.$ZodIssue[]): string[] => {
    const stand = o.stand;
    if (stand === undefined || typeof entry !== 'object' || entry === null || Array.isArray(entry)) return [];
    const refused = new Set<string>();
    const unknown = new Set<string>();
    for (const issue of issues) {
      const field = issue.path[0];
      if (field === undefined && issue.code === 'unrecognized_keys') for (const k of issue.keys) unknown.add(k);
      else if (typeof field === 'string' && Object.hasOwn(stand, field)) refused.add(field);
      else return [];
    }
    if (refused.has('id')) return [];
    // A refused field the entry lacks is stood in for too: a missing channel does not hide a bad time zone.
    const patched = {
      ...Object.fromEntries(Object.entries(entry).filter(([k]) => !unknown.has(k))),
      ...Object.fromEntries([...refused].map((k) => [k, stand[k]])),
    };
    const again = schema.safeParse(patched);
    if (!again.success) return [];
    return problemsOf(again.data).flatMap((why) =>
      typeof why !== 'string' && !refused.has(why.field) ? [why.text] : [],
    );
  };
  const seen = new Map<string, number>();
  const problems: EntryProblem[] = [];
  // Each line one line, whatever the file holds: a line break or a direction mark in an id or a
  // key is written as its escape, not let loose on the terminal.
  const say = (i: number, text: string) => {
    problems.push({ entry: i, where: escapedUnshowable(where(i)), text: escapedUnshowable(text) });
  };
  const valid = entries.map((given, i) => {
    const at = loneSurrogatePath(given);
    let entry = given;
    if (at !== null) {
      // Firestore cannot store it (JSON can write one as \ud800); named before the schema, whose
      // message would not say why. The entry's other problems are named too, read with U+FFFD in
      // its place: one run of the import names them all.
      say(i, `${where(i)}${at ? `.${at}` : ''}: is not well-formed Unicode (a lone surrogate)`);
      const mended = withoutLoneSurrogates(given);
      if (mended === undefined) return undefined;
      entry = mended;
    }
    const parsed = schema.safeParse(entry);
    // A second entry of an id is named whatever else is wrong with either: one run of the import
    // names every problem, not the duplicates only once the rest are mended. An id mended of its
    // lone surrogates is not: two ids could be one once mended, and two in the file.
    const entryKey = at === 'id' ? undefined : parsed.success ? parsed.data.id : entryId(entry);
    const first = entryKey === undefined ? undefined : seen.get(entryKey);
    if (first !== undefined) say(i, `${where(i)}: duplicate id ${entryKey} (also ${where(first)})`);
    else if (entryKey !== undefined) seen.set(entryKey, i);
    const twice = o.keysTwice?.get(i) ?? [];
    const idOf = noun === undefined ? undefined : entryKey;
    for (const path of twice) {
      const named = idOf === undefined || path === 'id' ? '' : `${noun} ${idOf}: `;
      say(i, `${where(i)}: ${named}${path}: is given twice in the entry, and JSON keeps the last: give it once`);
    }
    if (twice.length > 0 && parsed.success) {
      for (const why of problemsOf(parsed.data)) say(i, `${where(i)}: ${textOf(why)}`);
      return undefined;
    }
    if (!parsed.success) {
      // Every field that is wrong, each on its line: one run of the import names them all. A
      // field is named once, by its first issue (an empty name is both too short and blank).
      const fields = new Set<string>();
      const id = noun === undefined ? undefined : entryId(entry);
      for (const issue of parsed.error.issues) {
        const keys = issue.path.map(String);
        const key = JSON.stringify(keys);
        if (fields.has(key)) continue;
        fields.add(key);
        const [field, ...rest] = keys;
        const path = field === undefined ? '(entry)' : [fieldName(field), ...rest].join('.');
        const received = keys.reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], entry);
        const named = id === undefined || field === 'id' ? '' : `${noun} ${id}: `;
        // A key the entry should not have is named by the message itself, not as `(entry):`.
        const fieldPart = issue.code === 'unrecognized_keys' && field === undefined ? '' : `${path}: `;
        say(i, `${where(i)}: ${named}${fieldPart}${explain(keys, received) ?? issue.message}`);
      }
      for (const why of othersRefused(entry, parsed.error.issues)) say(i, `${where(i)}: ${why}`);
      return undefined;
    }
    const e = parsed.data;
    // A second entry of an id is named by its other problems too: it may be the one to keep.
    for (const why of problemsOf(e)) say(i, `${where(i)}: ${textOf(why)}`);
    return first === undefined && at === null ? e : undefined;
  });
  if (problems.length > 0) throw entriesError(problems, source);
  return valid as T[];
}

/**
 * A copy of a JSON value with each lone surrogate, in a key or a string, as U+FFFD; undefined
 * when it cannot be copied (nested past what JSON.stringify takes). JSON.stringify writes a lone
 * surrogate as its escape, and a pair as it is, so every such escape is a lone one.
 */
function withoutLoneSurrogates(value: unknown): unknown {
  try {
    const text = JSON.stringify(value).replace(/(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/gi, '$1\\ufffd');
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * "notification <id> does not exist", with an id that looks like another (blanks around it, an
 * invisible character) quoted and said why: typed or pasted, it may not be the id it shows.
 */
export function notificationNotFound(id: string): string {
  const note = lookalikeIdNote(id);
  return note === null
    ? `notification ${id} does not exist`
    : `notification ${quoted(id, 500)} does not exist; ${note}`;
}

/** An import entry's id, when it has one that can be a new document's id, to name the entry by. */
function entryId(entry: unknown): string | undefined {
  const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
  return typeof id === 'string' && newIdProblem(id) === null ? id : undefined;
}

/** The import-file fields `add` takes as options, by option. */
const ADD_OPTIONS: Record<string, string> = {
  id: '--id',
  accountId: '--account',
  channelId: '--channel',
  cron: '--cron',
  timezone: '--timezone',
  teamId: '--team',
  title: '--title',
};

/** `n` things, one in the singular: "1 account", "2 accounts" (nouns whose plural adds an s). */
function countOf(n: number, plural: string): string {
  return counted(n, plural.replace(/s$/, ''), plural);
}

/** `items`, once zoneCautions' warnings are said on stderr, each headed by `command`. */
function warnedOfZones<T extends { timezone: string }>(items: T[], command: string): T[] {
  for (const caution of zoneCautions(items)) process.stderr.write(`${command}: ${caution}\n`);
  return items;
}

/**
 * The warnings the time zones of `items` call for (timeZoneCaution), one a zone, each with how
 * many of the notifications give it when there are several: the zone is taken, as it is valid.
 */
export function zoneCautions(items: readonly { timezone: string }[]): string[] {
  const counts = new Map<string, number>();
  for (const n of items) counts.set(n.timezone.trim(), (counts.get(n.timezone.trim()) ?? 0) + 1);
  const said: string[] = [];
  for (const [zone, count] of counts) {
    const caution = timeZoneCaution(zone);
    if (caution !== null) said.push(items.length > 1 ? `${caution} (${countOf(count, 'notifications')})` : caution);
  }
  return said;
}

/** A line of progress on stderr at most this often when it is not a terminal. */
export const PROGRESS_EVERY_MS = 2000;

export interface Progress {
  update(done: number): void;
  /**
   * On a terminal, words after the bar (a phase before the first item is done; '' to clear);
   * off one, nothing: the caller writes its own lines.
   */
  note(text: string): void;
  /** Ends the bar; when the work is done, says how far it got (a last line off a terminal). */
  stop(finished: boolean): void;
}

/**
 * The progress of a long command on stderr: a bar on a terminal; otherwise (a log, a pipe) a
 * line to start with, a line at most every PROGRESS_EVERY_MS, and a last one when done, as
 * `{command}: {done} of {total} {noun} {verb}`.
 */
export function progressOf(
  o: { command: string; total: number; noun: string; start: string; verb: string },
  out: { tty: boolean; write: (line: string) => void; now?: () => number } = {
    tty: process.stderr.isTTY === true,
    write: (line) => process.stderr.write(line),
  },
): Progress {
  if (out.tty) {
    const bar = new SingleBar({
      format: `${o.command} [{bar}] {value}/{total} ${o.noun} ${o.verb}{note}`,
      hideCursor: true,
    });
    bar.start(o.total, 0, { note: '' });
    let barStopped = false;
    let value = 0;
    return {
      update: (n) => {
        value = n;
        if (!barStopped) bar.update(n);
      },
      note: (text) => barStopped || bar.update(value, { note: text }),
      stop: () => {
        if (barStopped) return;
        barStopped = true;
        bar.stop();
      },
    };
  }
  const now = out.now ?? Date.now;
  const line = (n: number) => out.write(`${o.command}: ${n} of ${o.total} ${o.noun} ${o.verb}\n`);
  out.write(`${o.command}: ${countOf(o.total, o.noun)} ${o.start}\n`);
  let last = now();
  let latest = 0;
  let written = -1;
  // Stopped (a Ctrl-C), the writes under way still report: no line after what the stop said.
  let stopped = false;
  return {
    note: () => undefined,
    update(n) {
      latest = n;
      if (stopped) return;
      if (now() - last >= PROGRESS_EVERY_MS) {
        last = now();
        written = n;
        line(n);
      }
    },
    stop(finished) {
      if (!stopped && finished && written !== latest) line(latest);
      stopped = true;
    },
  };
}

/** An import gives up once no write has finished for this long (`--stall-timeout`). */
export const STALL_TIMEOUT_SECONDS = 120;

export interface StallWatch {
  /** Work moved on: the silence starts over. */
  moved(): void;
  stop(): void;
}

/**
 * Watches long work for silence: `warn` every warnEvery ms without progress (with how long it
 * has been), then `give` once it has been timeoutMs. A Firestore that stops answering mid-import
 * is otherwise silent for minutes: its client retries each write for about 4.5 minutes.
 */
export function stallWatch(o: {
  timeoutMs: number;
  warnEveryMs: number;
  warn: (silentMs: number) => void;
  giveUp: (silentMs: number) => void;
  now?: () => number;
}): StallWatch {
  const now = o.now ?? Date.now;
  let since = now();
  let warned = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // Timed from the last progress, so that a warning comes when it is due, not up to a polling
  // interval late. Progress does not move the timer: one that fires early finds nothing due and
  // is set again for the silence's next step.
  const check = () => {
    if (stopped) return;
    const silent = now() - since;
    if (silent >= o.timeoutMs) {
      stopped = true;
      o.giveUp(silent);
      return;
    }
    if (silent >= (warned + 1) * o.warnEveryMs) {
      warned = Math.floor(silent / o.warnEveryMs);
      o.warn(silent);
    }
    const due = since + Math.min((warned + 1) * o.warnEveryMs, o.timeoutMs);
    timer = setTimeout(check, Math.max(0, due - now()));
    timer.unref();
  };
  check();
  return {
    moved() {
      since = now();
      warned = 0;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * A write's error that says its reader is gone: a pipe closed (`| head`: EPIPE), a terminal
 * closed (EIO, as a SIGHUP comes), or a stream already ended by one of those.
 */
export function readerGone(err: NodeJS.ErrnoException, terminal: boolean): boolean {
  // EIO from a file or a disk is a failure to say; from a terminal, its closing.
  return err.code === 'EPIPE' || (err.code === 'EIO' && terminal) || err.code === 'ERR_STREAM_DESTROYED';
}

/** Dead deliveries `dead-runs` reads a page, at most (and by default): one query's answer. */
const DEAD_RUNS_PAGE_SIZE = 1_000;

/** How long a redrive waits to count its run's deliveries once done (what is still dead, or still tried). */
const REDRIVE_COUNT_MS = 5_000;

/** How long a bulk command (resume, redrive, reindex) may go without finishing a page before it says so. */
export const SILENCE_WARNING_MS = 30_000;

/**
 * Says on stderr, every SILENCE_WARNING_MS without a finished page, that a bulk command is still
 * waiting and on what: a Firestore or Pub/Sub that stops answering mid-command would otherwise
 * leave it silent for minutes while the clients retry.
 */
export function silenceWarning(command: string, unit: string, projectId: string): StallWatch {
  const where = `Firestore at ${whereService('Firestore', projectId)}${command === 'redrive' ? `, Pub/Sub at ${whereService('Pub/Sub', projectId)}` : ''}`;
  return stallWatch({
    timeoutMs: Number.POSITIVE_INFINITY,
    warnEveryMs: SILENCE_WARNING_MS,
    warn: (ms) =>
      process.stderr.write(
        `${command}: no ${unit} has finished for ${Math.round(ms / 1000)} s (${where}); still waiting (Ctrl-C stops; running it again is safe)\n`,
      ),
    giveUp: () => undefined,
  });
}

const STALL_HELP = `When no write finishes for 30 s (Firestore stopped answering; a third of --stall-timeout if
that is shorter), it says so, again at each such interval, and after --stall-timeout seconds of
it stops: says how many were saved, exit 1 (saving again is safe). Interrupted (Ctrl-C), it lets
the writes under way finish, says how many were saved, and exits 130; a second Ctrl-C stops at
once. Importing the file again is safe, and finishes the job.`;

function stallTimeoutOption(): Option {
  return new Option(
    '--stall-timeout <seconds>',
    'stop when no write has finished for this long (Firestore not answering): 1 to 3,600 seconds',
  )
    .argParser(positiveInt(3600))
    .default(STALL_TIMEOUT_SECONDS);
}

/** What an import's save is given: its progress, the stop, and (notifications) its schedules' progress. */
type ImportSaveOptions = Required<Pick<SaveOptions, 'onProgress' | 'signal' | 'onSchedules'>>;

/** Saves an import's entries (`save`), with its progress on stderr, and says how many. */
async function importFile<T>(
  command: string,
  projectId: string,
  items: T[],
  what: string,
  save: (db: Firestore, items: T[], opts: ImportSaveOptions) => Promise<void>,
  stallTimeoutSeconds = STALL_TIMEOUT_SECONDS,
  check?: (db: Firestore, items: T[]) => Promise<string | null>,
): Promise<void> {
  const db = await openFirestore(projectId);
  const progress = progressOf({ command, total: items.length, noun: what, start: 'to save', verb: 'saved' });
  let finished = false;
  let saved = 0;
  const where = `Firestore at ${whereService('Firestore', projectId)}`;
  // `import` writes in transactions, which a stop leaves open; import-accounts' writes take no lock.
  const leavesLocks = command === 'import';
  const stall = stallWatch({
    timeoutMs: stallTimeoutSeconds * 1000,
    warnEveryMs: Math.min(30_000, (stallTimeoutSeconds * 1000) / 3),
    warn: (ms) => {
      process.stderr.write(
        `${command}: no write has finished for ${Math.round(ms / 1000)} s (${where}); still trying, stopping at ${stallTimeoutSeconds} s (--stall-timeout); Ctrl-C stops now\n`,
      );
    },
    giveUp: (ms) => {
      progress.stop(false);
      process.stderr.write(
        `${command}: stopped: no write finished for ${Math.round(ms / 1000)} s (${where}); ${saved} of ${items.length} ${what} saved at least (saving again is safe${leavesLocks ? '; the transactions left open keep their locks for about a minute, which a save sooner waits out' : ''})\n`,
      );
      // The writes under way wait on a Firestore that does not answer: not waited for.
      process.exit(EXIT.failed);
    },
  });
  // Ctrl-C (or SIGTERM, SIGHUP) lets the writes under way finish (a transaction left open
  // would hold its locks, and an import run again at once would wait on them), says how far it
  // got, and exits 130 (143, 129); a second stops at once.
  const stops = onStopSignals(
    (signal) => {
      progress.stop(false);
      process.stderr.write(stoppingLine(command, signal, 'once the writes under way finish'));
    },
    () => {
      process.stderr.write(
        `${command}: interrupted: ${saved} of ${items.length} ${what} saved at least (saving again is safe)\n`,
      );
      process.exit(stops.exitCode());
    },
  );
  // Many schedules take a while before the first notification is written: their writes are
  // progress too, said in a line every few seconds off a terminal once they take that long.
  const schedulesSince = Date.now();
  let schedulesSaid = schedulesSince;
  const onSchedules = (done: number, total: number) => {
    stall.moved();
    if (stops.signal.aborted) return;
    if (process.stderr.isTTY === true) {
      progress.note(done < total ? ` (first their schedules: ${done} of ${total} ready)` : '');
      return;
    }
    const at = Date.now();
    if (at - schedulesSaid >= PROGRESS_EVERY_MS || (done === total && schedulesSaid !== schedulesSince)) {
      schedulesSaid = at;
      process.stderr.write(`${command}: ${done} of ${total} schedules ready, before the ${what}\n`);
    }
  };
  try {
    await save(db, items, {
      onProgress: (n) => {
        if (n > saved) stall.moved();
        saved = n;
        progress.update(n);
      },
      signal: stops.signal,
      onSchedules,
    });
    progress.update(items.length);
    finished = true;
  } catch (err) {
    if (!stops.signal.aborted) throw err;
    process.stderr.write(
      `${command}: ${err instanceof SaveInterrupted ? err.message : `interrupted: ${(err as Error).message}`}\n`,
    );
    await db.terminate();
    process.exit(stops.exitCode());
  } finally {
    stall.stop();
    stops.remove();
    progress.stop(finished);
    if (!finished) await db.terminate();
  }
  // Once everything is saved, what a check has to say of it (a warning): it cannot fail the import.
  if (check) {
    const said = await checkedAfterSave(check(db, items));
    if (said !== null) process.stderr.write(`${command}: ${said}\n`);
  }
  await db.terminate();
  // An empty array is a file that may be the wrong one (a template, an export cut short): said.
  if (items.length === 0) process.stderr.write(`${command}: the array given is empty: nothing to save\n`);
  // Stopped once every write was under way: they all finished, so nothing is left undone (exit 0).
  if (stops.signal.aborted) {
    process.stderr.write(
      `${command}: every write was under way when stopped, and all finished: nothing is left to do\n`,
    );
  }
  process.stdout.write(`imported ${countOf(items.length, what)}\n`);
}

/** Names the paused notifications an import resumed (an entry without `enabled: false` enables its notification), or null. */
export function resumedByImport(ids: readonly string[]): string | null {
  if (ids.length === 0) return null;
  const named = ids.slice(0, MISSING_ACCOUNTS_NAMED).map((id) => quoted(id, 100));
  const more = ids.length > named.length ? `, and ${ids.length - named.length} more` : '';
  const one = ids.length === 1;
  return `${counted(ids.length, 'paused notification')} ${one ? 'was' : 'were'} resumed, as ${one ? 'its entry does' : 'their entries do'} not say "enabled": false: ${named.join(', ')}${more} (slack-fanout pause <id> pauses one again)`;
}

/** How long a check of what was saved (the accounts the notifications name) may take. */
const CHECK_AFTER_SAVE_MS = 30_000;

/**
 * What a check of what was just saved says (a warning, or null), within CHECK_AFTER_SAVE_MS:
 * the save is done, so a check that fails or does not answer is said, and fails nothing.
 */
export function checkedAfterSave(check: Promise<string | null>): Promise<string | null> {
  const unchecked = 'saved, but whether the accounts they name exist could not be checked';
  return raceTimeout(
    check.catch((err: unknown) => `${unchecked}: ${escapedUnshowable(String((err as Error)?.message ?? err))}`),
    CHECK_AFTER_SAVE_MS,
    () => `${unchecked}: Firestore did not answer within ${CHECK_AFTER_SAVE_MS / 1000} s`,
    true,
  );
}

/** How many missing accounts a warning names before it counts the rest. */
const MISSING_ACCOUNTS_NAMED = 5;

/**
 * The notifications just saved whose accounts are not in Firestore, said as a warning (they
 * are saved all the same: accounts may be imported after them), or null when none is.
 */
async function missingAccountsWarning(
  db: Firestore,
  notifications: readonly NewNotification[],
): Promise<string | null> {
  const missing = await missingAccounts(
    db,
    notifications.map((n) => n.accountId),
  );
  if (missing.length === 0) return null;
  const named = missing.slice(0, MISSING_ACCOUNTS_NAMED).map((id) => quoted(id, 100));
  const more = missing.length - named.length;
  const waiting = notifications.filter((n) => missing.includes(n.accountId)).length;
  const one = missing.length === 1;
  return (
    `${countOf(missing.length, 'accounts')} named here ${one ? 'is' : 'are'} not in Firestore ` +
    `(${named.join(', ')}${more > 0 ? `, and ${more} more` : ''}): ${countOf(waiting, 'notifications')} naming ` +
    `${one ? 'it' : 'them'} ${waiting === 1 ? 'is' : 'are'} saved, and until import-accounts writes ${one ? 'it' : 'them'} ` +
    'each delivery of one fails (invalid_notification); after PAUSE_AFTER_FAILURES occurrences in a row (3 by ' +
    'default) a notification is paused (account_not_found: resume --paused-reason account_not_found brings those back)'
  );
}

/**
 * `resume --paused-reason …` / `--all-paused`: pages through the matches, a progress bar on a
 * terminal's stderr (a line a page otherwise), the counts as JSON on stdout.
 */
async function resumeInBulk(projectId: string, selector: PausedSelector, dryRun: boolean, pageSize: number) {
  const db = await openFirestore(projectId);
  const tty = process.stderr.isTTY === true;
  const bar = new SingleBar({
    format: `${dryRun ? 'counting' : 'resuming'} [{bar}] {value}/{total} | {resumed} resumed, {skipped} skipped, {failed} failed`,
    hideCursor: true,
  });
  let result: ResumePausedResult;
  let stall: StallWatch | undefined;
  let stops: StopSignals | undefined;
  try {
    // The total is an estimate for the bar: what is paused or resumed meanwhile moves it.
    const total = (await pausedQuery(db, selector).count().get()).data().count;
    if (tty) bar.start(total, 0, { resumed: 0, skipped: 0, failed: 0 });
    else process.stderr.write(`resume: ${total} to ${dryRun ? 'count' : 'resume'}\n`);
    // Ctrl-C (or SIGTERM, SIGHUP) lets the transactions under way finish (one left open would
    // hold its locks, and a resume run again at once would wait on them), then says how far it
    // got; a second stops at once. Resuming is safe to run again, whatever was left.
    let sofar = 'nothing resumed yet';
    stops = onStopSignals(
      (signal) => {
        if (tty) bar.stop();
        process.stderr.write(stoppingLine('resume', signal, 'once the transactions under way finish'));
      },
      () => {
        process.stderr.write(`resume: interrupted: ${sofar} at least (running it again is safe)\n`);
        process.exit(stops?.exitCode() ?? 130);
      },
    );
    stall = silenceWarning('resume', 'page', projectId);
    result = await resumePaused(db, selector, {
      dryRun,
      pageSize,
      signal: stops.signal,
      onProgress: (p) => {
        stall?.moved();
        sofar = `${p.matched} of ${total} read, ${p.resumed} resumed, ${p.skipped} skipped, ${p.failed} failed`;
        // Stopping: the stop's lines are the last but its end.
        if (stops?.signal.aborted) return;
        if (tty) bar.update(p.matched, { resumed: p.resumed, skipped: p.skipped, failed: p.failed });
        else process.stderr.write(`resume: ${sofar}\n`);
      },
    });
  } finally {
    stall?.stop();
    stops?.remove();
    if (tty) bar.stop();
    await db.terminate();
  }
  const { ids, unlisted, firstError, ...counts } = result;
  if (result.interrupted) {
    process.stderr.write(
      `resume: interrupted: ${result.matched} read, ${result.resumed} resumed, ${result.skipped} skipped, ${result.failed} failed${result.notReached ? `, ${result.notReached} not reached` : ''} (running it again is safe)\n`,
    );
    process.exitCode = stops?.exitCode() ?? 130;
  }
  print({
    ...('pausedReason' in selector ? { pausedReason: selector.pausedReason } : { allPaused: true }),
    ...counts,
    ...(dryRun ? { ids, unlisted } : {}),
    ...(firstError ? { firstError } : {}),
  });
  if (result.failed > 0) {
    process.stderr.write(
      `resume: ${result.failed} left paused by a failed write (running it again is safe): ${firstError}\n`,
    );
    if (!result.interrupted) process.exitCode = EXIT.failed;
  }
  // A reason is matched exactly, and one saved now has no blanks around it and is in NFC: the likely one named.
  const hint = 'pausedReason' in selector && result.matched === 0 ? reasonHint(selector.pausedReason) : null;
  if (hint)
    process.stderr.write(
      `resume: ${hint.message}: try --paused-reason ${quoted(hint.reason, 2 * MAX_PAUSE_REASON_CHARS)}\n`,
    );
}

/**
 * The command typed that is not one, when there is one: Commander says so itself, but not when
 * help is asked (`status --help`, `help status`), where it printed the program's help and exited
 * 0, as if the command were known. Global options (`-p <id>`) are passed over.
 */
export function unknownCommandOf(program: Command, args: readonly string[]): string | undefined {
  // `help` is Commander's own command, not among program.commands.
  const names = new Set(['help', ...program.commands.flatMap((c) => [c.name(), ...c.aliases()])]);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return undefined;
    if (arg === '-p' || arg === '--project') {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    if (arg === 'help') {
      const topic = args[i + 1];
      return topic !== undefined && !topic.startsWith('-') && !names.has(topic) ? topic : undefined;
    }
    return names.has(arg) ? undefined : arg;
  }
  return undefined;
}

/**
 * Commander reads the program's own options anywhere on the line, so `add --title --version`
 * prints the version and does nothing, where --title's value was left out: the option whose
 * value is missing, named as for any other option taken as a value (refuseOptionSlips).
 */
export function versionTakenAsValue(program: Command, args: readonly string[]): string | undefined {
  const end = args.indexOf('--');
  const at = args.findIndex((a, i) => (a === '--version' || a === '-V') && (end === -1 || i < end));
  const before = args[at - 1];
  if (at < 1 || before === undefined) return undefined;
  const taker = program.commands
    .flatMap((c) => c.options)
    .find((o) => (o.required || o.optional) && (o.long === before || o.short === before));
  return taker === undefined ? undefined : optionTakenAsValue(args[at] ?? '', taker.long ?? taker.flags);
}

/**
 * `args` with any `help` after `help` dropped: `help help` asks for the help command's
 * help, which is the program's; Commander, which keeps `help` off its list of commands, printed
 * nothing and failed on it.
 */
export function withoutHelpOfHelp(args: readonly string[]): string[] {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '-p' || arg === '--project') {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    if (arg !== 'help') return [...args];
    let next = i + 1;
    while (args[next] === 'help') next++;
    return [...args.slice(0, i + 1), ...args.slice(next)];
  }
  return [...args];
}

/**
 * This package's version, from its package.json: one level up from `bin/` when run from the
 * sources, two from `dist/bin/` when built.
 */
export function packageVersion(): string {
  for (const up of ['..', join('..', '..')]) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'slack-fanout' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not here: look one level further up.
    }
  }
  return 'unknown';
}

/** A usage error naming every option of `command` its help marks `(required)` that was not given. */
function refuseMissingOptions(command: Command): void {
  const missing = command.options.filter(
    (o) => o.description.endsWith('(required)') && command.getOptionValue(o.attributeName()) === undefined,
  );
  if (missing.length > 0) {
    command.error(
      `error: required option${missing.length === 1 ? '' : 's'} ${missing.map((o) => `'${o.flags}'`).join(', ')} not specified`,
      { code: 'commander.missingMandatoryOptionValue' },
    );
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name('slack-fanout')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .description(
      'Operate slack-fanout: import and manage notifications, inspect runs, redrive dead deliveries. ' +
        'Uses your Google credentials (gcloud auth application-default login), or the emulators when ' +
        'FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are set.',
    )
    .option('-p, --project <id>', 'the Google Cloud project (default: $GOOGLE_CLOUD_PROJECT)')
    // Every command's help lists --project too.
    .configureHelp({ showGlobalOptions: true })
    // The error and where the help is: the whole help under it would scroll the error away.
    .showHelpAfterError('(slack-fanout --help, or slack-fanout <command> --help, lists every option)')
    // A usage error (an unknown option, a missing argument) throws, to exit 2 like any bad input;
    // the commands added below inherit it.
    .exitOverride()
    // After every command's help too ('afterAll'): `slack-fanout import --help` says them.
    .addHelpText(
      'afterAll',
      `
Exit codes:
  0    done
  1    a failure while doing the work: Firestore or Pub/Sub out of reach, a write that failed,
       a bulk resume or a redrive that left some undone (its JSON's "failed" says how many;
       what a redrive passes over, skipped, paused or waiting, is no failure)
  2    bad input or usage, before anything is written: an unknown command or option, a bad
       option value, file, entry or id, a notification or run that does not exist, no project,
       no credentials
  130  interrupted (Ctrl-C); 143 by SIGTERM, 129 by SIGHUP, which stop a command as Ctrl-C does`,
    )
    .hook('preAction', async (_program, command) => {
      refuseExcessArguments(command, {
        import: 'it imports one file; import several one after another',
        'import-accounts': 'it imports one file; import several one after another',
      });
      refuseMissingOptions(command);
      // The project, the emulator addresses and the credentials are checked by the command
      // itself, once it has checked its own arguments (checkEnvironment).
      environmentChecked = 'none';
    });

  program
    .command('import')
    .description(
      'create or replace the notifications in a JSON file (an array of {id, accountId, channelId, cron, timezone, teamId?, title?, enabled?})',
    )
    .argument('<file>', `the JSON file (UTF-8, at most ${MAX_IMPORT_BYTES / 1024 / 1024} MiB; - reads standard input)`)
    .addHelpText(
      'after',
      `
Every entry is checked before anything is written, and every bad one is named by its problems, a
line each (file[3]: notification <id>: invalid cron "…": …): every field the entry's schema
refuses (of the wrong type, missing, empty or unknown), and, unless the id is one of those, every
other field whose value is refused; and beside them a key the entry gives twice (JSON would keep the last) and an
id an earlier entry has. At most ${MAX_LISTED_PER_ENTRY} lines an entry (the rest of its problems counted on a
line of its own) and ${MAX_LISTED_PROBLEMS} lines in all, the rest counted. Nothing is written.
An entry replaces the whole notification: without "enabled": false it is enabled, so one that
was paused comes back enabled (and its failure count cleared), and is named on stderr once
saved. Ids: see \`add --help\`.
Once saved, the accounts the notifications name are looked up, and those not in Firestore are
named on stderr (their deliveries fail until import-accounts writes them); the import stands.
Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
${STALL_HELP}`,
    )
    .addOption(stallTimeoutOption())
    .action((file: string, o: { stallTimeout: number }) => {
      // The notifications this import resumed, said once it is done.
      let resumed: string[] = [];
      return importFile(
        'import',
        projectOf(program.opts()),
        warnedOfZones(parseNotificationsFile(readText(file), sourceName(file)), 'import'),
        'notifications',
        async (db, items, opts) => {
          resumed = [...(await saveNotifications(db, items, opts)).resumed];
        },
        o.stallTimeout,
        async (db, items) => {
          const said = [await missingAccountsWarning(db, items), resumedByImport(resumed)];
          return said.filter((s): s is string => s !== null).join('\nimport: ') || null;
        },
      );
    });

  program
    .command('import-accounts')
    .description(
      'create or replace the accounts in a JSON file: the data each report shows (an array of {id, name, metrics?: [{label, value, change?}], highlights?: [string], dashboardUrl?})',
    )
    .argument('<file>', `the JSON file (UTF-8, at most ${MAX_IMPORT_BYTES / 1024 / 1024} MiB; - reads standard input)`)
    .addHelpText(
      'after',
      `
Fields of an account:
  id            the account id (what a notification's accountId names; rules as in \`add --help\`)
  name          a string, not blank; the report's title is "{name}: scheduled report" by default
  metrics       optional, a list of {label, value, change?}, shown in order:
                  label   a string, not blank
                  value   a number (shown with thousands separators: 1200 as 1,200)
                          or a string (shown as is, e.g. "$1.2k")
                  change  optional, a number: the change in percent, not a fraction
                          (12.5 is shown as ▲ 12.5%, -3 as ▼ 3.0%)
  highlights    optional, a list of strings, none blank
  dashboardUrl  optional, an http(s) URL, linked from the report (at most about 2,880 characters)
Each account is at most 1 MiB as Firestore counts a document (a number 8 bytes, a string or a
field name its UTF-8 and 1 more). Every entry is checked before anything is written, and every
bad one is named by its problems, a line each: every field the entry's schema refuses (of the
wrong type, missing, empty or unknown), or when there is none, every field whose value is
refused; and beside them a key the entry gives twice (JSON would keep the last) and an id an
earlier entry has. At most ${MAX_LISTED_PER_ENTRY} lines an entry (the rest of its problems counted on a line of
its own) and ${MAX_LISTED_PROBLEMS} lines in all, the rest counted. Nothing is written.
Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
${STALL_HELP}`,
    )
    .addOption(stallTimeoutOption())
    .action((file: string, o: { stallTimeout: number }) =>
      importFile(
        'import-accounts',
        projectOf(program.opts()),
        parseAccountsFile(readText(file), sourceName(file)),
        'accounts',
        (db, items, { onProgress, signal }) => saveAccounts(db, items, { onProgress, signal }),
        o.stallTimeout,
      ),
    );

  program
    .command('add')
    .description('create or replace one notification')
    // Required (refuseMissingOptions), not commander's requiredOption, which names only the first one missing.
    .option('--id <id>', 'the notification id (required)')
    .option('--account <accountId>', 'the account whose report it sends (required)')
    .option(
      '--channel <channelId>',
      "the Slack channel's id (C…, G… for an older private channel or a group direct message, or D… for the app's direct messages with a person; not the channel's name, a link to it, nor a user's id), at most 255 characters (required)",
    )
    .option(
      '--cron <expr>',
      `5-field cron, e.g. '0 9 * * MON-FRI', at most ${MAX_CRON_CHARS.toLocaleString('en-US')} characters, a run of blanks counted as one (required)`,
    )
    .option('--timezone <tz>', `IANA time zone, e.g. Europe/Paris, at most ${MAX_TIMEZONE_CHARS} characters (required)`)
    .option('--team <teamId>', 'the Slack workspace id, at most 255 characters')
    .option(
      '--title <title>',
      'the report title: one line, not blank, no tab, control character or direction mark, up to 150 UTF-16 code units (2 for a character beyond U+FFFF, as most emoji are; default: "{account name}: scheduled report")',
    )
    .addHelpText(
      'after',
      `
Replaces the whole notification: one that was paused comes back enabled.
An id (notification or account) must be able to be a Firestore document id: not blank, no '/',
not '.', '..' or __…__, well-formed Unicode, at most 1,500 bytes of UTF-8 (a notification id
at most 500 characters and 999 bytes: its delivery ids add ':' and a time to it and travel in a
Pub/Sub attribute, which holds 1,024 bytes). A new id, and the account id a new notification
names, holds no control character (a line break, a tab, a direction mark), no invisible one
(a zero-width space, a word joiner, U+FEFF, a soft hyphen, a Hangul filler, …: Unicode's
default-ignorable characters, but for the joiners, variation selectors and flag tags emoji
need) and no blanks around it, and is in Unicode's composed form (NFC).`,
    )
    .action(
      async (o: {
        id: string;
        account: string;
        channel: string;
        cron: string;
        timezone: string;
        team?: string;
        title?: string;
      }) => {
        // The same checks as an entry of an import file (an empty --team is an error, not no team),
        // with each field named by its option.
        const [n] = parseNotificationEntries(
          [
            {
              id: o.id,
              accountId: o.account,
              channelId: o.channel,
              cron: o.cron,
              timezone: o.timezone,
              ...(o.team !== undefined ? { teamId: o.team } : {}),
              ...(o.title !== undefined ? { title: o.title } : {}),
            },
          ],
          () => 'add',
          { fieldName: (field) => ADD_OPTIONS[field] ?? field },
        ) as [NewNotification];
        warnedOfZones([n], 'add');
        const db = await openFirestore(projectOf(program.opts()));
        let warning: string | null;
        try {
          await saveNotifications(db, [n]);
          warning = await checkedAfterSave(missingAccountsWarning(db, [n]));
        } finally {
          await db.terminate();
        }
        if (warning !== null) process.stderr.write(`add: ${warning}\n`);
        print({ id: n.id, saved: true });
      },
    );

  const setEnabled = async (id: string, enabled: boolean, reason?: string) => {
    docId('notification', id);
    const db = await openFirestore(projectOf(program.opts()));
    try {
      const result = await setNotificationEnabled(db, id, enabled, reason);
      if (result === null) throw new CliError(notificationNotFound(id));
      print(enabledOutput(id, enabled, result));
    } finally {
      await db.terminate();
    }
  };
  program
    .command('reindex')
    .description(
      'add every enabled notification missing from its schedule’s dispatch index (data written before the index existed, or indexed in an older layout’s buckets, which it then deletes), rewrite a bucket kept as a map of ids, or whose list repeats an id, as a plain list, create a schedule document that is missing (due at its next occurrence), and mend one that cannot run as stored (a cron or time zone not its id’s, a nextRunAt that is not a time, or disabled with a valid schedule); safe to repeat and to interrupt',
    )
    .addHelpText(
      'after',
      `
Progress on stderr, for the notifications scanned, then the schedules they name checked, then
every schedule's index buckets read: a bar on a terminal, a line every few seconds otherwise;
30 s without a finished page, it says what it waits on. Interrupted (Ctrl-C), it says how far
it got (every page of notifications scanned is indexed); running it again is safe.`,
    )
    .action(async () => {
      const projectId = projectOf(program.opts());
      const db = await openFirestore(projectId);
      let progress: Progress | undefined;
      let total: number | undefined;
      let scanned = 0;
      let finished = false;
      // After the scan: the schedules checked, then their index buckets, each with its progress.
      let phase: { what: string; done: number; total: number } | undefined;
      const phaseProgress = (what: string, noun: string, start: string, verb: string) => {
        let started = false;
        return (done: number, of: number) => {
          stall.moved();
          if (!started) {
            started = true;
            progress?.stop(true);
            progress = progressOf({ command: 'reindex', total: of, noun, start, verb });
          }
          phase = { what, done, total: of };
          progress?.update(done);
        };
      };
      // Ctrl-C (or SIGTERM, SIGHUP) says how far it got: every page scanned has its index entries written.
      const interrupted = (signal: StopSignal) => {
        progress?.stop(false);
        process.stderr.write(
          total === undefined
            ? 'reindex: interrupted before scanning any notification\n'
            : phase === undefined
              ? `reindex: interrupted after scanning ${scanned} of ${total} notifications (those scanned are indexed; the page under way may be partly done); running it again is safe\n`
              : `reindex: interrupted after scanning all ${total} notifications, each indexed, while ${phase.what} (${phase.done} of ${phase.total} done); running it again is safe\n`,
        );
        process.exit(signalExitCode(signal));
      };
      const { remove: removeSignals } = onStopSignals(interrupted, () => undefined);
      const stall = silenceWarning('reindex', 'page', projectId);
      let result: Awaited<ReturnType<typeof reindexNotifications>>;
      try {
        total = (await db.collection(COLLECTIONS.notifications).count().get()).data().count;
        progress = progressOf({ command: 'reindex', total, noun: 'notifications', start: 'to scan', verb: 'scanned' });
        result = await reindexNotifications(db, {
          onProgress: (n) => {
            stall.moved();
            scanned = n;
            progress?.update(n);
          },
          onSchedules: phaseProgress('checking their schedules', 'schedules', 'to check', 'checked'),
          onBuckets: phaseProgress(
            "reading the schedules' index buckets",
            'schedules',
            'with index buckets to read',
            'with their index buckets read',
          ),
          onRewrites: phaseProgress(
            "deleting the older layout's buckets, then rewriting buckets as plain lists",
            'buckets',
            'to rewrite as plain lists (after deleting those of the older layout)',
            'rewritten as plain lists',
          ),
        });
        finished = true;
      } finally {
        stall.stop();
        removeSignals();
        progress?.stop(finished);
        await db.terminate();
      }
      process.stdout.write(
        `scanned ${counted(result.scanned, 'notification')}; ${result.indexed} enabled ${result.indexed === 1 ? 'one is' : 'ones are'} in their schedule's index\n`,
      );
      if (result.schedulesCreated > 0) {
        process.stdout.write(
          `created ${counted(result.schedulesCreated, 'missing schedule document')}, due at their next occurrence\n`,
        );
      }
      if (result.schedulesRepaired > 0) {
        process.stdout.write(
          `mended ${counted(result.schedulesRepaired, 'schedule document')} that could not run as stored (a cron or time zone not their id's, no nextRunAt time, or disabled with a valid schedule), due at their next occurrence\n`,
        );
      }
      if (result.staleBuckets > 0) {
        process.stdout.write(`deleted ${result.staleBuckets} index buckets of an older layout\n`);
      }
      if (result.foldedBuckets > 0) {
        process.stdout.write(
          `rewrote ${result.foldedBuckets} index buckets as a plain list of ids (from a map of ids, which a tick reads slower, or dropping an id repeated or a value that is not one)\n`,
        );
      }
    });
  const reasonText = nonBlankText(MAX_PAUSE_REASON_CHARS);
  // A new reason is checked as the admin API checks it (checkedPauseReason): kept without the
  // blanks around it, in NFC. A selector (--paused-reason) takes any stored reason, to resume those made before.
  const newReasonText = (value: string): string => {
    const checked = checkedPauseReason(value);
    // One line, as `add` names a bad option: not Commander's echo of the value and the whole help.
    if ('problem' in checked) throw new CliError(`pause: --reason: ${checked.problem}`);
    return checked.reason;
  };
  program
    .command('pause')
    .description('pause a notification: it is no longer dispatched')
    .argument('<id>', 'the notification id')
    .option(
      '--reason <text>',
      `why, kept as its pausedReason without the blanks around it and in NFC (1 to ${MAX_PAUSE_REASON_CHARS} characters, not blank or only invisible characters, no control or invisible character, as in an id; default "${DEFAULT_PAUSE_REASON}"; a notification already paused keeps its reason unless one is given, and the time it was paused)`,
      newReasonText,
    )
    .action((id: string, o: { reason?: string }) => setEnabled(id, false, o.reason));
  program
    .command('resume')
    .description(
      'resume a paused notification, or in bulk every one paused for a reason (--paused-reason) or for any reason (--all-paused); clears the failure count and puts it back in its dispatch index',
    )
    .argument('[id]', 'the notification id (or use --paused-reason / --all-paused)')
    .option(
      '--paused-reason <reason>',
      'resume every notification whose pausedReason is exactly this, e.g. invalid_auth (as `show` prints it)',
      reasonText,
    )
    .option('--all-paused', 'resume every paused notification, whatever its reason')
    .option(
      '--dry-run',
      'with --paused-reason or --all-paused: count and list the matches (ids: up to 1,000; unlisted: how many more), change nothing',
    )
    .option(
      '--page-size <n>',
      `with --paused-reason or --all-paused: notifications read and resumed per page (1 to ${RESUME_PAGE_SIZE_MAX.toLocaleString('en-US')})`,
      positiveInt(RESUME_PAGE_SIZE_MAX),
      RESUME_PAGE_SIZE,
    )
    .addHelpText(
      'after',
      `
Examples:
  slack-fanout resume n-123                              one notification
  slack-fanout resume --paused-reason invalid_auth --dry-run
  slack-fanout resume --paused-reason invalid_auth       after fixing a revoked or wrong bot token

In bulk, progress goes to stderr and the counts as JSON to stdout: matched, resumed, skipped
(no longer paused for that reason when its turn came: resumed, paused for another reason
or deleted meanwhile), failed (left paused; exit code 1), byReason; with --dry-run also
ids (up to 1,000 of the matches) and unlisted (how many matches are not in ids). Each notification is resumed as by
\`resume <id>\`, with its dispatch index entry in the same transaction. Safe to repeat and to
interrupt: a second run takes only what is still paused. Interrupted (Ctrl-C), it lets the
transactions under way finish, prints its counts with interrupted: true (and notReached: the
matches read whose transaction it did not begin, still paused), says how far it got,
and exits 130; a second Ctrl-C stops at once. 30 s without a finished page, it says what it waits on. A notification
imported with "enabled": false has no pausedReason and is never resumed in bulk.`,
    )
    .action(
      async (
        id: string | undefined,
        o: { pausedReason?: string; allPaused?: boolean; dryRun?: boolean; pageSize: number },
        command: Command,
      ) => {
        const bulk = o.pausedReason !== undefined || o.allPaused === true;
        if (id !== undefined && bulk) {
          throw new CliError(
            `resume: give a notification id or ${o.pausedReason !== undefined ? '--paused-reason' : '--all-paused'}, not both (got id ${quoted(id)})`,
          );
        }
        if (o.pausedReason !== undefined && o.allPaused) {
          throw new CliError('resume: give --paused-reason or --all-paused, not both');
        }
        if (!bulk) {
          if (id === undefined) {
            throw new CliError('resume: give a notification id, --paused-reason <reason> or --all-paused');
          }
          if (o.dryRun) throw new CliError('resume: --dry-run goes with --paused-reason or --all-paused, not an id');
          if (command.getOptionValueSource('pageSize') === 'cli') {
            throw new CliError('resume: --page-size goes with --paused-reason or --all-paused, not an id');
          }
          return setEnabled(id, true);
        }
        const selector: PausedSelector =
          o.pausedReason !== undefined ? { pausedReason: o.pausedReason } : { allPaused: true };
        await resumeInBulk(projectOf(program.opts()), selector, o.dryRun === true, o.pageSize);
      },
    );

  program
    .command('show')
    .description(
      "print a notification, as stored, and nextRunAt: when it is next sent (its schedule's next instant; null when paused, or when its schedule has no document, which reindex makes, said on stderr)",
    )
    .argument('<id>', 'the notification id')
    .action(async (id: string) => {
      docId('notification', id);
      const db = await openFirestore(projectOf(program.opts()));
      try {
        const snap = await db.collection(COLLECTIONS.notifications).doc(id).get();
        if (!snap.exists) throw new CliError(notificationNotFound(id));
        const data = snap.data() ?? {};
        const nextRunAt = await nextRunOf(db, data);
        print({ id, ...data, nextRunAt: nextRunAt?.toISOString() ?? null });
        // Enabled, and yet no next instant: its schedule's document is missing (deleted by hand),
        // and no tick reaches it until reindex makes it again.
        const scheduleId = indexedSchedule(data);
        if (nextRunAt === null && scheduleId !== null) {
          process.stderr.write(
            `show: schedule ${scheduleId} has no document (or no nextRunAt time), so no tick sends this notification: \`slack-fanout reindex\` makes it, due at its next instant\n`,
          );
        }
      } finally {
        await db.terminate();
      }
    });

  program
    .command('list')
    .description(
      'list notifications by id, a page at a time, as JSON: {notifications: [{id, accountId, channelId, teamId?, cron, timezone, enabled, pausedReason?}], next}',
    )
    .option('--paused', 'only the paused ones (enabled: false)')
    .option(
      '--schedule <scheduleId>',
      "only those of one schedule (s_ and 20 hex digits, as a tick's log names it: those a skipped-missed warning's reports were for)",
    )
    .option('--limit <n>', 'notifications in the page (1 to 1,000)', positiveInt(1000), 100)
    .option('--after <id>', 'the page after this notification id (the "next" a page printed)')
    .addHelpText(
      'after',
      '\n"next" is the last id of a full page, to pass as --after; null after the last page. A --schedule that no schedule document and no notification has is an error (exit 2).',
    )
    .action(async (o: { paused?: boolean; schedule?: string; limit: number; after?: string }) => {
      if (o.after !== undefined) docId('notification', o.after, '--after');
      if (o.schedule !== undefined) docId('schedule', o.schedule, '--schedule');
      const db = await openFirestore(projectOf(program.opts()));
      try {
        let q = listQuery(db, o);
        if (o.after !== undefined) q = q.startAfter(o.after);
        const snap = await q.limit(o.limit).get();
        if (o.schedule !== undefined && snap.empty && o.after === undefined) {
          // Neither a schedule document nor any notification of it (paused or not): no such schedule.
          const [schedule, any] = await Promise.all([
            db.collection(COLLECTIONS.schedules).doc(o.schedule).get(),
            o.paused ? listQuery(db, { schedule: o.schedule }).limit(1).get() : snap,
          ]);
          if (!schedule.exists && any.empty) throw new CliError(scheduleNotFound(o.schedule));
        }
        const notifications = snap.docs.map((d) => listed(d.id, d.data()));
        print({ notifications, next: snap.size === o.limit ? (snap.docs.at(-1)?.id ?? null) : null });
      } finally {
        await db.terminate();
      }
    });

  program
    .command('delete')
    .description(
      'delete a notification: it leaves the dispatch index in the same commit, so no tick publishes it again (a message already published for it is recorded failed, notification_not_found, and posts nothing)',
    )
    .argument('<id>', 'the notification id')
    .action(async (id: string) => {
      docId('notification', id);
      const db = await openFirestore(projectOf(program.opts()));
      try {
        if (!(await deleteNotification(db, id))) throw new CliError(notificationNotFound(id));
        print({ id, deleted: true });
      } finally {
        await db.terminate();
      }
    });

  program
    .command('run')
    .description(
      "print a run and its deliveries' counts by status (once the run's record has expired, its deliveries' counts, with run: null and a note, while any is left)",
    )
    .argument(
      '<runId>',
      'scheduleId:occurrence, as the tick answers and the logs show (the occurrence in any RFC 3339 spelling)',
    )
    .addHelpText(
      'after',
      `
The id is taken as copied: blanks around it, %3A out of a URL, a blank for its colon, a space
for the T. One that cannot name a run (an occurrence that cannot be read) is named, exit 2; a
run with no record and no delivery is named, exit 2. A run's deliveries may count fewer than
it published: a notification moved to the run's schedule after it was sent in the same minute
under its old one has its one delivery counted under that earlier run.`,
    )
    .action(async (typed: string) => {
      const runId = typedRunId(typed);
      const db = await openFirestore(projectOf(program.opts()));
      try {
        const summary = await runSummary(runId, new FirestoreStore(db));
        if (!summary) throw new CliError(`${runNamed(runId)} does not exist, and no delivery of it is in the ledger`);
        print(summary);
      } finally {
        await db.terminate();
      }
    });

  program
    .command('deliveries')
    .description(
      "list a run's deliveries in one status, a page at a time by delivery id, as JSON: {runId, status, deliveries: [{id, notificationId (null for one recorded from a message too broken to name it), attempts, outcomeUnknown? (true when an attempt's post may have landed unseen: a redrive looks in the channel first), lastError?: {code, slackError?, message, at}, channelId? (where it posted), channelsTried? (where its attempts were to post, for one not posted), slackTs?, sentAt?, updatedAt}], next}",
    )
    .argument('<runId>', 'scheduleId:occurrence (the occurrence in any RFC 3339 spelling)')
    .addOption(
      new Option('--status <status>', 'the status of the deliveries listed')
        .choices(DELIVERY_STATUSES)
        .default('failed'),
    )
    .option('--limit <n>', 'deliveries in the page (1 to 1,000)', positiveInt(1000), 100)
    .option('--after <id>', 'the page after this delivery id (the "next" a page printed)')
    .addHelpText(
      'after',
      `
Which deliveries failed, and why: \`slack-fanout deliveries <runId>\` (failed is the default
status); those a redrive would send again: --status dead. "next" is the last id of a full page,
to pass as --after; null after the last page. A run that does not exist, with no delivery in the
ledger, exits 2.`,
    )
    .action(async (typed: string, o: { status: DeliveryStatus; limit: number; after?: string }) => {
      const runId = typedRunId(typed);
      if (o.after !== undefined) docId('delivery', o.after, '--after');
      const db = await openFirestore(projectOf(program.opts()));
      try {
        const store = new FirestoreStore(db);
        const page = await store.deliveriesOfRun(runId, o.status, o.after ?? null, o.limit, [
          ...LISTED_DELIVERY_FIELDS,
        ]);
        if (page.length === 0 && o.after === undefined && !(await runSummary(runId, store))) {
          throw new CliError(`${runNamed(runId)} does not exist, and no delivery of it is in the ledger`);
        }
        print({
          runId,
          status: o.status,
          deliveries: page.map((d) => listedDelivery(d.id, d.data)),
          next: page.length === o.limit ? (page.at(-1)?.id ?? null) : null,
        });
      } finally {
        await db.terminate();
      }
    });

  /** `dead-runs` and `failed-runs`: the runs with deliveries of `status`, a page at a time. */
  const listRuns = async (status: RedrivenStatus, o: { ids?: boolean; pageSize: number }) => {
    const command = `${status}-runs`;
    const projectId = projectOf(program.opts());
    const db = await openFirestore(projectId);
    const stall = silenceWarning(command, 'page', projectId);
    try {
      const tally = await tallyRuns(new FirestoreStore(db), status, o.pageSize, stall, command);
      const { runs, withoutRun } = tally.result();
      if (o.ids) process.stdout.write(runs.map((r) => `${r.runId}\n`).join(''));
      else print({ runs, [status]: tally.count, withoutRun });
    } finally {
      stall.stop();
      await db.terminate();
    }
  };

  program
    .command('dead-runs')
    .description(
      'list the runs that have dead deliveries (those `redrive <runId>` sends again), with how many each, the latest occurrence first, as JSON: {runs: [{runId, dead}], dead, withoutRun}',
    )
    .option('--ids', 'print the run ids alone, one a line, for a script')
    .option(
      '--page-size <n>',
      'dead deliveries read per page (1 to 1,000)',
      positiveInt(DEAD_RUNS_PAGE_SIZE),
      DEAD_RUNS_PAGE_SIZE,
    )
    .addHelpText(
      'after',
      `
It reads every dead delivery's run, a page at a time, and after each full page says on stderr how
many it has read. "dead" counts them all; "withoutRun" those recorded from a message too broken
to name its run, which no redrive brings back (\`deliveries\` cannot list them either; the
notifier's log has each). To redrive every run listed, one after another, in one process (safe
to repeat, and it says what it did):

  npm run --silent cli -- redrive --all-runs`,
    )
    .action((o: { ids?: boolean; pageSize: number }) => listRuns('dead', o));

  program
    .command('failed-runs')
    .description(
      'list the runs that have failed deliveries (a permanent error: those `redrive <runId> --failed` sends again once the cause is fixed), with how many each, the latest occurrence first, as JSON: {runs: [{runId, failed}], failed, withoutRun}',
    )
    .option('--ids', 'print the run ids alone, one a line, for a script')
    .option(
      '--page-size <n>',
      'failed deliveries read per page (1 to 1,000)',
      positiveInt(DEAD_RUNS_PAGE_SIZE),
      DEAD_RUNS_PAGE_SIZE,
    )
    .addHelpText(
      'after',
      `
It reads every failed delivery's run, a page at a time, and after each full page says on stderr
how many it has read. "failed" counts them all; "withoutRun" those whose record names no run,
which no redrive reaches. A record a broken message left (invalid_message, no attempt made) is
no failure of its delivery and is not counted: no redrive sends it. A failed delivery of a
notification deleted since is counted, and stays failed: a redrive passes it over (skipped).
\`deliveries <runId>\` lists a run's failed deliveries with why each failed. After a token
Slack refused is replaced, resume the notifications it paused, then redrive every run listed,
one after another, in one process:

  npm run --silent cli -- resume --paused-reason invalid_auth
  npm run --silent cli -- redrive --all-runs --failed`,
    )
    .action((o: { ids?: boolean; pageSize: number }) => listRuns('failed', o));

  program
    .command('redrive')
    .description(
      "put a run's dead deliveries (with --failed, its failed ones too) back on the dispatch topic, or with --all-runs those of every run that has any (safe to repeat, and safe to interrupt: what an interrupted redrive reopened is published by a redrive run 30 minutes or more later; a run whose record has expired still redrives while any delivery of it is dead (with --failed, or failed), or reopened by a redrive and not yet published)",
    )
    .argument('[runId]', 'scheduleId:occurrence (the occurrence in any RFC 3339 spelling); or use --all-runs')
    .option(
      '--all-runs',
      'every run with dead deliveries (with --failed, or failed ones), as dead-runs (and failed-runs) list them when it begins, and every run with deliveries a stopped redrive left reopened and unpublished, one run after another in this one process',
    )
    .option(
      '--topic <name>',
      'the dispatch topic the deliveries are published to: a topic id, or projects/{project}/topics/{id}; not the dead-letter topic, and one with a subscription',
      redriveTopic,
      TOPOLOGY.dispatchTopic,
    )
    .option(
      '--failed',
      "the run's failed deliveries too (a permanent error, such as a token Slack refused or a channel the app is not in), once their cause is fixed; those of a paused notification are left failed, as its dead ones are left dead: resume it first",
    )
    .option(
      '--page-size <n>',
      `deliveries read and published per page (1 to ${REDRIVE_PAGE_SIZE_MAX.toLocaleString('en-US')})`,
      positiveInt(REDRIVE_PAGE_SIZE_MAX),
      REDRIVE_PAGE_SIZE,
    )
    .addHelpText(
      'after',
      `
Progress and logs on stderr, the counts as JSON on stdout: redriven, skipped (no longer dead
when their turn came), failed (not published; exit code 1), waiting (reopened by another
redrive that has not published them yet) and waitingUntil (when a redrive may take them over);
stopped, when Pub/Sub refused a page: the redrive went no further, and what it had not reached
is still dead (or failed) for the next run. paused: dead (with --failed, and failed) deliveries
left as they are, as their notification is paused (sent, each would be recorded skipped, and
the report lost: resume it, then redrive again), with pausedNotifications (the first 20 of
those notifications); there with --failed, and without it once there is one. With --failed,
also deleted (failed deliveries of a notification deleted since, left failed, counted in
skipped too); a record a broken message left is left alone, uncounted.
A redriven delivery whose earlier post may have landed looks in its channel before posting.
30 s without a finished page, it says what it waits on.
Ctrl-C stops it after the page under way (interrupted: true, exit 130), a second at once;
deliveries it reopened but had not published yet are published by a redrive run 30 minutes or
more later (until then a redrive counts them as waiting, and says from when). Ctrl-C before
it has reopened anything (while it checks the topic and the run, or lists the runs) ends it at once, with
"nothing changed" on stderr and no JSON.

With --all-runs, it first reads every dead delivery's run (with --failed, every failed one's
too), as dead-runs and failed-runs do, then redrives those runs one after another: the runs
with dead deliveries, the latest occurrence first, then those with failed ones alone, then
those with deliveries alone that a stopped redrive left reopened and unpublished (retrying,
which neither list names). A delivery that goes dead meanwhile, in a run not listed, waits for
the next redrive. The JSON sums every run's counts, with listed (the runs listed), runs (each run's counts,
in the order redriven) and, once interrupted or stopped, notReached (listed runs it did not
begin, whose deliveries are as they were). Ctrl-C stops it after the page under way. Examples:
  slack-fanout redrive --all-runs                   every dead delivery
  slack-fanout resume --paused-reason invalid_auth  after replacing a token Slack refused,
  slack-fanout redrive --all-runs --failed          then every dead and failed delivery`,
    )
    .action(
      async (typed: string | undefined, o: { topic: string; pageSize: number; failed?: true; allRuns?: true }) => {
        if (typed !== undefined && o.allRuns) {
          throw new CliError(`redrive: give a run id or --all-runs, not both (got run id ${quoted(typed)})`);
        }
        if (typed === undefined && !o.allRuns) {
          throw new CliError(
            'redrive: give a run id (dead-runs and failed-runs list them), or --all-runs for every run with dead deliveries (with --failed, or failed ones)',
          );
        }
        const projectId = projectOf(program.opts());
        const runId = typed === undefined ? undefined : typedRunId(typed);
        const failedToo = o.failed === true;
        // Only redrive publishes: it needs the Pub/Sub emulator, or credentials, as well.
        await checkEnvironment(true);
        // Ctrl-C before the redrive starts ends it there: nothing was reopened. Once it runs, it
        // stops after the page under way, which is published or put back to dead, and says so; a
        // second stops at once, leaving that page to a later redrive.
        const state: RedriveState = { started: false, sofar: 'nothing redriven yet', current: runId };
        const stops = onStopSignals(
          (signal) => {
            if (!state.started) {
              process.stderr.write('redrive: interrupted before it reopened any delivery: nothing changed\n');
              process.exit(signalExitCode(signal));
            }
            process.stderr.write(stoppingLine('redrive', signal, 'after the page under way'));
          },
          () => {
            process.stderr.write(
              `redrive: interrupted: ${state.sofar}; a page being published is left reopened (retrying, which neither dead-runs nor failed-runs lists${runId === undefined ? `; it is of run ${state.current}` : ': keep the run id'}), and \`slack-fanout redrive ${runId === undefined ? '--all-runs' : state.current}${failedToo ? ' --failed' : ''}\` after ${new Date(Date.now() + REDRIVE_STRANDED_AFTER_MS).toISOString()} takes it over\n`,
            );
            process.exit(stops.exitCode());
          },
        );
        // A failure from here to the try below ends the command; the handler holds no process open.
        await checkReachable('Pub/Sub', projectId);
        const db = await openFirestore(projectId);
        // Loaded here, by the one command that publishes: the Pub/Sub client takes longer to load
        // than most commands take to run.
        const { createPubSub, pagePublisher } = await import('../shared/pubsub');
        const pubsub = createPubSub(projectId);
        const publisher = pagePublisher(pubsub, o.topic);
        const redriveLog = createLogger({ service: 'cli', level: 'warn', destination: pino.destination(2) });

        try {
          const store = new FirestoreStore(db);
          if (runId === undefined) {
            await redriveAllRuns({
              store,
              pubsub,
              publisher,
              topic: o.topic,
              projectId,
              pageSize: o.pageSize,
              failed: failedToo,
              stops,
              log: redriveLog,
              state,
            });
            return;
          }
          const runMissing = () =>
            new CliError(
              `${runNamed(runId)} does not exist, and no delivery of it is dead${failedToo ? ' or failed' : ''}, or reopened by a redrive and not yet published`,
            );
          try {
            await checkRedriveTopic(pubsub, o.topic, projectId);
          } catch (err) {
            // A run that does not exist is said as such where the topic does not exist either (the
            // default one, in a project never deployed to), as the admin API's 404 says it.
            if (
              err instanceof TopicMissing &&
              !(await redrivable(runId, store, firestoreRedriveLedger(store), { failed: failedToo }))
            ) {
              throw runMissing();
            }
            throw err;
          }
          if (!(await redrivable(runId, store, firestoreRedriveLedger(store), { failed: failedToo })))
            throw runMissing();
          state.started = true;
          const stall = silenceWarning('redrive', 'page', projectId);
          let result: Awaited<ReturnType<typeof redriveRun>>;
          try {
            result = await redriveRun(runId, {
              ledger: firestoreRedriveLedger(store),
              publisher,
              isDraining: () => stops.signal.aborted,
              // Logs go to stderr: stdout holds the result alone, for scripts.
              log: redriveLog,
              pageSize: o.pageSize,
              failed: failedToo,
              onProgress: (r) => {
                stall.moved();
                state.sofar = redriveCounts(r);
                process.stderr.write(`redrive: ${state.sofar} so far\n`);
              },
            });
          } finally {
            // A redrive ended, or thrown, leaves no stall warning running and no Ctrl-C handler.
            stall.stop();
            stops.remove();
          }
          print(result);
          // The run's deliveries as they stand now: an interrupted redrive says what is left (the
          // stop may come once the last page is done), and any redrive what is still being retried.
          const counts = await within(
            store.countByStatus(runId).catch(() => null),
            REDRIVE_COUNT_MS,
          );
          // Those it reopened are being tried again too: not counted (those already sent since
          // would make the count low, hence "at least").
          const retried = (counts?.retrying ?? 0) + (counts?.sending ?? 0) - result.redriven;
          if (retried > 0) {
            process.stderr.write(
              `redrive: at least ${counted(retried, 'other delivery', 'other deliveries')} of the run ${retried === 1 ? 'is' : 'are'} still being tried (retrying or sending), not dead yet: ${retried === 1 ? 'if it ends dead, it needs' : 'those that end dead need'} another redrive\n`,
            );
          }
          // A run holds one delivery a notification: more paused than named is more notifications.
          const paused = result.paused ?? 0;
          const named = result.pausedNotifications?.length ?? 0;
          for (const line of redriveLeftLines(result, {
            runs: 'the run',
            more: paused > named ? ` (the first ${named} of ${paused})` : '',
            failed: failedToo,
          })) {
            process.stderr.write(line);
          }
          // Without --failed, a redrive takes dead deliveries alone: one that failed (a permanent
          // error, as a token Slack refused) is not sent again, and an operator who fixed its cause
          // should know how to send it.
          const failed = counts?.failed ?? 0;
          if (!failedToo && failed > 0) {
            process.stderr.write(
              `redrive: ${counted(failed, 'delivery', 'deliveries')} of the run failed (a permanent error, not out of attempts) and ${failed === 1 ? 'is' : 'are'} not redriven: redrive sends dead deliveries alone; \`slack-fanout deliveries ${runId} --status failed\` lists ${failed === 1 ? 'it' : 'them'} with why, and once the cause is fixed \`slack-fanout redrive ${runId} --failed\` sends ${failed === 1 ? 'it' : 'them'} again (${FAILED_LEFT_AS_THEY_ARE})\n`,
            );
          }
          // Last, what an interrupted redrive left: the line to act on.
          if (result.interrupted) {
            // With --failed, what is left failed is left to redrive too.
            const left = counts ? counts.dead + (failedToo ? counts.failed : 0) : undefined;
            const still = failedToo ? 'dead or failed' : 'dead';
            process.stderr.write(
              left === undefined
                ? `redrive: interrupted: what it had not reached is still ${still} (running it again is safe)\n`
                : left === 0
                  ? `redrive: interrupted: none of the run's deliveries is still ${still}, nothing is left to redrive\n`
                  : `redrive: interrupted: ${left} of the run's deliveries still ${still} (running it again is safe${(result.paused ?? 0) > 0 ? `; ${result.paused} of them left for ${result.paused === 1 ? 'its paused notification, sent once it is resumed' : 'their paused notifications, sent once those are resumed'}` : ''})\n`,
            );
            process.exitCode = stops.exitCode();
          }
          // Stopped, the stop's code, as resume's: its JSON says what failed.
          if (result.failed > 0 && !result.interrupted) process.exitCode = EXIT.failed;
        } finally {
          // Nor one that ended before the redrive started.
          stops.remove();
          await publisher.close();
          await pubsub.close();
          await db.terminate();
        }
      },
    );
  refuseOptionSlips(program);
  takeExcessArguments(program);
  return program;
}

if (require.main === module) {
  // On the emulators there is no metadata server to look for.
  if (process.env.FIRESTORE_EMULATOR_HOST) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const fail = (err: unknown): never => {
    // Commander has printed its own message (or the help) already.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    const { message, exitCode } = failureOf(err);
    process.stderr.write(`slack-fanout: ${message}\n`);
    process.exit(exitCode);
  };
  // A client failing in the background (a connection, credentials) still ends in one line. A
  // call the command gave up waiting for (a best-effort count, bounded at REDRIVE_COUNT_MS), then
  // ended by the client's terminate() as the command closes it, is not a failure of the command:
  // its work was done and said (a redrive that printed its JSON exited 1 on it).
  process.on('unhandledRejection', (err) => {
    if (abandonedAtTerminate(err)) return;
    fail(err);
  });
  // A reader that stopped early (`| head`), or a terminal that closed (SIGHUP, whose stop is then
  // under way): what is left to print goes nowhere, and the command ends as it would have, with
  // its own exit code, instead of on the write's error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (!readerGone(err, stream.isTTY === true)) fail(err);
    });
  }
  const program = buildProgram();
  const args = withoutHelpOfHelp(process.argv.slice(2));
  const unknown = unknownCommandOf(program, args);
  const versionAsValue = versionTakenAsValue(program, args);
  try {
    if (unknown !== undefined) {
      program.error(`error: unknown command '${unknown}'`, { exitCode: EXIT.usage, code: 'commander.unknownCommand' });
    }
    if (versionAsValue !== undefined) {
      program.error(`error: ${versionAsValue}`, { exitCode: EXIT.usage, code: 'commander.optionMissingArgument' });
    }
  } catch (err) {
    fail(err);
  }
  program.parseAsync(args, { from: 'user' }).catch(fail);
}
