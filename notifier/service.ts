import { AUTH_OFF_WARNING, type AuthSettings, googleTokenVerifier, serviceGuards } from '../shared/auth';
import { type Config, ConfigError, describeConfig, TOKEN_REQUIRED } from '../shared/config';
import { errorMessage, FanoutError } from '../shared/errors';
import type { ReadinessCheck } from '../shared/http';
import { createLogger, type Logger } from '../shared/logger';
import type { AccountStore, DeliveryLedger, NotificationStore, RunStore } from '../shared/ports';
import { createLifecycle, serve } from '../shared/service';
import { TOPOLOGY } from '../shared/topology';
import { createApp } from './app';
import { SlackClient, type SlackPort, scopeProblems } from './slack';

/** Where the notifier keeps its state: Firestore in production (index.ts). */
export interface NotifierStores {
  ledger: DeliveryLedger;
  notifications: NotificationStore;
  accounts: AccountStore;
  runs: Pick<RunStore, 'getRun'>;
  readiness: Record<string, ReadinessCheck>;
  /** Called once the server has stopped taking requests: queued writes leave, clients close. */
  close(): Promise<void>;
}

/**
 * The notifier service around its stores: auth, logging, the Slack client, the app, and a
 * graceful shutdown, from a configuration loadServiceConfig checked. Throws, before anything
 * listens or any store is made, without a bot token.
 */
export function serveNotifier(config: Config, auth: AuthSettings, stores: () => NotifierStores): void {
  const token = config.slackBotToken;
  if (!token) throw ConfigError.of([TOKEN_REQUIRED]);
  const log = createLogger({ service: 'notifier', level: config.logLevel });
  log.info({ config: describeConfig(config, 'notifier') }, 'starting');
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
  serve(app, { service: 'notifier', port: config.port, host: config.host }, log, lifecycle, close);
  // In the background: Slack out of reach at start must not keep the notifier from serving.
  void checkSlackToken(slack, log);
}

/**
 * Asks Slack about the bot token once, at start, and says in the log what it will not allow: a
 * token Slack refuses, or scopes that leave posts failing or a retry unable to look for an
 * earlier post. Never throws: the deliveries record each failure as it comes.
 */
export async function checkSlackToken(slack: Pick<SlackPort, 'checkToken'>, log: Logger): Promise<void> {
  try {
    const { team, scopes } = await slack.checkToken();
    log.info({ slack: { team, scopes } }, 'Slack accepted the bot token');
    for (const problem of scopes ? scopeProblems(scopes) : []) log.warn({ slack: { scopes } }, problem);
  } catch (err) {
    if (err instanceof FanoutError && !err.retryable) {
      log.error(
        { slack: { error: err.slackError ?? err.code } },
        `Slack refused the bot token at start (${err.slackError ?? err.code}): every post will fail until ` +
          'SLACK_BOT_TOKEN is replaced',
      );
    } else {
      log.warn({ err: errorMessage(err) }, 'could not reach Slack to check the bot token at start');
    }
  }
}
