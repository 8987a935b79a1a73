#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { type Firestore, Timestamp } from '@google-cloud/firestore';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { GoogleAuth } from 'google-auth-library';
import pino from 'pino';
import { z } from 'zod';
import { positiveInt } from '../shared/cli-args';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import { type Account, accountSchema, userIdProblem } from '../shared/model';
import {
  InvalidNotificationError,
  type NewNotification,
  notificationDoc,
  type PausedSelector,
  pausedQuery,
  RESUME_PAGE_SIZE,
  type ResumePausedResult,
  reindexNotifications,
  resumePaused,
  saveAccounts,
  saveNotifications,
  setNotificationEnabled,
} from '../shared/notifications';
import { createPubSub, dispatchTopic, topicPublisher } from '../shared/pubsub';
import { firestoreRedriveLedger, redriveRun } from '../shared/redrive';
import { COLLECTIONS, TOPOLOGY } from '../shared/topology';

/**
 * `slack-fanout`: the operator's command line. It talks to Firestore and Pub/Sub directly
 * with the caller's own Google credentials (or the emulators, when their env vars are set).
 */

const newNotificationSchema = z.strictObject({
  id: z.string().min(1),
  accountId: z.string().min(1),
  channelId: z.string().min(1),
  teamId: z.string().min(1).optional(),
  cron: z.string().min(1),
  timezone: z.string().min(1),
  title: z.string().max(150).optional(),
  enabled: z.boolean().optional(),
});

const newAccountSchema = accountSchema
  .extend({
    id: z.string().min(1),
    // A link in a Slack message: the web's own schemes only.
    dashboardUrl: z.url({ protocol: /^https?$/ }).optional(),
  })
  .strict();

/** Firestore's largest document, less room for its id and field names. */
const MAX_ACCOUNT_BYTES = 1_000_000;
export type NewAccount = { id: string; account: Account };

class CliError extends Error {}

function projectOf(opts: { project?: string }): string {
  const project = opts.project ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (!project) throw new CliError('no project: pass --project or set GOOGLE_CLOUD_PROJECT');
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
    throw new CliError(
      `no Google credentials (${(err as Error).message.split('.')[0]}): run \`gcloud auth application-default login\`, ` +
        'or set GOOGLE_APPLICATION_CREDENTIALS; for the emulators set FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST',
    );
  }
}

function print(value: unknown): void {
  // Firestore Timestamps print as ISO times, not as {_seconds, _nanoseconds}.
  const replacer = (_key: string, v: unknown) => (v instanceof Timestamp ? v.toDate().toISOString() : v);
  process.stdout.write(`${JSON.stringify(value, replacer, 2)}\n`);
}

/** A Firestore document id as typed on the command line, or a CliError naming it. */
function docId(what: string, id: string): string {
  const problem = userIdProblem(id);
  if (problem) throw new CliError(`${what} id ${JSON.stringify(id.slice(0, 100))}: ${problem}`);
  return id;
}

function readText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    // Strict: a file in another encoding is an error, not ids quietly full of U+FFFD. A BOM is dropped.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new CliError(`${file} is not UTF-8 text`);
  }
}

/** Reads a JSON array of notifications, naming the first bad entry. */
export function parseNotificationsFile(text: string, file: string): NewNotification[] {
  return parseNotificationEntries(parseJsonArray(text, file, 'notifications'), (i) => `${file}[${i}]`);
}

function parseJsonArray(text: string, file: string, of: string): unknown[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new CliError(`${file} must hold a JSON array of ${of}`);
  return data;
}

/** Reads a JSON array of accounts (the data a report shows), naming the first bad entry. */
export function parseAccountsFile(text: string, file: string): NewAccount[] {
  const entries = validEntries(
    parseJsonArray(text, file, 'accounts'),
    newAccountSchema,
    (i) => `${file}[${i}]`,
    (a) => {
      const problem = userIdProblem(a.id);
      if (problem) return `account id ${JSON.stringify(a.id.slice(0, 100))}: ${problem}`;
      const { id, ...account } = a;
      const bytes = Buffer.byteLength(JSON.stringify(account), 'utf8');
      return bytes > MAX_ACCOUNT_BYTES
        ? `account ${id} is ${bytes} bytes; a Firestore document holds at most about 1 MB`
        : null;
    },
  );
  return entries.map(({ id, ...account }) => ({ id, account }));
}

/** Validates notifications (schema, ids, cron, time zone, no id twice), naming the first bad one by `where`. */
function parseNotificationEntries(
  entries: unknown[],
  where: (i: number) => string,
  fieldName?: (field: string) => string,
): NewNotification[] {
  return validEntries(
    entries,
    newNotificationSchema,
    where,
    (n) => {
      try {
        notificationDoc(n as NewNotification);
        return null;
      } catch (err) {
        if (err instanceof InvalidNotificationError) return err.message;
        throw err;
      }
    },
    fieldName,
  ) as NewNotification[];
}

/**
 * The entries of an import, each checked by `schema` and then `problem`, no id twice: a
 * CliError names the first bad entry by `where` (and a field by `fieldName`).
 */
function validEntries<T extends { id: string }>(
  entries: unknown[],
  schema: z.ZodType<T>,
  where: (i: number) => string,
  problem: (entry: T) => string | null,
  fieldName: (field: string) => string = (field) => field,
): T[] {
  const seen = new Map<string, number>();
  return entries.map((entry, i) => {
    const parsed = schema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const [field, ...rest] = (issue?.path ?? []).map(String);
      const path = field === undefined ? '(entry)' : [fieldName(field), ...rest].join('.');
      throw new CliError(`${where(i)}: ${path}: ${issue?.message}`);
    }
    const e = parsed.data;
    const first = seen.get(e.id);
    if (first !== undefined) throw new CliError(`${where(i)}: duplicate id ${e.id} (also ${where(first)})`);
    seen.set(e.id, i);
    const why = problem(e);
    if (why) throw new CliError(`${where(i)}: ${why}`);
    return e;
  });
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

/** Saves an import's entries (`save`), with a progress bar, and says how many. */
async function importFile<T>(
  projectId: string,
  items: T[],
  what: string,
  save: (db: Firestore, items: T[], onProgress: (n: number) => void) => Promise<void>,
): Promise<void> {
  const db = createFirestore(projectId);
  const bar = new SingleBar({ format: 'importing [{bar}] {value}/{total}', hideCursor: true });
  bar.start(items.length, 0);
  try {
    await save(db, items, (n) => bar.update(n));
  } finally {
    bar.stop();
    await db.terminate();
  }
  process.stdout.write(`imported ${items.length} ${what}\n`);
}

/**
 * `resume --paused-reason …` / `--all-paused`: pages through the matches, a progress bar on a
 * terminal's stderr (a line a page otherwise), the counts as JSON on stdout.
 */
async function resumeInBulk(projectId: string, selector: PausedSelector, dryRun: boolean, pageSize: number) {
  const db = createFirestore(projectId);
  const tty = process.stderr.isTTY === true;
  const bar = new SingleBar({
    format: `${dryRun ? 'counting' : 'resuming'} [{bar}] {value}/{total} | {resumed} resumed, {skipped} skipped, {failed} failed`,
    hideCursor: true,
  });
  let result: ResumePausedResult;
  try {
    // The total is an estimate for the bar: what is paused or resumed meanwhile moves it.
    const total = (await pausedQuery(db, selector).count().get()).data().count;
    if (tty) bar.start(total, 0, { resumed: 0, skipped: 0, failed: 0 });
    else process.stderr.write(`resume: ${total} to ${dryRun ? 'count' : 'resume'}\n`);
    result = await resumePaused(db, selector, {
      dryRun,
      pageSize,
      onProgress: (p) => {
        if (tty) bar.update(p.matched, { resumed: p.resumed, skipped: p.skipped, failed: p.failed });
        else {
          process.stderr.write(
            `resume: ${p.matched} of ${total} read, ${p.resumed} resumed, ${p.skipped} skipped, ${p.failed} failed\n`,
          );
        }
      },
    });
  } finally {
    if (tty) bar.stop();
    await db.terminate();
  }
  const { ids, unlisted, firstError, ...counts } = result;
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
    process.exitCode = 1;
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name('slack-fanout')
    .description(
      'Operate slack-fanout: import and manage notifications, inspect runs, redrive dead deliveries. ' +
        'Uses your Google credentials (gcloud auth application-default login), or the emulators when ' +
        'FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are set.',
    )
    .option('-p, --project <id>', 'the Google Cloud project (default: $GOOGLE_CLOUD_PROJECT)')
    // Every command's help lists --project too.
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError()
    .hook('preAction', async (_program, command) => {
      // Only `redrive` publishes; every other command talks to Firestore alone.
      await checkCredentials(command.name() === 'redrive');
    });

  program
    .command('import')
    .description(
      'create or replace the notifications in a JSON file (an array of {id, accountId, channelId, cron, timezone, teamId?, title?, enabled?})',
    )
    .argument('<file>', 'the JSON file')
    .action((file: string) =>
      importFile(
        projectOf(program.opts()),
        parseNotificationsFile(readText(file), file),
        'notifications',
        (db, items, onProgress) => saveNotifications(db, items, { onProgress }),
      ),
    );

  program
    .command('import-accounts')
    .description(
      'create or replace the accounts in a JSON file: the data each report shows (an array of {id, name, metrics?: [{label, value, change?}], highlights?: [string], dashboardUrl?})',
    )
    .argument('<file>', 'the JSON file')
    .action((file: string) =>
      importFile(
        projectOf(program.opts()),
        parseAccountsFile(readText(file), file),
        'accounts',
        (db, items, onProgress) => saveAccounts(db, items, { onProgress }),
      ),
    );

  program
    .command('add')
    .description('create or replace one notification')
    .requiredOption('--id <id>', 'the notification id (required)')
    .requiredOption('--account <accountId>', 'the account whose report it sends (required)')
    .requiredOption('--channel <channelId>', 'the Slack channel id (required)')
    .requiredOption('--cron <expr>', "5-field cron, e.g. '0 9 * * MON-FRI' (required)")
    .requiredOption('--timezone <tz>', 'IANA time zone, e.g. Europe/Paris (required)')
    .option('--team <teamId>', 'the Slack workspace id')
    .option('--title <title>', 'the report title')
    .addHelpText('after', '\nReplaces the whole notification: one that was paused comes back enabled.')
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
          (field) => ADD_OPTIONS[field] ?? field,
        ) as [NewNotification];
        const db = createFirestore(projectOf(program.opts()));
        try {
          await saveNotifications(db, [n]);
        } finally {
          await db.terminate();
        }
        print({ id: n.id, saved: true });
      },
    );

  const setEnabled = async (id: string, enabled: boolean, reason?: string) => {
    const db = createFirestore(projectOf(program.opts()));
    try {
      if (!(await setNotificationEnabled(db, docId('notification', id), enabled, reason)))
        throw new CliError(`notification ${id} does not exist`);
    } finally {
      await db.terminate();
    }
    print({ id, enabled });
  };
  program
    .command('reindex')
    .description(
      'add every enabled notification missing from its schedule’s dispatch index (data written before the index existed); safe to repeat',
    )
    .action(async () => {
      const db = createFirestore(projectOf(program.opts()));
      const bar = new SingleBar({ format: 'reindexing [{bar}] {value}/{total}', hideCursor: true });
      let result: { scanned: number; indexed: number };
      try {
        const total = (await db.collection(COLLECTIONS.notifications).count().get()).data().count;
        bar.start(total, 0);
        result = await reindexNotifications(db, { onProgress: (n) => bar.update(n) });
      } finally {
        bar.stop();
        await db.terminate();
      }
      process.stdout.write(
        `scanned ${result.scanned} notifications; ${result.indexed} enabled ones are in their schedule's index\n`,
      );
    });
  const reasonText = (v: string): string => {
    if (v.trim() === '' || v.length > 500) {
      throw new InvalidArgumentError(`expected 1 to 500 characters, got ${JSON.stringify(v.slice(0, 40))}`);
    }
    return v;
  };
  program
    .command('pause')
    .description('pause a notification: it is no longer dispatched')
    .argument('<id>', 'the notification id')
    .option('--reason <text>', 'why, kept as its pausedReason (1 to 500 characters)', reasonText)
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
    .option('--dry-run', 'with --paused-reason or --all-paused: count and list the matches, change nothing')
    .option('--page-size <n>', 'notifications read per page in bulk', positiveInt(), RESUME_PAGE_SIZE)
    .addHelpText(
      'after',
      `
Examples:
  slack-fanout resume n-123                              one notification
  slack-fanout resume --paused-reason invalid_auth --dry-run
  slack-fanout resume --paused-reason invalid_auth       after fixing a revoked or wrong bot token

In bulk, progress goes to stderr and the counts as JSON to stdout: matched, resumed, skipped
(no longer paused for that reason when its turn came: resumed, paused for another reason
or deleted meanwhile), failed (left paused; exit code 1). Each notification is resumed as by
\`resume <id>\`, with its dispatch index entry in the same transaction. Safe to repeat and to
interrupt: a second run takes only what is still paused. A notification imported with
"enabled": false has no pausedReason and is never resumed in bulk.`,
    )
    .action(
      async (
        id: string | undefined,
        o: { pausedReason?: string; allPaused?: boolean; dryRun?: boolean; pageSize: number },
      ) => {
        const bulk = o.pausedReason !== undefined || o.allPaused === true;
        if (id !== undefined && bulk) {
          throw new CliError(
            `resume: give a notification id or ${o.pausedReason !== undefined ? '--paused-reason' : '--all-paused'}, not both (got id ${JSON.stringify(id.slice(0, 100))})`,
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
          return setEnabled(id, true);
        }
        const selector: PausedSelector =
          o.pausedReason !== undefined ? { pausedReason: o.pausedReason } : { allPaused: true };
        await resumeInBulk(projectOf(program.opts()), selector, o.dryRun === true, o.pageSize);
      },
    );

  program
    .command('show')
    .description('print a notification')
    .argument('<id>', 'the notification id')
    .action(async (id: string) => {
      const db = createFirestore(projectOf(program.opts()));
      try {
        const snap = await db.collection(COLLECTIONS.notifications).doc(docId('notification', id)).get();
        if (!snap.exists) throw new CliError(`notification ${id} does not exist`);
        print({ id, ...snap.data() });
      } finally {
        await db.terminate();
      }
    });

  program
    .command('run')
    .description("print a run and its deliveries' counts by status")
    .argument('<runId>', 'scheduleId:occurrence, as the tick answers and the logs show')
    .action(async (runId: string) => {
      const db = createFirestore(projectOf(program.opts()));
      try {
        const store = new FirestoreStore(db);
        const run = await store.getRun(docId('run', runId));
        if (!run) throw new CliError(`run ${runId} does not exist`);
        print({ runId, run, deliveries: await store.countByStatus(runId) });
      } finally {
        await db.terminate();
      }
    });

  program
    .command('redrive')
    .description(
      "put a run's dead deliveries back on the dispatch topic (safe to repeat, and safe to interrupt: what an interrupted redrive reopened is published by a redrive run 30 minutes or more later)",
    )
    .argument('<runId>', 'scheduleId:occurrence')
    .option('--topic <name>', 'the dispatch topic', TOPOLOGY.dispatchTopic)
    .option('--page-size <n>', 'deliveries per page', positiveInt(), 200)
    .action(async (runId: string, o: { topic: string; pageSize: number }) => {
      const projectId = projectOf(program.opts());
      const db = createFirestore(projectId);
      const pubsub = createPubSub(projectId);
      try {
        const store = new FirestoreStore(db);
        if (!(await store.getRun(docId('run', runId)))) throw new CliError(`run ${runId} does not exist`);
        const result = await redriveRun(runId, {
          ledger: firestoreRedriveLedger(store),
          publisher: topicPublisher(dispatchTopic(pubsub, o.topic)),
          // Logs go to stderr: stdout holds the result alone, for scripts.
          log: createLogger({ service: 'cli', level: 'warn', destination: pino.destination(2) }),
          pageSize: o.pageSize,
          onProgress: (r) => {
            process.stderr.write(`redrive: ${r.redriven} redriven, ${r.skipped} skipped, ${r.failed} failed so far\n`);
          },
        });
        print(result);
        if (result.waiting > 0) {
          process.stderr.write(
            `redrive: ${result.waiting} reopened by another redrive are waiting for it to publish them; a redrive after ${result.waitingUntil} takes them over\n`,
          );
        }
        if (result.failed > 0) process.exitCode = 1;
      } finally {
        await pubsub.close();
        await db.terminate();
      }
    });
  return program;
}

if (require.main === module) {
  // On the emulators there is no metadata server to look for.
  if (process.env.FIRESTORE_EMULATOR_HOST) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const fail = (err: unknown): never => {
    process.stderr.write(`slack-fanout: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof CliError ? 2 : 1);
  };
  // A client failing in the background (a connection, credentials) still ends in one line.
  process.on('unhandledRejection', fail);
  buildProgram().parseAsync(process.argv).catch(fail);
}
