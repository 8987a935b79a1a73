#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Timestamp } from '@google-cloud/firestore';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import {
  InvalidNotificationError,
  type NewNotification,
  notificationDoc,
  reindexNotifications,
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

class CliError extends Error {}

function projectOf(opts: { project?: string }): string {
  const project = opts.project ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (!project) throw new CliError('no project: pass --project or set GOOGLE_CLOUD_PROJECT');
  return project;
}

function print(value: unknown): void {
  // Firestore Timestamps print as ISO times, not as {_seconds, _nanoseconds}.
  const replacer = (_key: string, v: unknown) => (v instanceof Timestamp ? v.toDate().toISOString() : v);
  process.stdout.write(`${JSON.stringify(value, replacer, 2)}\n`);
}

/** A Firestore document id as typed on the command line, or a CliError naming it. */
function docId(what: string, id: string): string {
  if (!id || id.includes('/') || id === '.' || id === '..' || id.length > 1500) {
    throw new CliError(`${what} ${JSON.stringify(id)} is not a valid id (no '/', not empty)`);
  }
  return id;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got ${value}`);
  return n;
}

/** Reads a JSON array of notifications, naming the first bad entry. */
export function parseNotificationsFile(text: string, file: string): NewNotification[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new CliError(`${file} must hold a JSON array of notifications`);
  const seen = new Map<string, number>();
  return data.map((entry, i) => {
    const parsed = newNotificationSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CliError(`${file}[${i}]: ${issue?.path.join('.') || '(entry)'}: ${issue?.message}`);
    }
    const n = parsed.data as NewNotification;
    const first = seen.get(n.id);
    if (first !== undefined) throw new CliError(`${file}[${i}]: duplicate id ${n.id} (also ${file}[${first}])`);
    seen.set(n.id, i);
    try {
      notificationDoc(n);
    } catch (err) {
      if (err instanceof InvalidNotificationError) throw new CliError(`${file}[${i}]: ${err.message}`);
      throw err;
    }
    return n;
  });
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
    .showHelpAfterError();

  program
    .command('import')
    .description(
      'create or replace the notifications in a JSON file (an array of {id, accountId, channelId, cron, timezone, teamId?, title?, enabled?})',
    )
    .argument('<file>', 'the JSON file')
    .action(async (file: string) => {
      const items = parseNotificationsFile(readText(file), file);
      const db = createFirestore(projectOf(program.opts()));
      const bar = new SingleBar({ format: 'importing [{bar}] {value}/{total}', hideCursor: true });
      bar.start(items.length, 0);
      try {
        await saveNotifications(db, items, { onProgress: (n) => bar.update(n) });
      } finally {
        bar.stop();
        await db.terminate();
      }
      process.stdout.write(`imported ${items.length} notifications\n`);
    });

  program
    .command('add')
    .description('create or replace one notification')
    .requiredOption('--id <id>', 'the notification id')
    .requiredOption('--account <accountId>', 'the account whose report it sends')
    .requiredOption('--channel <channelId>', 'the Slack channel id')
    .requiredOption('--cron <expr>', "5-field cron, e.g. '0 9 * * MON-FRI'")
    .requiredOption('--timezone <tz>', 'IANA time zone, e.g. Europe/Paris')
    .option('--team <teamId>', 'the Slack workspace id')
    .option('--title <title>', 'the report title')
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
        const n: NewNotification = {
          id: o.id,
          accountId: o.account,
          channelId: o.channel,
          cron: o.cron,
          timezone: o.timezone,
          ...(o.team ? { teamId: o.team } : {}),
          ...(o.title ? { title: o.title } : {}),
        };
        try {
          notificationDoc(n);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
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
  program
    .command('pause')
    .description('pause a notification: it is no longer dispatched')
    .argument('<id>', 'the notification id')
    .option('--reason <text>', 'why, kept as its pausedReason')
    .action((id: string, o: { reason?: string }) => setEnabled(id, false, o.reason));
  program
    .command('resume')
    .description('resume a paused notification (clears its failure count)')
    .argument('<id>', 'the notification id')
    .action((id: string) => setEnabled(id, true));

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
    .description("put a run's dead deliveries back on the dispatch topic (safe to repeat)")
    .argument('<runId>', 'scheduleId:occurrence')
    .option('--topic <name>', 'the dispatch topic', TOPOLOGY.dispatchTopic)
    .option('--page-size <n>', 'deliveries per page', positiveInt, 200)
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
          log: createLogger({ service: 'cli', level: 'warn' }),
          pageSize: o.pageSize,
        });
        print(result);
        if (result.failed > 0) process.exitCode = 1;
      } finally {
        await pubsub.close();
        await db.terminate();
      }
    });
  return program;
}

if (require.main === module) {
  process.env.METADATA_SERVER_DETECTION ??= process.env.FIRESTORE_EMULATOR_HOST
    ? 'none'
    : process.env.METADATA_SERVER_DETECTION;
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`slack-fanout: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(err instanceof CliError ? 2 : 1);
    });
}
