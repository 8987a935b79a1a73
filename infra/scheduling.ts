import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { DEFAULT_CATCH_UP_WINDOW_SECONDS } from '../shared/config';
import { TOPOLOGY } from '../shared/topology';
import type { Apis } from './apis';
import type { InfraConfig } from './config';
import { seconds } from './messaging';

export const TICK_JOB_NAME = 'slack-fanout-tick';

/** The wait before a failed tick is tried again. */
export const TICK_RETRY_BACKOFF_SECONDS = 15;

/**
 * How many times Cloud Scheduler tries a failed tick again: once, for a quick failure (a cold
 * start, a 503 while Firestore is away), when both attempts fit within the catch-up window;
 * else never.
 *
 * A retry is safe (runs are leased and resume at their cursor) but carries the first attempt's
 * schedule time, and Cloud Scheduler skips the scheduled ticks that fall while it retries. Its
 * occurrences are aged when it arrives (planOccurrence): up to a deadline and the backoff after
 * the schedule time, and each up to one tick interval before it. The bound taken, both attempts
 * whole (2 × deadline + backoff), is on the safe side of that: it leaves room for a tick
 * interval as long as the deadline. Without the retry, the next scheduled tick
 * sends those occurrences.
 */
export function tickRetryCount(
  attemptDeadlineSeconds: number,
  catchUpWindowSeconds: number = DEFAULT_CATCH_UP_WINDOW_SECONDS,
): number {
  return tickRetrySpanSeconds(attemptDeadlineSeconds, 1) <= catchUpWindowSeconds ? 1 : 0;
}

/** From a tick's schedule time to the end of its last attempt, at the longest. */
export function tickRetrySpanSeconds(attemptDeadlineSeconds: number, retryCount: number): number {
  return attemptDeadlineSeconds * (retryCount + 1) + TICK_RETRY_BACKOFF_SECONDS * retryCount;
}

export interface SchedulingArgs {
  project: string;
  region: string;
  scheduler: InfraConfig['scheduler'];
  dispatcherUrl: pulumi.Output<string>;
  schedulerAccount: gcp.serviceaccount.Account;
  apis: Apis;
  /** The dispatcher's invoker grant: a tick before it is a 403. */
  dependsOn: pulumi.Resource[];
}

export function createTickJob(args: SchedulingArgs): gcp.cloudscheduler.Job {
  return new gcp.cloudscheduler.Job(
    'tick',
    {
      project: args.project,
      region: args.region,
      name: TICK_JOB_NAME,
      description: 'Asks the slack-fanout dispatcher to publish the notifications that are due',
      schedule: args.scheduler.cron,
      timeZone: args.scheduler.timeZone,
      attemptDeadline: seconds(args.scheduler.attemptDeadlineSeconds),
      retryConfig: {
        retryCount: tickRetryCount(args.scheduler.attemptDeadlineSeconds),
        minBackoffDuration: seconds(TICK_RETRY_BACKOFF_SECONDS),
        maxBackoffDuration: seconds(TICK_RETRY_BACKOFF_SECONDS),
        maxDoublings: 0,
      },
      httpTarget: {
        uri: pulumi.interpolate`${args.dispatcherUrl}${TOPOLOGY.tickPath}`,
        httpMethod: 'POST',
        oidcToken: {
          serviceAccountEmail: args.schedulerAccount.email,
          audience: args.dispatcherUrl,
        },
      },
    },
    { dependsOn: [args.apis.cloudscheduler, ...args.dependsOn] },
  );
}
