import { PubSub, type Topic } from '@google-cloud/pubsub';
import type { DispatchMessage } from './messages';

export function createPubSub(projectId: string): PubSub {
  return new PubSub({ projectId });
}

/** The dispatch topic with the batching the fan-out needs: many small messages a page. */
export function dispatchTopic(pubsub: PubSub, name: string): Topic {
  return pubsub.topic(name, {
    batching: { maxMessages: 1000, maxMilliseconds: 10, maxBytes: 5 * 1024 * 1024 },
  });
}

/** Publishes one page of dispatch messages and resolves once Pub/Sub has them all. */
export interface PagePublisher {
  publishPage(messages: { message: DispatchMessage; attributes: Record<string, string> }[]): Promise<void>;
}

/** Publishes a page and resolves once every message of it is accepted by Pub/Sub. */
export function topicPublisher(topic: Topic): PagePublisher {
  return {
    async publishPage(messages: { message: DispatchMessage; attributes: Record<string, string> }[]): Promise<void> {
      const accepted = messages.map((m) => topic.publishMessage({ json: m.message, attributes: m.attributes }));
      // The page is whole: send its batch now instead of after the batching delay.
      await Promise.all([...accepted, topic.flush()]);
    },
  };
}

/** A readiness check: the topic answers and exists. */
export function topicReady(topic: Topic): () => Promise<void> {
  return async () => {
    const [exists] = await topic.exists();
    if (!exists) throw new Error(`topic ${topic.name} does not exist`);
  };
}
