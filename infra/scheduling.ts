import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { TOPOLOGY } from '../shared/topology';
import type { Apis } from './apis';
import type { InfraConfig } from './config';
import { seconds } from './messaging';
import { TICK_RETRY_BACKOFF_SECONDS, tickRetryCount } from './tick';

export const TICK_JOB_NAME = 'slack-fanout-tick';

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
