import type { PubSub } from '@google-cloud/pubsub';
import { isLocalTopology, type Topology } from '../shared/topology';

/**
 * Creates the topology on the Pub/Sub emulator: the dispatch topic and its push
 * subscription to the notifier (retry policy, dead-letter policy), the dead-letter
 * topic and its push subscription. Production gets the same settings from infra/.
 */
export async function createTopology(pubsub: PubSub, topology: Topology, notifierUrl: string): Promise<void> {
  // No retry policy on the emulator: see LocalTopology.
  const retryPolicy = isLocalTopology(topology)
    ? {}
    : {
        retryPolicy: {
          minimumBackoff: { seconds: topology.retryPolicy.minimumBackoffSeconds },
          maximumBackoff: { seconds: topology.retryPolicy.maximumBackoffSeconds },
        },
      };
  const [dispatch] = await pubsub.createTopic(topology.dispatchTopic);
  const [deadLetter] = await pubsub.createTopic(topology.deadLetterTopic);
  await dispatch.createSubscription(topology.dispatchSubscription, {
    pushConfig: { pushEndpoint: `${notifierUrl}${topology.pushPath}` },
    ackDeadlineSeconds: topology.ackDeadlineSeconds,
    ...retryPolicy,
    deadLetterPolicy: {
      deadLetterTopic: deadLetter.name,
      maxDeliveryAttempts: topology.maxDeliveryAttempts,
    },
    messageRetentionDuration: { seconds: topology.messageRetentionSeconds },
  });
  await deadLetter.createSubscription(topology.deadLetterSubscription, {
    pushConfig: { pushEndpoint: `${notifierUrl}${topology.deadLetterPath}` },
    ackDeadlineSeconds: topology.ackDeadlineSeconds,
    ...retryPolicy,
  });
}

/** Deletes the push subscriptions first, so the emulator stops pushing to a server that is closing. */
export async function deleteSubscriptions(pubsub: PubSub, topology: Topology): Promise<void> {
  await Promise.all(
    [topology.dispatchSubscription, topology.deadLetterSubscription].map((s) =>
      pubsub
        .subscription(s)
        .delete()
        .catch(() => undefined),
    ),
  );
}
