import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Firestore } from '@google-cloud/firestore';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { createApp as createDispatcher } from '../dispatcher/app';
import { createApp as createNotifier } from '../notifier/app';
import { SlackClient } from '../notifier/slack';
import { createFirestore } from '../shared/firestore';
import { accountStoreOf, FirestoreStore } from '../shared/firestore-store';
import { createLogger, type Logger } from '../shared/logger';
import { createPubSub, dispatchTopic, topicPublisher } from '../shared/pubsub';
import { localTopology, type Topology } from '../shared/topology';
import { createTopology } from './topology';

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
  log?: Logger;
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

function listen(app: ReturnType<typeof createNotifier>): Promise<{ server: Server; url: string }> {
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

  const notifierApp = createNotifier({
    log: log.child({ service: 'notifier' }),
    projectId: opts.projectId,
    ledger: store,
    notifications: store,
    accounts: accountStoreOf(store),
    slack: new SlackClient({
      apiUrl: opts.slackApiUrl,
      timeoutMs: opts.slackTimeoutMs ?? 5000,
      tokenFor: () => opts.slackToken,
    }),
    claimTtlMs: (opts.claimTtlSeconds ?? topology.ackDeadlineSeconds) * 1000,
    pauseAfterFailures: opts.pauseAfterFailures ?? 3,
  });
  const notifier = await listen(notifierApp);

  const dispatcherApp = createDispatcher({
    log: log.child({ service: 'dispatcher' }),
    projectId: opts.projectId,
    runs: store,
    publisher: topicPublisher(topic),
    pageSize: opts.pageSize ?? 500,
    leaseSeconds: opts.leaseSeconds ?? 60,
    catchUpWindowSeconds: 900,
  });
  const dispatcher = await listen(dispatcherApp);

  await createTopology(pubsub, topology, notifier.url);

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
      await Promise.all(
        [topology.dispatchSubscription, topology.deadLetterSubscription].map((s) =>
          pubsub
            .subscription(s)
            .delete()
            .catch(() => undefined),
        ),
      );
      for (const s of [notifier.server, dispatcher.server]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await pubsub.close();
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
