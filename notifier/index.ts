import { AUTH_OFF_WARNING, authSettingsFor, googleTokenVerifier, serviceGuards } from '../shared/auth';
import { describeConfig, loadConfig } from '../shared/config';
import { createFirestore, firestoreReady } from '../shared/firestore';
import { accountStoreOf, FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import { createLifecycle, serve } from '../shared/service';
import { TOPOLOGY } from '../shared/topology';
import { createApp } from './app';
import { SlackClient } from './slack';

function main(): void {
  const config = loadConfig();
  const token = config.slackBotToken;
  if (!token) throw new Error('SLACK_BOT_TOKEN is required: the notifier needs a bot token to post');
  // Before anything listens: a service that would run open on Cloud Run does not start.
  const auth = authSettingsFor(config, 'notifier');
  const log = createLogger({ service: 'notifier', level: config.logLevel });
  log.info({ config: describeConfig(config) }, 'starting');
  if (auth.mode === 'none') log.warn({ authMode: 'none' }, AUTH_OFF_WARNING);
  const guards = serviceGuards(auth, 'push', () => googleTokenVerifier());
  const db = createFirestore(config.projectId);
  // Reads and ledger writes of concurrent pushes share round trips (shared/firestore-batching.ts).
  const store = new FirestoreStore(db, { coalesce: true });
  const slack = new SlackClient({
    apiUrl: config.slackApiUrl,
    timeoutMs: config.slackTimeoutMs,
    tokenFor: () => token,
  });
  const lifecycle = createLifecycle(log);
  const app = createApp({
    log,
    projectId: config.projectId,
    ledger: store,
    notifications: store,
    accounts: accountStoreOf(store),
    slack,
    ...(guards.invoker ? { pushAuth: guards.invoker } : {}),
    claimTtlMs: config.claimTtlSeconds * 1000,
    pauseAfterFailures: config.pauseAfterFailures,
    slackTimeoutMs: config.slackTimeoutMs,
    nackDelayMs: config.nackDelayMs,
    // Answered before Pub/Sub's own push timeout (the ack deadline) gives up on the request.
    deadlineMs: (TOPOLOGY.ackDeadlineSeconds - 10) * 1000,
    isDraining: lifecycle.isDraining,
    track: lifecycle.track,
    readiness: { firestore: firestoreReady(db) },
  });
  serve(app, { port: config.port, host: config.host }, log, lifecycle, async () => {
    // Queued writes leave before the client goes (terminate() refuses while a writer is open).
    await store.close();
    await db.terminate();
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`notifier: ${(err as Error).message}\n`);
  process.exit(1);
}
