import { AUTH_OFF_WARNING, googleTokenVerifier, loadServiceConfig, serviceGuards } from '../shared/auth';
import { Semaphore } from '../shared/concurrency';
import { describeConfig } from '../shared/config';
import { createFirestore, firestoreReady } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import { createPubSub, dispatchTopic, pagePublisher, topicReady } from '../shared/pubsub';
import { createLifecycle, REDRIVE_PAGE_TIMEOUT_MS, serve } from '../shared/service';
import { adminDeadlines, firestoreAdminPorts } from './admin';
import { createApp } from './app';

function main(): void {
  // Before anything listens: a bad setting, or one that would run open on Cloud Run, stops it.
  const { config, auth } = loadServiceConfig('dispatcher');
  const log = createLogger({ service: 'dispatcher', level: config.logLevel });
  log.info({ config: describeConfig(config, 'dispatcher') }, 'starting');
  if (auth.mode === 'none') {
    log.warn({ authMode: 'none' }, AUTH_OFF_WARNING);
    if (auth.adminOpen) {
      log.warn(
        { adminOpenOnLoopback: true, host: config.host },
        'ADMIN_OPEN_ON_LOOPBACK: the admin API and the status page answer any caller on this machine',
      );
    }
  } else if (auth.adminEmails.length === 0) log.info('ADMIN_EMAILS is empty: the admin API refuses everyone');
  const guards = serviceGuards(auth, 'tick', () => googleTokenVerifier());
  const db = createFirestore(config.projectId);
  const pubsub = createPubSub(config.projectId);
  const topic = dispatchTopic(pubsub, config.dispatchTopic);
  const store = new FirestoreStore(db);
  const lifecycle = createLifecycle(log);
  const publisher = pagePublisher(pubsub, config.dispatchTopic);
  // A redrive's page must fail, and be put back to dead, within the shutdown's grace, so that a
  // redrive stopped by a shutdown still answers; a tick's pages keep the longer timeout (a tick
  // cut short is sent again by Cloud Scheduler, and resumes from its checkpoint).
  const redrivePublisher = pagePublisher(pubsub, config.dispatchTopic, { timeoutMs: REDRIVE_PAGE_TIMEOUT_MS });
  const app = createApp({
    log,
    projectId: config.projectId,
    runs: store,
    publisher,
    ...(guards.invoker ? { tickAuth: guards.invoker } : {}),
    admin: {
      auth: guards.admin,
      ...firestoreAdminPorts(db, store, redrivePublisher, log, topicReady(topic), lifecycle.isDraining),
      deadlines: adminDeadlines(config.adminDeadlineSeconds),
    },
    pageSize: config.dispatchPageSize,
    scheduleConcurrency: config.dispatchScheduleConcurrency,
    // One set of slots for the service: overlapping ticks share it.
    largeRuns: new Semaphore(config.dispatchLargeRuns),
    pagesInFlight: config.dispatchPagesInFlight,
    checkpointIntervalMs: config.dispatchCheckpointIntervalMs,
    leaseSeconds: config.runLeaseSeconds,
    catchUpWindowSeconds: config.catchUpWindowSeconds,
    isDraining: lifecycle.isDraining,
    deadlineMs: config.tickDeadlineSeconds * 1000,
    track: lifecycle.track,
    readiness: { firestore: firestoreReady(db), pubsub: topicReady(topic) },
  });
  serve(app, { service: 'dispatcher', port: config.port, host: config.host }, log, lifecycle, async () => {
    await Promise.all([publisher.close(), redrivePublisher.close()]);
    await pubsub.close();
    await db.terminate();
  });
}

try {
  main();
} catch (err) {
  // One line a person can act on, e.g. "invalid configuration: GOOGLE_CLOUD_PROJECT: ...".
  process.stderr.write(`dispatcher: ${(err as Error).message}\n`);
  process.exit(1);
}
