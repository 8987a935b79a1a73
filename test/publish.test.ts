import type { Message, PubSub } from '@google-cloud/pubsub';
import { uniqueProjectId } from '../dev/stack';
import { NotReady } from '../shared/http';
import type { DispatchMessage } from '../shared/messages';
import * as wire from '../shared/publish-request';
import { createPubSub, dispatchTopic, pagePublisher, topicReady } from '../shared/pubsub';
import { waitFor } from './helpers';

describe('the page publisher on the Pub/Sub emulator', () => {
  let pubsub: PubSub;
  beforeEach(() => {
    pubsub = createPubSub(uniqueProjectId('publish'));
  });
  afterEach(async () => {
    await pubsub.close();
  });

  function page(n: number) {
    return Array.from({ length: n }, (_, i) => {
      const message: DispatchMessage = {
        v: 1,
        // Multi-byte ids too: the request is written here, in UTF-8.
        notificationId: i % 7 === 3 ? `n${i}-Zürich-☕-𝄞` : `n${i}`,
        occurrence: '2030-01-01T09:00:00.000Z',
        scheduleId: 's1',
        runId: 's1:2030-01-01T09:00:00.000Z',
      };
      return {
        message,
        attributes: { deliveryId: `${message.notificationId}:${message.occurrence}`, runId: message.runId },
      };
    });
  }

  test('a page of 2,345 arrives whole, each message once with its data and attributes', async () => {
    const [topic] = await pubsub.createTopic('dispatch-page');
    const [subscription] = await topic.createSubscription('dispatch-page-pull');
    const publisher = pagePublisher(pubsub, 'dispatch-page');
    const sent = page(2345);
    const encode = jest.spyOn(wire, 'encodePublishRequest');
    let encoded: number[] = [];
    try {
      await publisher.publishPage(sent);
    } finally {
      encoded = encode.mock.calls.map(([, messages]) => messages.length);
      encode.mockRestore();
      await publisher.close();
    }
    // Three requests (1,000, 1,000 and 345), each encoded here, not by the generated client.
    expect(encoded).toEqual([1000, 1000, 345]);
    const seen = new Map<string, { data: unknown; attributes: Record<string, string> }>();
    const repeated: string[] = [];
    subscription.on('message', (m: Message) => {
      const data = JSON.parse(m.data.toString()) as DispatchMessage;
      if (seen.has(data.notificationId)) repeated.push(data.notificationId);
      seen.set(data.notificationId, { data, attributes: m.attributes });
      m.ack();
    });
    try {
      await waitFor(`${sent.length} messages`, () => seen.size >= sent.length, 60_000);
    } finally {
      await subscription.close();
    }
    expect(repeated).toEqual([]);
    expect(seen.size).toBe(sent.length);
    for (const s of sent) {
      expect(seen.get(s.message.notificationId)).toEqual({ data: s.message, attributes: s.attributes });
    }
  });

  test('a topic that is not there: the page is refused with NOT_FOUND, naming the topic', async () => {
    const publisher = pagePublisher(pubsub, 'no-such-topic');
    try {
      await expect(publisher.publishPage(page(3))).rejects.toMatchObject({
        code: 5,
        message: expect.stringMatching(/NOT_FOUND.*\(topic projects\/.+\/topics\/no-such-topic\)$/),
      });
    } finally {
      await publisher.close();
    }
  });

  test('a full topic name is taken as it is; close() before any publish returns', async () => {
    const [topic] = await pubsub.createTopic('dispatch-full-name');
    const [subscription] = await topic.createSubscription('dispatch-full-name-pull');
    await pagePublisher(pubsub, 'unused').close();
    const publisher = pagePublisher(pubsub, topic.name);
    try {
      await publisher.publishPage(page(1));
    } finally {
      await publisher.close();
    }
    expect(topic.name).toMatch(/^projects\/.+\/topics\/dispatch-full-name$/);
    const received: string[] = [];
    subscription.on('message', (m: Message) => {
      received.push(m.data.toString());
      m.ack();
    });
    try {
      await waitFor('the message', () => received.length >= 1, 30_000);
    } finally {
      await subscription.close();
    }
    expect(received.map((d) => (JSON.parse(d) as DispatchMessage).notificationId)).toEqual(['n0']);
  });
});

describe("the dispatcher's readiness check of its topic, on the Pub/Sub emulator", () => {
  test('names a topic that does not exist, then one with no subscription, and passes once one reads it', async () => {
    const pubsub = createPubSub(uniqueProjectId('topic-ready'));
    const reasonOf = async () => {
      try {
        await topicReady(dispatchTopic(pubsub, 'dispatch-ready'))();
        return 'ok';
      } catch (err) {
        return err instanceof NotReady ? err.reason : `other: ${(err as Error).message}`;
      }
    };
    try {
      expect(await reasonOf()).toBe('topic_missing');
      const [topic] = await pubsub.createTopic('dispatch-ready');
      expect(await reasonOf()).toBe('topic_has_no_subscription');
      await topic.createSubscription('dispatch-ready-sub');
      expect(await reasonOf()).toBe('ok');
    } finally {
      await pubsub.close();
    }
  });
});
