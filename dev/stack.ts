import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Firestore } from '@google-cloud/firestore';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import express, { type Express, type Request, type RequestHandler } from 'express';
import { firestoreAdminPorts } from '../dispatcher/admin';
import { createApp as createDispatcher } from '../dispatcher/app';
import { createApp as createNotifier } from '../notifier/app';
import { SlackClient } from '../notifier/slack';
import { Semaphore } from '../shared/concurrency';
import { DEFAULT_LARGE_RUNS, DEFAULT_SCHEDULE_CONCURRENCY } from '../shared/config';
import { createFirestore, firestoreReady } from '../shared/firestore';
import { accountStoreOf, FirestoreStore } from '../shared/firestore-store';
import { createLogger, type Logger } from '../shared/logger';
import { createPubSub, dispatchTopic, pagePublisher, topicReady } from '../shared/pubsub';
import { isLocalTopology, localTopology, type Topology } from '../shared/topology';
import { createTopology, deleteSubscriptions } from './topology';

/**
 * The whole pipeline in one process, on the emulators, for the emulator tests and the
 * benchmark: both services' real apps with the real clients, the topology created on the
 * Pub/Sub emulator pointing at the in-process notifier.
 */
export interface StackOptions {
  projectId: string;
  slackApiUrl: string;
  slackToken: string;
  topology?: Topology;
  claimTtlSeconds?: number;
  slackTimeoutMs?: number;
  pageSize?: number;
  leaseSeconds?: number;
  pauseAfterFailures?: number;
  /** The longest a push may take before answering 503 (default: the ack deadline less 10 s). */
  pushDeadlineMs?: number;
  /**
   * Push to this URL instead of the in-process notifier: a notifier running as its own
   * process, for tests that kill it.
   */
  externalNotifierUrl?: string;
  /** Sees every request the in-process notifier gets, before it is handled. */
  observeNotifier?: (req: Request) => void;
  log?: Logger;
  /**
   * Guards built by a test (shared/auth.ts with its own verifier). Omitted ones are off: the
   * Pub/Sub emulator pushes without a token. The admin API is mounted only with its guard.
   */
  auth?: { tick?: RequestHandler; push?: RequestHandler; admin?: RequestHandler };
  /** The admin API's deadlines (dispatcher/admin.ts ADMIN_DEADLINES by default). */
  adminDeadlines?: { oneMs: number; bulkMs: number };
}

export interface Stack {
  projectId: string;
  db: Firestore;
  pubsub: PubSub;
  topic: Topic;
  store: FirestoreStore;
  topology: Topology;
  dispatcherUrl: string;
  notifierUrl: string;
  log: Logger;
  tick(at: Date): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

function listen(app: Express): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}` });
    });
  });
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? createLogger({ service: 'stack', level: process.env.LOG_LEVEL ?? 'silent' });
  const topology = opts.topology ?? localTopology();
  const db = createFirestore(opts.projectId);
  const pubsub = createPubSub(opts.projectId);
  const topic = dispatchTopic(pubsub, topology.dispatchTopic);
  const store = new FirestoreStore(db);
  // The notifier's own store, coalescing as in production (notifier/index.ts).
  const notifierStore = new FirestoreStore(db, { coalesce: true });

  const notifierApp = createNotifier({
    log: log.child({ service: 'notifier' }),
    projectId: opts.projectId,
    ledger: notifierStore,
    notifications: notifierStore,
    accounts: accountStoreOf(notifierStore),
    runs: notifierStore,
    slack: new SlackClient({
      apiUrl: opts.slackApiUrl,
      timeoutMs: opts.slackTimeoutMs ?? 5000,
      tokenFor: () => opts.slackToken,
    }),
    claimTtlMs: (opts.claimTtlSeconds ?? topology.ackDeadlineSeconds) * 1000,
    pauseAfterFailures: opts.pauseAfterFailures ?? 3,
    readiness: { firestore: firestoreReady(db) },
    slackTimeoutMs: opts.slackTimeoutMs ?? 5000,
    ...(isLocalTopology(topology) ? { nackDelayMs: topology.nackDelayMs } : {}),
    deadlineMs: opts.pushDeadlineMs ?? (topology.ackDeadlineSeconds - 10) * 1000,
    pushAuth: opts.auth?.push,
  });
  const inFlight = { count: 0 };
  const counting = (app: Express): Express => {
    const outer = express();
    outer.use((_req, res, next) => {
      inFlight.count++;
      res.on('close', () => {
        inFlight.count--;
      });
      next();
    });
    outer.use(app);
    return outer;
  };
  let notifierHandler: Express = notifierApp;
  if (opts.observeNotifier) {
    const observe = opts.observeNotifier;
    notifierHandler = express();
    notifierHandler.use((req, _res, next) => {
      observe(req);
      next();
    });
    notifierHandler.use(notifierApp);
  }
  const notifier = await listen(counting(notifierHandler));

  const publisher = pagePublisher(pubsub, topology.dispatchTopic);
  const dispatcherLog = log.child({ service: 'dispatcher' });
  const adminAuth = opts.auth?.admin;
  const dispatcherApp = createDispatcher({
    log: dispatcherLog,
    projectId: opts.projectId,
    runs: store,
    publisher,
    pageSize: opts.pageSize ?? 1000,
    scheduleConcurrency: DEFAULT_SCHEDULE_CONCURRENCY,
    largeRuns: new Semaphore(DEFAULT_LARGE_RUNS),
    pagesInFlight: 2,
    leaseSeconds: opts.leaseSeconds ?? 60,
    catchUpWindowSeconds: 900,
    readiness: { firestore: firestoreReady(db), pubsub: topicReady(topic) },
    tickAuth: opts.auth?.tick,
    ...(adminAuth
      ? {
          admin: {
            auth: adminAuth,
            ...firestoreAdminPorts(db, store, publisher, dispatcherLog, topicReady(topic)),
            ...(opts.adminDeadlines ? { deadlines: opts.adminDeadlines } : {}),
          },
        }
      : {}),
  });
  const dispatcher = await listen(counting(dispatcherApp));

  await createTopology(pubsub, topology, opts.externalNotifierUrl ?? notifier.url);

  return {
    projectId: opts.projectId,
    db,
    pubsub,
    topic,
    store,
    topology,
    dispatcherUrl: dispatcher.url,
    notifierUrl: notifier.url,
    log,
    async tick(at: Date) {
      const res = await fetch(`${dispatcher.url}${topology.tickPath}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cloudscheduler-scheduletime': at.toISOString() },
        body: '{}',
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async stop() {
      // Subscriptions go first, so the emulator stops pushing to a server that is closing.
      await deleteSubscriptions(pubsub, topology);
      // Handlers still running would otherwise meet a terminated Firestore client.
      const deadline = Date.now() + 10_000;
      while (inFlight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const s of [notifier.server, dispatcher.server]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await publisher.close();
      await pubsub.close();
      await notifierStore.close();
      await db.terminate();
    },
  };
}

let counter = 0;
/** A project id of its own for each test: the emulators keep projects apart. */
export function uniqueProjectId(prefix = 'test'): string {
  counter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
