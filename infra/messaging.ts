import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { TOPOLOGY } from '../shared/topology';
import type { Apis } from './apis';

/** Pub/Sub takes durations as strings of seconds. */
export function seconds(n: number): string {
  return `${n}s`;
}

export const RETRY_POLICY = Object.freeze({
  minimumBackoff: seconds(TOPOLOGY.retryPolicy.minimumBackoffSeconds),
  maximumBackoff: seconds(TOPOLOGY.retryPolicy.maximumBackoffSeconds),
});

export interface Topics {
  dispatch: gcp.pubsub.Topic;
  deadLetter: gcp.pubsub.Topic;
}

export function createTopics(project: string, labels: Record<string, string>, apis: Apis): Topics {
  const opts = { dependsOn: [apis.pubsub] };
  return {
    dispatch: new gcp.pubsub.Topic('dispatch', { project, name: TOPOLOGY.dispatchTopic, labels }, opts),
    deadLetter: new gcp.pubsub.Topic('dead-letter', { project, name: TOPOLOGY.deadLetterTopic, labels }, opts),
  };
}

export interface SubscriptionsArgs {
  project: string;
  labels: Record<string, string>;
  topics: Topics;
  /** The notifier's URL, which is also the audience its OIDC check expects. */
  notifierUrl: pulumi.Input<string>;
  pushAccount: gcp.serviceaccount.Account;
  /** The notifier service and its invoker grant: pushing before either exists only burns attempts. */
  dependsOn: pulumi.Resource[];
}

export interface Subscriptions {
  dispatch: gcp.pubsub.Subscription;
  deadLetter: gcp.pubsub.Subscription;
}

export function createSubscriptions(args: SubscriptionsArgs): Subscriptions {
  const pushTo = (path: string) => ({
    pushEndpoint: pulumi.interpolate`${args.notifierUrl}${path}`,
    oidcToken: { serviceAccountEmail: args.pushAccount.email, audience: args.notifierUrl },
  });
  const common = {
    project: args.project,
    labels: args.labels,
    ackDeadlineSeconds: TOPOLOGY.ackDeadlineSeconds,
    retryPolicy: RETRY_POLICY,
    messageRetentionDuration: seconds(TOPOLOGY.messageRetentionSeconds),
    // The default expiry deletes a subscription after 31 quiet days; a paused schedule must not lose its pipe.
    expirationPolicy: { ttl: '' },
  };
  const opts = { dependsOn: args.dependsOn };
  return {
    dispatch: new gcp.pubsub.Subscription(
      'dispatch-push',
      {
        ...common,
        name: TOPOLOGY.dispatchSubscription,
        topic: args.topics.dispatch.id,
        pushConfig: pushTo(TOPOLOGY.pushPath),
        deadLetterPolicy: {
          deadLetterTopic: args.topics.deadLetter.id,
          maxDeliveryAttempts: TOPOLOGY.maxDeliveryAttempts,
        },
      },
      opts,
    ),
    deadLetter: new gcp.pubsub.Subscription(
      'dead-letter-push',
      {
        ...common,
        name: TOPOLOGY.deadLetterSubscription,
        topic: args.topics.deadLetter.id,
        pushConfig: pushTo(TOPOLOGY.deadLetterPath),
      },
      opts,
    ),
  };
}
