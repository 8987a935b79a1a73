import { AUTH_OFF_WARNING, authSettingsFor, googleTokenVerifier, serviceGuards } from '../shared/auth';
import { type Config, describeConfig } from '../shared/config';
import type { ReadinessCheck } from '../shared/http';
import { createLogger } from '../shared/logger';
import type { AccountStore, DeliveryLedger, NotificationStore } from '../shared/ports';
import { createLifecycle, serve } from '../shared/service';
import { TOPOLOGY } from '../shared/topology';
import { createApp } from './app';
import { SlackClient } from './slack';

/** Where the notifier keeps its state: Firestore in production (index.ts). */
export interface NotifierStores {
  ledger: DeliveryLedger;
  notifications: NotificationStore;
  accounts: AccountStore;
  readiness: Record<string, ReadinessCheck>;
  /** Called once the server has stopped taking requests: queued writes leave, clients close. */
  close(): Promise<void>;
}

/**
 * The notifier service around its stores: auth, logging, the Slack client, the app, and a
 * graceful shutdown. Throws, before anything listens or any store is made, on a bad
 * configuration.
 */
export function serveNotifier(config: Config, stores: () => NotifierStores): void {
  const token = config.slackBotToken;
  if (!token) throw new Error('SLACK_BOT_TOKEN is required: the notifier needs a bot token to post');
  // Before anything listens: a service that would run open on Cloud Run does not start.
  const auth = authSettingsFor(config, 'notifier');
  const log = createLogger({ service: 'notifier', level: config.logLevel });
  log.info({ config: describeConfig(config) }, 'starting');
  if (auth.mode === 'none') log.warn({ authMode: 'none' }, AUTH_OFF_WARNING);
  const guards = serviceGuards(auth, 'push', () => googleTokenVerifier());
  const { close, readiness, ...ports } = stores();
  const slack = new SlackClient({
    apiUrl: config.slackApiUrl,
    timeoutMs: config.slackTimeoutMs,
    tokenFor: () => token,
  });
  const lifecycle = createLifecycle(log);
  const app = createApp({
    log,
    projectId: config.projectId,
    ...ports,
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
    readiness,
  });
  serve(app, { port: config.port, host: config.host }, log, lifecycle, close);
}
