/**
 * The peer's worker, in a process of its own (so its CPU is measured from /proc, like the
 * notifier's): a BullMQ Worker that does what the notifier does per delivery, the cron+queue
 * way. Claim with its own idempotency record in Redis (SET NX), load the notification and
 * its account, render the same Block Kit report, post with the same Slack client, record
 * `sent`, log one line. Retries and backoff are BullMQ's (attempts/backoff on the job).
 *
 * Env: REDIS_PORT, QUEUE, CONCURRENCY, SLACK_API_URL, SLACK_BOT_TOKEN, LOG_LEVEL.
 */
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { SlackClient } from '../notifier/slack';
import { FanoutError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import { accountSchema, deliveryIdOf, notificationSchema } from '../shared/model';
import { renderReport } from '../shared/report';

interface DeliveryJob {
  notificationId: string;
  occurrence: string;
  runId: string;
}

interface Claim {
  status: 'sending' | 'sent';
  attempts: number;
  claimExpiresAt?: number;
}

const CLAIM_TTL_MS = 60_000;

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

async function main(): Promise<void> {
  const connection = { host: '127.0.0.1', port: Number(env('REDIS_PORT')), maxRetriesPerRequest: null };
  const redis = new Redis(connection);
  const log = createLogger({ service: 'bullmq-worker', level: process.env.LOG_LEVEL ?? 'info' });
  const token = env('SLACK_BOT_TOKEN');
  const slack = new SlackClient({ apiUrl: env('SLACK_API_URL'), timeoutMs: 10_000, tokenFor: () => token });

  const processor = async (job: Job<DeliveryJob>) => {
    const { notificationId, occurrence } = job.data;
    const deliveryId = deliveryIdOf(notificationId, occurrence);
    const key = `delivery:${deliveryId}`;
    const now = Date.now();
    const claim: Claim = { status: 'sending', attempts: job.attemptsMade + 1, claimExpiresAt: now + CLAIM_TTL_MS };
    if ((await redis.set(key, JSON.stringify(claim), 'NX')) === null) {
      const existing = JSON.parse((await redis.get(key)) ?? '{}') as Partial<Claim>;
      if (existing.status === 'sent') return { status: 'already_sent' };
      if (existing.status === 'sending' && (existing.claimExpiresAt ?? 0) > now) throw new Error('claimed elsewhere');
      await redis.set(key, JSON.stringify({ ...claim, attempts: (existing.attempts ?? 0) + 1 }));
    }
    try {
      const raw = await redis.get(`notification:${notificationId}`);
      if (!raw) throw new UnrecoverableError(`notification ${notificationId} does not exist`);
      const notification = notificationSchema.parse(JSON.parse(raw));
      const accountRaw = await redis.get(`account:${notification.accountId}`);
      if (!accountRaw) throw new UnrecoverableError(`account ${notification.accountId} does not exist`);
      const account = accountSchema.parse(JSON.parse(accountRaw));
      const rendered = renderReport(notification, account, new Date(occurrence));
      const posted = await slack.post({
        channel: notification.slack.channelId,
        text: rendered.text,
        blocks: rendered.blocks,
        deliveryId,
      });
      const latencyMs = Date.now() - job.timestamp;
      await redis.set(
        key,
        JSON.stringify({
          status: 'sent',
          attempts: claim.attempts,
          slackTs: posted.ts,
          channelId: notification.slack.channelId,
          accountId: notification.accountId,
          latencyMs,
          sentAt: Date.now(),
        }),
      );
      log.info(
        { deliveryId, notificationId, jobId: job.id, slackTs: posted.ts, latencyMs, attempt: claim.attempts },
        'delivered',
      );
      return { status: 'sent', ts: posted.ts };
    } catch (err) {
      // Give the claim back so the retry can take it; a permanent failure is not retried.
      await redis.set(key, JSON.stringify({ status: 'retrying', attempts: claim.attempts }));
      if (err instanceof FanoutError && !err.retryable) throw new UnrecoverableError(err.message);
      throw err;
    }
  };

  const worker = new Worker<DeliveryJob>(env('QUEUE'), processor, {
    connection,
    concurrency: Number(process.env.CONCURRENCY ?? 8),
  });
  worker.on('failed', (job, err) => log.warn({ jobId: job?.id, err: err.message }, 'attempt failed'));
  await worker.waitUntilReady();
  process.send?.({ ready: true });

  const stop = () => {
    void worker
      .close()
      .then(() => redis.quit())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`bullmq-worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
