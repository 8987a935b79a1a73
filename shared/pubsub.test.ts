import { createServer, type Socket } from 'node:net';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { NotReady } from './http';
import {
  MAX_REQUEST_BYTES,
  MAX_REQUEST_MESSAGES,
  type OutgoingMessage,
  pagePublisher,
  publishRequests,
  topicReady,
} from './pubsub';

function message(i: number, dataBytes = 100, attribute = 'd'): OutgoingMessage {
  return { data: Buffer.alloc(dataBytes, i % 256), attributes: { deliveryId: `${attribute}${i}`, runId: 'r' } };
}

describe('publishRequests', () => {
  test('a page of 2,500 small messages goes as 1,000, 1,000 and 500, in order', () => {
    const page = Array.from({ length: 2500 }, (_, i) => message(i));
    const requests = publishRequests(page);
    expect(requests.map((r) => r.length)).toEqual([MAX_REQUEST_MESSAGES, MAX_REQUEST_MESSAGES, 500]);
    expect(requests.flat()).toEqual(page);
  });

  test('a page of exactly 1,000 is one request; an empty page is none', () => {
    expect(publishRequests(Array.from({ length: 1000 }, (_, i) => message(i))).map((r) => r.length)).toEqual([1000]);
    expect(publishRequests([])).toEqual([]);
  });

  test('large messages are split by bytes before 1,000, and no request passes the byte limit', () => {
    const page = Array.from({ length: 30 }, (_, i) => message(i, 1024 * 1024));
    const requests = publishRequests(page);
    expect(requests.length).toBeGreaterThan(1);
    expect(requests.flat()).toEqual(page);
    for (const r of requests) {
      expect(r.reduce((sum, m) => sum + m.data.length, 0)).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    }
    // 9 MiB of room, 1 MiB and a little a message: 8 a request.
    expect(requests[0]).toHaveLength(8);
  });

  test('attributes count at their most in UTF-8, so multi-byte ids cannot push a request over', () => {
    // 4,000 characters of a 3-byte character: 12,000 bytes of attribute a message, 12 MB a page
    // (counted by length, 4 MB: one request, which Pub/Sub would refuse).
    const wide = '€'.repeat(4000);
    const page = Array.from({ length: 1000 }, (_, i) => message(i, 10, wide));
    const requests = publishRequests(page);
    const bytes = (r: OutgoingMessage[]) =>
      r.reduce((sum, m) => sum + m.data.length + Buffer.byteLength(m.attributes.deliveryId ?? ''), 0);
    expect(requests.length).toBe(2);
    for (const r of requests) expect(bytes(r)).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
  });

  test('one message larger than the limit still goes, alone, for Pub/Sub to refuse it by name', () => {
    const page = [message(0), message(1, MAX_REQUEST_BYTES + 1), message(2)];
    expect(publishRequests(page).map((r) => r.length)).toEqual([1, 1, 1]);
  });
});

describe('pagePublisher', () => {
  test('a client that could not be made is not kept: the next page tries again', async () => {
    const getClientConfig = jest
      .fn()
      .mockRejectedValueOnce(new Error('no credentials'))
      .mockRejectedValueOnce(new Error('still none'));
    const publisher = pagePublisher({ getClientConfig, projectId: 'p' } as unknown as PubSub, 'topic');
    const page = [
      { message: { v: 1 as const, notificationId: 'n', occurrence: 'o', scheduleId: 's', runId: 'r' }, attributes: {} },
    ];
    await expect(publisher.publishPage(page)).rejects.toThrow('no credentials');
    await expect(publisher.publishPage(page)).rejects.toThrow('still none');
    expect(getClientConfig).toHaveBeenCalledTimes(2);
    await publisher.close();
  });

  test('a Pub/Sub that takes the connection and never answers fails the page within its timeout, naming the topic', async () => {
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const pubsub = new PubSub({ projectId: 'p', apiEndpoint: `127.0.0.1:${port}` });
    const publisher = pagePublisher(pubsub, 'frozen', { timeoutMs: 1500 });
    const page = [
      { message: { v: 1 as const, notificationId: 'n', occurrence: 'o', scheduleId: 's', runId: 'r' }, attributes: {} },
    ];
    const started = Date.now();
    try {
      await expect(publisher.publishPage(page)).rejects.toThrow(/\(topic projects\/p\/topics\/frozen\)$/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(Date.now() - started).toBeLessThan(6_000);
    } finally {
      await publisher.close();
      await pubsub.close();
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 20_000);

  test("a Pub/Sub that takes no connections fails every page at its timeout, not after the client's last retry", async () => {
    // A port that was free a moment ago: nothing listens on it, so every connection is refused
    // and the client keeps retrying with back-off (which, without the page's own deadline,
    // ended a 5 s page after 8 to 34 s).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const pubsub = new PubSub({ projectId: 'p', apiEndpoint: `127.0.0.1:${port}` });
    const publisher = pagePublisher(pubsub, 'unreachable', { timeoutMs: 2000 });
    const page = [
      { message: { v: 1 as const, notificationId: 'n', occurrence: 'o', scheduleId: 's', runId: 'r' }, attributes: {} },
    ];
    try {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await expect(publisher.publishPage(page)).rejects.toThrow(
          'publishing a page of 1 message did not finish within 2000 ms (topic projects/p/topics/unreachable)',
        );
        // The timeout and the client's set-up (the first page loads its protos), on a busy
        // machine; without the page's own deadline this took 2.5 to 34 s and said otherwise.
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(1900);
        expect(took).toBeLessThan(6_000);
      }
    } finally {
      await publisher.close();
      await pubsub.close();
    }
    // A timed-out page's requests are cancelled, not only its client closed: the client's retry
    // back-off (a timer of up to a minute) does not outlive the page and hold the process open.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  }, 30_000);
});

describe('topicReady', () => {
  /** A topic whose subscriptions list answers `list` (or throws it), and that exists or not. */
  const topic = (list: unknown[] | { code: number }, exists: boolean | { code: number } = true, next?: object) =>
    ({
      name: 'projects/p/topics/t',
      getSubscriptions: async () => {
        if (!Array.isArray(list)) throw Object.assign(new Error(`code ${list.code}`), list);
        return [list, next ?? null, {}];
      },
      exists: async () => {
        if (typeof exists !== 'boolean') throw Object.assign(new Error(`code ${exists.code}`), exists);
        return [exists];
      },
    }) as unknown as Topic;
  const reasonOf = async (t: Topic) => {
    try {
      await topicReady(t)();
      return 'ok';
    } catch (err) {
      return err instanceof NotReady ? err.reason : `other: ${(err as Error).message}`;
    }
  };

  test('ready with a subscription; a topic with none, or none at all, is named, as the emulator and Pub/Sub say it', async () => {
    expect(await reasonOf(topic([{ name: 's' }]))).toBe('ok');
    expect(await reasonOf(topic([]))).toBe('topic_has_no_subscription');
    // The emulator lists no subscription for a topic that is not there; Pub/Sub answers NOT_FOUND.
    expect(await reasonOf(topic([], false))).toBe('topic_missing');
    expect(await reasonOf(topic({ code: 5 }))).toBe('topic_missing');
  });

  test('a caller that may not list subscriptions checks that the topic exists; any other error is unavailable', async () => {
    expect(await reasonOf(topic({ code: 7 }))).toBe('ok');
    expect(await reasonOf(topic({ code: 7 }, false))).toBe('topic_missing');
    expect(await reasonOf(topic({ code: 14 }))).toBe('other: code 14');
    // Grants on the topic alone: a topic not there carries none, so both calls are denied.
    expect(await reasonOf(topic({ code: 7 }, { code: 7 }))).toBe('topic_not_visible');
  });

  test('an empty page with a token for the next is not taken for no subscription', async () => {
    expect(await reasonOf(topic([], true, { pageToken: 'more' }))).toBe('ok');
    expect(await reasonOf(topic([], true, {}))).toBe('topic_has_no_subscription');
  });
});
