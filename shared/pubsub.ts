import { type GetTopicSubscriptionsResponse, PubSub, type Topic, v1 } from '@google-cloud/pubsub';
import { CODES, grpcCode } from './grpc';
import { NotReady, withTimeout } from './http';
import { type DispatchMessage, dispatchMessageJson } from './messages';
import { EncodedPublishRequest, encodePublishRequest, sendEncodedRequests } from './publish-request';

export function createPubSub(projectId: string): PubSub {
  return new PubSub({ projectId });
}

/** The dispatch topic, for what is not publishing (readiness, the benchmark's push ceiling). */
export function dispatchTopic(pubsub: PubSub, name: string): Topic {
  return pubsub.topic(name, {
    batching: { maxMessages: 1000, maxMilliseconds: 10, maxBytes: 5 * 1024 * 1024 },
  });
}

/** Publishes one page of dispatch messages and resolves once Pub/Sub has them all. */
export interface PagePublisher {
  publishPage(messages: { message: DispatchMessage; attributes: Record<string, string> }[]): Promise<void>;
}

/**
 * A readiness check: the topic answers, exists, and has at least one subscription. What is
 * published to a topic with none reaches no notifier: Pub/Sub takes it and keeps it for no one,
 * so a tick that published there would record its runs done and post nothing (a DISPATCH_TOPIC
 * naming the wrong topic). A caller that may not list the topic's subscriptions checks that it
 * exists; one that may not see the topic at all (its grants are on the topic: a topic that is
 * not there carries none) is told so.
 */
export function topicReady(topic: Topic): () => Promise<void> {
  const missing = () => new NotReady(`topic ${topic.name} does not exist`, 'topic_missing');
  return async () => {
    let page: GetTopicSubscriptionsResponse;
    try {
      page = await topic.getSubscriptions({ pageSize: 1, autoPaginate: false });
    } catch (err) {
      if (grpcCode(err) === CODES.NOT_FOUND) throw missing();
      if (grpcCode(err) !== CODES.PERMISSION_DENIED) throw err;
      let exists: boolean;
      try {
        [exists] = await topic.exists();
      } catch (denied) {
        if (grpcCode(denied) !== CODES.PERMISSION_DENIED) throw denied;
        throw new NotReady(
          `may not see topic ${topic.name}: it does not exist, or this account has no viewer grant on it`,
          'topic_not_visible',
        );
      }
      if (!exists) throw missing();
      return;
    }
    // A page may come back short, even empty, with a token for the next: more may follow.
    const [subscriptions, next] = page;
    if (subscriptions.length > 0 || (next as { pageToken?: unknown } | null | undefined)?.pageToken) return;
    // The emulator lists none for a topic that does not exist, where Pub/Sub answers NOT_FOUND.
    const [exists] = await topic.exists();
    if (!exists) throw missing();
    throw new NotReady(
      `topic ${topic.name} has no subscription: what is published there reaches no notifier`,
      'topic_has_no_subscription',
    );
  };
}

/**
 * The longest a page's publish may take, retries included (the client's own default is 60 s, as
 * long as a run's default lease): a Pub/Sub that stops answering mid-run fails the run within
 * this, and a later tick resumes it from its checkpoint.
 */
export const PAGE_PUBLISH_TIMEOUT_MS = 30_000;

/** Pub/Sub takes at most 1,000 messages and 10 MB a publish request; a page is split inside both. */
export const MAX_REQUEST_MESSAGES = 1000;
export const MAX_REQUEST_BYTES = 9 * 1024 * 1024;

export interface OutgoingMessage {
  /** A string is sent as its UTF-8 bytes. */
  data: Buffer | string;
  attributes: Record<string, string>;
}

/**
 * A message's size in a publish request, from above: its data, and its attributes, a string at
 * 3 bytes a UTF-16 unit (UTF-8's most), plus room for the encoding's own bytes; no string is
 * encoded to count it.
 */
function sizeFromAbove(m: OutgoingMessage): number {
  let size = (typeof m.data === 'string' ? 3 * m.data.length : m.data.length) + 16;
  for (const key in m.attributes) size += 3 * (key.length + (m.attributes[key]?.length ?? 0)) + 16;
  return size;
}

/** Splits a page into publish requests within Pub/Sub's limits, in the page's order. */
export function publishRequests(messages: OutgoingMessage[]): OutgoingMessage[][] {
  const requests: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = sizeFromAbove(m);
    if (current.length > 0 && (current.length >= MAX_REQUEST_MESSAGES || bytes + size > MAX_REQUEST_BYTES)) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/**
 * Publishes each page on Pub/Sub's generated client, one publish request a page (or a few, past
 * Pub/Sub's limits of one request), and resolves once Pub/Sub has accepted all of it. A page is
 * already a batch, so the topic's own publisher (a queue, a promise and a size count a message,
 * then a deep copy of each request, walked for a project-id placeholder) is work thrown away: a
 * third of the dispatcher's CPU a message (docs/PERFORMANCE.md, item 16). Each request is
 * written straight into the bytes gRPC sends (`encodePublishRequest`), not built as protobuf
 * objects and encoded field by field (item 23). The same RPC, with the client's own retry codes
 * for Publish and no bundling, as the topic's publisher sends it, within PAGE_PUBLISH_TIMEOUT_MS.
 */
export function pagePublisher(
  pubsub: PubSub,
  topicName: string,
  opts: { timeoutMs?: number } = {},
): PagePublisher & { close(): Promise<void> } {
  const timeout = opts.timeoutMs ?? PAGE_PUBLISH_TIMEOUT_MS;
  let opened: Promise<{ client: v1.PublisherClient; topic: string; encoded: boolean }> | undefined;
  const open = () => {
    opened ??= pubsub
      .getClientConfig()
      .then(async (config) => {
        // The settings the topic's own client gets (emulator, project); port is a number there.
        const client = new v1.PublisherClient(config as ConstructorParameters<typeof v1.PublisherClient>[0]);
        const stub = await client.initialize();
        return {
          client,
          topic: topicName.startsWith('projects/') ? topicName : `projects/${pubsub.projectId}/topics/${topicName}`,
          encoded: sendEncodedRequests(stub),
        };
      })
      .catch((err: unknown) => {
        // Not kept: the next page tries again (credentials or the project may come back).
        opened = undefined;
        throw err;
      });
    return opened;
  };
  return {
    async publishPage(page) {
      const current = open();
      const { client, topic, encoded } = await current;
      const messages = page.map((m) => ({ data: dispatchMessageJson(m.message), attributes: m.attributes }));
      const request = (r: OutgoingMessage[]) =>
        encoded
          ? new EncodedPublishRequest(topic, encodePublishRequest(topic, r), r.length)
          : { topic, messages: r.map((m) => ({ data: Buffer.from(m.data), attributes: m.attributes })) };
      let timedOut = false;
      // client.publish's own call (its routing header included), made on innerApiCalls to keep
      // the cancel() that client.publish's promise drops: a timed-out page must end its retries.
      const publish = client.innerApiCalls.publish as (
        request: unknown,
        options: object,
      ) => Promise<unknown> & { cancel(): void };
      const headers = { 'x-goog-request-params': `topic=${encodeURIComponent(topic)}` };
      const calls = publishRequests(messages).map((r) =>
        publish(request(r), { isBundling: false, timeout, otherArgs: { headers } }),
      );
      try {
        // The client's own timeout bounds its retries, not the last attempt, which may start
        // just before it: against a Pub/Sub that takes no connections a page failed after 8 to
        // 34 s for a timeout of 5. So the page gives up at the timeout itself.
        await withTimeout(Promise.all(calls), timeout, () => {
          timedOut = true;
          return `publishing a page of ${page.length} message${page.length === 1 ? '' : 's'} did not finish within ${timeout} ms`;
        });
      } catch (err) {
        if (timedOut) {
          // The client still retries what it was sent, and closing it does not end that: a
          // retry's back-off sleep (up to a minute for Publish) outlives the page and keeps the
          // process alive. Cancelling ends it (a request that landed after all is published
          // again by the resumed run, and the delivery ledger acks it); closing ends the
          // connection, and the next page opens a fresh one.
          if (opened === current) opened = undefined;
          for (const call of calls) call.cancel();
          void client.close().catch(() => undefined);
        }
        // Pub/Sub's own words do not say which topic ("5 NOT_FOUND: Topic not found").
        if (err instanceof Error && !err.message.includes(topic)) err.message = `${err.message} (topic ${topic})`;
        throw err;
      }
    },
    async close() {
      const o = await opened?.catch(() => undefined);
      await o?.client.close();
    },
  };
}
