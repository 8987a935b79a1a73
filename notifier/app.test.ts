import { connect } from 'node:net';
import request from 'supertest';
import { classifySlackErrorCode, RetryableError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import { MemoryStore } from '../shared/memory-store';
import { type DispatchMessage, encodeDispatchMessage } from '../shared/messages';
import { deliveryIdOf } from '../shared/model';
import { notificationDoc } from '../shared/notifications';
import { scheduleIdOf } from '../shared/schedule';
import { createLifecycle } from '../shared/service';
import { TOPOLOGY } from '../shared/topology';
import { answerBeforeClose, capturedLog, listening } from '../test/helpers';
import { createApp, type NotifierDeps, nackHoldMs } from './app';
import type { PostRequest, SlackPort } from './slack';

class FakeSlack implements SlackPort {
  readonly posts: PostRequest[] = [];
  script: (Error | undefined)[] = [];
  async post(req: PostRequest) {
    this.posts.push(req);
    const err = this.script.shift();
    if (err) throw err;
    return { ts: `1700000000.${this.posts.length}`, channel: req.channel };
  }
  async findDelivery() {
    return null;
  }
  async checkToken() {
    return { team: null, scopes: null };
  }
}

const occurrence = '2026-11-02T09:00:00.000Z';

function setup(over: Partial<NotifierDeps> = {}) {
  const store = new MemoryStore();
  const slack = new FakeSlack();
  store.putAccount('acct-1', { name: 'Acme', metrics: [{ label: 'Revenue', value: 1 }] });
  store.putNotification(
    'n-1',
    notificationDoc({ id: 'n-1', accountId: 'acct-1', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' }),
  );
  const deps: NotifierDeps = {
    projectId: 'test-project',
    ledger: store,
    notifications: store,
    accounts: store.accounts,
    runs: store,
    slack,
    log: createLogger({ service: 'notifier-app-test', level: 'silent' }),
    claimTtlMs: 60_000,
    pauseAfterFailures: 3,
    ...over,
  };
  return { app: createApp(deps), store, slack };
}

function envelope(notificationId = 'n-1', occ = occurrence) {
  const scheduleId = scheduleIdOf({ cron: '0 9 * * *', timezone: 'UTC' });
  const message: DispatchMessage = { v: 1, notificationId, occurrence: occ, scheduleId, runId: `${scheduleId}:${occ}` };
  return {
    message: {
      data: encodeDispatchMessage(message).toString('base64'),
      attributes: { deliveryId: deliveryIdOf(notificationId, occ) },
      messageId: '1',
      publishTime: occ,
    },
    subscription: 'projects/p/subscriptions/s',
  };
}

/** The occurrence's run, as the dispatcher makes it before it publishes: it vouches for a dead letter. */
async function dispatchedRun(store: MemoryStore) {
  const scheduleId = scheduleIdOf({ cron: '0 9 * * *', timezone: 'UTC' });
  store.putSchedule(scheduleId, { cron: '0 9 * * *', timezone: 'UTC', nextRunAt: new Date(occurrence) });
  const claim = await store.claimRun(scheduleId, occurrence, 'dispatcher', 60_000, new Date(occurrence), null);
  expect(claim.kind).toBe('acquired');
}

/** Statuses Pub/Sub push takes as an ack. */
const ACK = [102, 200, 201, 202, 204];

describe('notifier app logs', () => {
  const traceId = '0123456789abcdef0123456789abcdef';
  const trace = { 'logging.googleapis.com/trace': `projects/test-project/traces/${traceId}` };

  it("binds the push's trace id with the delivery's ids on its lines, and on an invalid push's", async () => {
    const { log, lines } = capturedLog();
    const { app, slack } = setup({ log });
    const ok = await request(app)
      .post(TOPOLOGY.pushPath)
      .set('x-cloud-trace-context', `${traceId}/1;o=1`)
      .send(envelope());
    expect(ok.status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    const delivered = lines.filter((l) => l.deliveryId === deliveryIdOf('n-1', occurrence));
    expect(delivered.length).toBeGreaterThan(0);
    for (const line of delivered) expect(line).toMatchObject({ ...trace, notificationId: 'n-1', messageId: '1' });
    // One child logger a push, the trace bound beside the ids: not the request's child and a
    // child of it. The spy is on the service's logger, which every child inherits it from.
    const rootLog = createLogger({ service: 'test', level: 'info', destination: { write: () => undefined } });
    const child = jest.spyOn(rootLog, 'child');
    await request(setup({ log: rootLog }).app)
      .post(TOPOLOGY.pushPath)
      .set('x-cloud-trace-context', `${traceId}/1;o=1`)
      .send(envelope());
    expect(child).toHaveBeenCalledTimes(1);
    expect(child.mock.calls[0]?.[0]).toMatchObject({ ...trace, deliveryId: deliveryIdOf('n-1', occurrence) });

    lines.length = 0;
    const broken = envelope();
    broken.message.data = 'not base64!';
    const bad = await request(app).post(TOPOLOGY.pushPath).set('x-cloud-trace-context', `${traceId}/2`).send(broken);
    expect(bad.status).toBe(204);
    expect(lines.find((l) => String(l.message).startsWith('invalid push acked'))).toMatchObject(trace);
  });

  it('leaves the trace out of a push that has no trace header', async () => {
    const { log, lines } = capturedLog();
    const { app } = setup({ log });
    expect((await request(app).post(TOPOLOGY.pushPath).send(envelope())).status).toBe(204);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toHaveProperty(['logging.googleapis.com/trace']);
  });
});

describe('notifier app POST /push', () => {
  it('answers 405, with Allow, for /push and /dead-letter asked with another method; 404 for a path it has not', async () => {
    const { app } = setup();
    for (const path of [TOPOLOGY.pushPath, TOPOLOGY.deadLetterPath]) {
      const res = await request(app).get(path);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.body).toEqual({ error: 'method_not_allowed', method: 'GET', allow: ['POST'] });
    }
    expect((await request(app).delete(TOPOLOGY.pushPath)).status).toBe(405);
    expect((await request(app).get('/nope')).status).toBe(404);
    // The probes too, by either name: they take GET (and HEAD) alone.
    for (const path of ['/healthz', '/readyz', '/health', '/ready']) {
      const res = await request(app).post(path);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expect((await request(app).head(path)).status).toBe(200);
    }
  });

  it('delivers a valid push and acks with 204', async () => {
    const { app, slack, store } = setup();
    const res = await request(app).post(TOPOLOGY.pushPath).send(envelope());
    expect(res.status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('sent');
  });

  it('acks a JSON body that is not an object or array, saying so rather than calling it invalid JSON', async () => {
    const { log, lines } = capturedLog();
    const { app } = setup({ log });
    for (const body of ['null', '5', '"text"']) {
      const res = await request(app).post(TOPOLOGY.pushPath).set('Content-Type', 'application/json').send(body);
      expect(res.status).toBe(204);
    }
    const acked = lines.filter((l) => l.type === 'entity.parse.failed');
    expect(acked.map((l) => l.message)).toEqual(
      ['null', 'a number', 'a string'].map(
        (kind) => `unreadable body acked: the body is ${kind}, not a JSON object or array`,
      ),
    );
  });

  it('acks a body that is not UTF-8, naming it, and posts nothing', async () => {
    const { log, lines } = capturedLog();
    const { app, slack } = setup({ log });
    const res = await request(app)
      .post(TOPOLOGY.pushPath)
      .set('Content-Type', 'application/json')
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(Buffer.concat([Buffer.from('{"message":{"data":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]));
    expect(res.status).toBe(204);
    expect(slack.posts).toHaveLength(0);
    expect(lines.find((l) => l.type === 'charset.invalid')?.message).toBe(
      'unreadable body acked: the body is not UTF-8 text (a byte in it is not UTF-8: send the text in UTF-8)',
    );
  });

  it('acks malformed JSON (redelivering it cannot help) and keeps serving', async () => {
    const { app, slack } = setup();
    const bad = await request(app)
      .post(TOPOLOGY.pushPath)
      .set('Content-Type', 'application/json')
      .send('{"message": {"data": ');
    expect(ACK).toContain(bad.status);
    expect(bad.status).toBe(204);

    expect((await request(app).get('/healthz')).status).toBe(200);
    const good = await request(app).post(TOPOLOGY.pushPath).send(envelope());
    expect(good.status).toBe(204);
    expect(slack.posts).toHaveLength(1);
  });

  it('reads an envelope sent under another Content-Type as JSON, saying so, and acks a body that is not JSON, naming its Content-Type', async () => {
    const { log, lines } = capturedLog();
    const { app, slack, store } = setup({ log });
    await dispatchedRun(store);
    const id = deliveryIdOf('n-1', occurrence);
    // Relabelled on its way (a proxy): delivered, not acked unread and lost.
    const relabelled = await request(app)
      .post(TOPOLOGY.pushPath)
      .set('Content-Type', 'text/plain')
      .send(JSON.stringify(envelope()));
    expect(relabelled.status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(id))?.status).toBe('sent');
    expect(lines.find((l) => l.contentType !== undefined)).toMatchObject({
      severity: 'WARNING',
      contentType: 'text/plain',
      message: 'body read as JSON although its Content-Type is "text/plain", not application/json',
    });
    // Not JSON: acked, as redelivering it cannot help.
    for (const path of [TOPOLOGY.pushPath, TOPOLOGY.deadLetterPath]) {
      const res = await request(app).post(path).set('Content-Type', 'text/plain').send('not json at all');
      expect(res.status).toBe(204);
      expect(lines.at(-1)).toMatchObject({
        severity: 'WARNING',
        message: 'unreadable body acked: its Content-Type is "text/plain", not application/json',
      });
    }
    expect(slack.posts).toHaveLength(1);
    // Without a Content-Type at all, that is said.
    await request(app).post(TOPOLOGY.pushPath).send(Buffer.from('hello'));
    expect(lines.at(-1)?.message).toContain('its Content-Type is missing');
  });

  it('records a dead letter sent under another Content-Type, read as JSON', async () => {
    const { app, store } = setup();
    await dispatchedRun(store);
    const id = deliveryIdOf('n-1', occurrence);
    const res = await request(app)
      .post(TOPOLOGY.deadLetterPath)
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.from(JSON.stringify(envelope())));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deliveryId: id, status: 'dead' });
  });

  it.each([
    ['application/json', 'application/json'],
    ['another Content-Type', 'application/octet-stream'],
    ['no Content-Type', undefined],
  ])(
    'answers retry (503) to a dispatch message pushed without its envelope under %s, recording and posting nothing; at the dead-letter path, records it dead',
    async (_what, type) => {
      const { app, slack, store } = setup();
      await dispatchedRun(store);
      const bare = Buffer.from(envelope().message.data, 'base64');
      const post = (path: string) => {
        const r = request(app).post(path);
        if (type !== undefined) r.set('Content-Type', type);
        return r.serialize((bytes: Buffer) => bytes as unknown as string).send(bare);
      };
      const id = deliveryIdOf('n-1', occurrence);
      const pushed = await post(TOPOLOGY.pushPath);
      expect(pushed.status).toBe(503);
      expect(pushed.body).toMatchObject({ kind: 'retry', reason: 'unwrapped_message' });
      expect(await store.get(id)).toBeNull();
      const dead = await post(TOPOLOGY.deadLetterPath);
      expect(dead.status).toBe(200);
      expect(dead.body).toEqual({ deliveryId: id, status: 'dead' });
      expect((await store.get(id))?.status).toBe('dead');
      expect(slack.posts).toHaveLength(0);
    },
  );

  it('takes a body labelled charset=utf8, a common label of UTF-8, as UTF-8', async () => {
    const { app, slack } = setup();
    for (const type of ['application/json; charset=utf8', 'application/json;charset="UTF8"']) {
      const res = await request(app)
        .post(TOPOLOGY.pushPath)
        .set('Content-Type', type)
        .send(JSON.stringify(envelope('n-1', type.includes('"') ? '2026-11-03T09:00:00.000Z' : occurrence)));
      expect(res.status).toBe(204);
    }
    expect(slack.posts).toHaveLength(2);
  });

  it('reads an envelope labelled with a charset other than UTF-8 as UTF-8, else in its charset, and acks one that is JSON in neither, naming the charset', async () => {
    const { log, lines } = capturedLog();
    const { app, slack, store } = setup({ log });
    await dispatchedRun(store);
    const send = (type: string, body: Buffer) =>
      request(app)
        .post(TOPOLOGY.pushPath)
        .set('Content-Type', type)
        .serialize((bytes: Buffer) => bytes as unknown as string)
        .send(body);
    const json = JSON.stringify(envelope());
    // Relabelled on its way, its bytes as Pub/Sub sent them (UTF-8, here all ASCII): delivered.
    expect((await send('application/json; charset=us-ascii', Buffer.from(json))).status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('sent');
    expect(lines.at(-2)).toMatchObject({
      severity: 'WARNING',
      contentType: 'application/json; charset=us-ascii',
      message: 'body read as JSON although its Content-Type names the charset "us-ascii", not UTF-8',
    });
    // Re-encoded in the charset it names (UTF-16, not UTF-8 JSON): read in it, and delivered.
    const other = JSON.stringify(envelope('n-1', '2026-11-03T09:00:00.000Z'));
    expect((await send('application/json; charset="UTF-16LE"', Buffer.from(other, 'utf16le'))).status).toBe(204);
    expect(slack.posts).toHaveLength(2);
    // A Latin-1 body whose one byte past ASCII is not UTF-8: read in Latin-1, to the handler.
    const latin1 = Buffer.from('{"message":{"data":"\u00e9"}}', 'latin1');
    expect((await send('application/json; charset=latin1', latin1)).status).toBe(204);
    expect(
      lines.some(
        (l) => l.message === 'body read as JSON although its Content-Type names the charset "latin1", not UTF-8',
      ),
    ).toBe(true);
    // JSON in neither: acked, naming the charset; an unknown label likewise.
    for (const type of ['application/json; charset=latin1', 'application/json; charset=klingon']) {
      expect((await send(type, Buffer.from('not json'))).status).toBe(204);
      const charset = /charset=(\w+)/.exec(type)?.[1];
      expect(lines.at(-1)?.message).toBe(
        `unreadable body acked: it is JSON neither in UTF-8 nor in its Content-Type's charset, "${charset}"`,
      );
    }
    expect(slack.posts).toHaveLength(2);
  });

  it('says what is wrong with an empty JSON body, not its Content-Type', async () => {
    const { log, lines } = capturedLog();
    const { app } = setup({ log });
    const res = await request(app).post(TOPOLOGY.pushPath).set('Content-Type', 'application/json');
    expect(res.status).toBe(204);
    // And with no Content-Length or Transfer-Encoding at all (`curl -X POST` without data).
    const { server, port } = await listening(app);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () =>
        socket.end(`POST ${TOPOLOGY.pushPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n`),
      );
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
    });
    server.close();
    expect(answer).toMatch(/^HTTP\/1\.1 204/);
    expect(JSON.stringify(lines)).not.toContain('Content-Type');
    expect(lines.filter((l) => String(l.message).includes('not a Pub/Sub push envelope'))).toHaveLength(2);
  });

  it('acks a body whose Content-Length is past the limit at once, closing the connection, without waiting for the body', async () => {
    const { log, lines } = capturedLog();
    const { app } = setup({ log });
    const { server, port } = await listening(app);
    const started = Date.now();
    // A gigabyte declared, and none of it sent: the socket is not ended by this side.
    const answer = await answerBeforeClose(
      port,
      `POST ${TOPOLOGY.pushPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n`,
    );
    server.close();
    expect(answer).toMatch(/^HTTP\/1\.1 204/);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(lines.find((l) => l.type === 'entity.too.large')).toMatchObject({ length: 1e9, limit: 256 * 1024 });
  });

  it('acks a body over 256kb rather than having it retried, logging its size and the limit', async () => {
    const { log, lines } = capturedLog();
    const { app, slack } = setup({ log });
    const big = { ...envelope(), padding: 'x'.repeat(300 * 1024) };
    const res = await request(app).post(TOPOLOGY.pushPath).send(big);
    expect(res.status).toBe(204);
    expect(slack.posts).toHaveLength(0);
    const acked = lines.find((l) => l.type === 'entity.too.large');
    expect(acked).toMatchObject({
      message: `unreadable body acked: the body is larger than this endpoint takes (at most 262,144 bytes; this one is ${Buffer.byteLength(JSON.stringify(big)).toLocaleString('en-US')})`,
      length: Buffer.byteLength(JSON.stringify(big)),
      limit: 256 * 1024,
    });
    // Still serving afterwards.
    expect((await request(app).post(TOPOLOGY.pushPath).send(envelope())).status).toBe(204);
  });

  it('acks a well-formed envelope that is not a dispatch message', async () => {
    const { app } = setup();
    const res = await request(app)
      .post(TOPOLOGY.pushPath)
      .send({ message: { data: Buffer.from('{"hello":1}').toString('base64') } });
    expect(res.status).toBe(204);
  });

  it('answers 503 (a nack) to a retryable Slack failure, with Retry-After, held for what the backoff does not cover', async () => {
    const { app, slack, store } = setup();
    slack.script = [new RetryableError('slack_retryable', 'rate limited', { retryAfterSeconds: 12 })];
    const started = Date.now();
    const res = await request(app).post(TOPOLOGY.pushPath).send(envelope());
    // Slack asked for 12 s; the retry policy waits 10 s after the nack; the nack is held the rest.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(res.status).toBe(503);
    expect(ACK).not.toContain(res.status);
    expect(res.headers['retry-after']).toBe('12');
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('retrying');
  });

  it('answers 204 (an ack) to a permanent Slack failure', async () => {
    const { app, slack, store } = setup();
    slack.script = [classifySlackErrorCode('channel_not_found')];
    const res = await request(app).post(TOPOLOGY.pushPath).send(envelope());
    expect(res.status).toBe(204);
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('failed');
  });

  it('answers 503 while another attempt holds the claim', async () => {
    const { app, store } = setup();
    await store.claim({
      deliveryId: deliveryIdOf('n-1', occurrence),
      notificationId: 'n-1',
      occurrence,
      runId: 'r',
      owner: 'elsewhere',
      ttlMs: 60_000,
      now: new Date(),
      publishedAt: null,
    });
    expect((await request(app).post(TOPOLOGY.pushPath).send(envelope())).status).toBe(503);
  });
});

describe('notifier app POST /dead-letter', () => {
  it('records the delivery dead and answers 200 with its status', async () => {
    const { app, store } = setup();
    await dispatchedRun(store);
    const res = await request(app).post(TOPOLOGY.deadLetterPath).send(envelope());
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deliveryId: deliveryIdOf('n-1', occurrence), status: 'dead' });
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('dead');
  });

  it.each<[string, 'getRun' | 'markDead']>([
    ['its run cannot be read', 'getRun'],
    ['its delivery cannot be recorded dead', 'markDead'],
  ])(
    'answers 503 (a nack: Pub/Sub delivers the dead letter again) when %s, never dropping it',
    async (_what, method) => {
      const { app, store } = setup();
      await dispatchedRun(store);
      const failing = jest.spyOn(store, method).mockRejectedValue(new Error('firestore unavailable'));
      const res = await request(app).post(TOPOLOGY.deadLetterPath).send(envelope());
      expect(res.status).toBe(503);
      expect(ACK).not.toContain(res.status);
      expect(res.body).toEqual({ error: 'record_failed' });
      expect(await store.get(deliveryIdOf('n-1', occurrence))).toBeNull();
      // Delivered again once Firestore answers, it is recorded.
      failing.mockRestore();
      expect((await request(app).post(TOPOLOGY.deadLetterPath).send(envelope())).status).toBe(200);
      expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('dead');
    },
  );
});

describe('notifier app POST /dead-letter with a Firestore that does not answer', () => {
  it('answers 503 deadline_exceeded at the push deadline, before Pub/Sub would give up on it, and records it once redelivered', async () => {
    const { app, store } = setup({ deadlineMs: 300 });
    await dispatchedRun(store);
    let answer: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      answer = r;
    });
    const markDead = store.markDead.bind(store);
    const spy = jest.spyOn(store, 'markDead').mockImplementationOnce(async (...args) => {
      await held;
      return markDead(...args);
    });
    const t0 = performance.now();
    const res = await request(app).post(TOPOLOGY.deadLetterPath).send(envelope());
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(res.status).toBe(503);
    expect(ACK).not.toContain(res.status);
    expect(res.body).toEqual({ error: 'deadline_exceeded' });
    // Firestore answers: the write under way lands, and the redelivery finds it done.
    answer();
    spy.mockRestore();
    const again = await request(app).post(TOPOLOGY.deadLetterPath).send(envelope());
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ deliveryId: deliveryIdOf('n-1', occurrence), status: 'dead' });
  });
});

describe('a shutdown that abandons pushes', () => {
  it('names each by its delivery and message ids in its log line', async () => {
    const { log, lines } = capturedLog();
    const lifecycle = createLifecycle(log);
    let posting: () => void = () => undefined;
    const posted = new Promise<void>((r) => {
      posting = r;
    });
    const slack = new FakeSlack();
    // A Slack call that outlasts the shutdown's grace.
    slack.post = async () => {
      posting();
      return new Promise(() => undefined);
    };
    const { app } = setup({ log, slack, track: lifecycle.track, isDraining: lifecycle.isDraining });
    const { server, port } = await listening(app);
    const push = fetch(`http://127.0.0.1:${port}${TOPOLOGY.pushPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(envelope()),
    }).catch((err: unknown) => err);
    await posted;
    await lifecycle.shutdown(server, async () => undefined, 100);
    await push;
    const abandoned = lines.find((l) => String(l.message).startsWith('abandoning'));
    expect(abandoned).toMatchObject({
      inFlight: 1,
      requests: [
        { method: 'POST', path: TOPOLOGY.pushPath, messageId: '1', deliveryId: deliveryIdOf('n-1', occurrence) },
      ],
    });
  });
});

describe('a shutdown while a push whose caller left still posts', () => {
  it('waits for the post to end, as for any push in flight, and abandons none', async () => {
    const { log, lines } = capturedLog();
    const lifecycle = createLifecycle(log);
    let posting: () => void = () => undefined;
    const posted = new Promise<void>((r) => {
      posting = r;
    });
    let finish: () => void = () => undefined;
    let postEnded = false;
    const slack = new FakeSlack();
    const post = slack.post.bind(slack);
    // A Slack call that outlasts its caller's connection, and ends within the shutdown's grace.
    slack.post = async (req) => {
      posting();
      await new Promise<void>((r) => {
        finish = r;
      });
      postEnded = true;
      return post(req);
    };
    const { app, store } = setup({ log, slack, track: lifecycle.track, isDraining: lifecycle.isDraining });
    const { server, port } = await listening(app);
    const caller = new AbortController();
    const push = fetch(`http://127.0.0.1:${port}${TOPOLOGY.pushPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(envelope()),
      signal: caller.signal,
    }).catch((err: unknown) => err);
    await posted;
    // Pub/Sub's connection drops (its push deadline), then the instance is told to stop.
    caller.abort();
    await push;
    await new Promise((r) => setTimeout(r, 50));
    expect(lifecycle.inFlight()).toBe(1);
    setTimeout(() => finish(), 300);
    await lifecycle.shutdown(server, async () => undefined, 5000);
    expect(postEnded).toBe(true);
    expect((await store.get(deliveryIdOf('n-1', occurrence)))?.status).toBe('sent');
    expect(lines.find((l) => String(l.message).startsWith('abandoning'))).toBeUndefined();
    expect(lifecycle.inFlight()).toBe(0);
    // What it would have answered, in the log, as its caller was not there to be told.
    expect(lines.find((l) => String(l.message).startsWith('ended after its caller left'))).toMatchObject({
      status: 204,
      message: 'ended after its caller left: it would have answered 204',
    });
  });
});

describe('nackHoldMs', () => {
  const backoffMs = TOPOLOGY.retryPolicy.minimumBackoffSeconds * 1000;
  it('in production, holds only what Retry-After asks beyond the retry policy’s backoff', () => {
    expect(nackHoldMs({ reason: 'slack_retryable', retryAfterSeconds: 30 }, 0, 50_000)).toBe(20_000);
    expect(nackHoldMs({ reason: 'slack_retryable', retryAfterSeconds: 12 }, 0, 50_000)).toBe(12_000 - backoffMs);
    expect(nackHoldMs({ reason: 'slack_retryable', retryAfterSeconds: 5 }, 0, 50_000)).toBe(0);
    expect(nackHoldMs({ reason: 'slack_retryable' }, 0, 50_000)).toBe(0);
  });
  it('in production, holds a post that may still land for the rest of the Slack timeout, within the room left', () => {
    expect(nackHoldMs({ reason: 'slack_outcome_unknown', notBeforeMs: 30_000 }, 0, 50_000)).toBe(20_000);
    expect(nackHoldMs({ reason: 'slack_outcome_unknown', notBeforeMs: 30_000 }, 0, 3_000)).toBe(3_000);
    expect(nackHoldMs({ reason: 'slack_outcome_unknown', notBeforeMs: 30_000 }, 0, -5)).toBe(0);
  });
  it('never holds for a claim held elsewhere in production', () => {
    expect(nackHoldMs({ reason: 'claimed_elsewhere', notBeforeMs: 60_000 }, 0, 50_000)).toBe(0);
  });
  it('locally (no retry policy), holds the delay, or longer up to 10 s', () => {
    expect(nackHoldMs({ reason: 'slack_retryable' }, 100, 50_000)).toBe(100);
    expect(nackHoldMs({ reason: 'slack_retryable', retryAfterSeconds: 3 }, 100, 50_000)).toBe(3_000);
    expect(nackHoldMs({ reason: 'claimed_elsewhere', notBeforeMs: 60_000 }, 100, 50_000)).toBe(10_000);
  });
  it('locally, doubles the delay with each attempt the delivery has had, up to 10 s', () => {
    const holds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((attempts) =>
      nackHoldMs({ reason: 'slack_outcome_unknown', attempts }, 100, 50_000),
    );
    expect(holds).toEqual([100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]);
    // Before a delivery's tenth attempt, over half a minute has been held.
    expect(holds.slice(0, 9).reduce((a, b) => a + b, 0)).toBe(32_700);
    // A Retry-After longer than the backoff is still honoured, and production is unchanged.
    expect(nackHoldMs({ reason: 'slack_retryable', attempts: 2, retryAfterSeconds: 3 }, 100, 50_000)).toBe(3_000);
    expect(nackHoldMs({ reason: 'slack_retryable', attempts: 9 }, 0, 50_000)).toBe(0);
    expect(nackHoldMs({ reason: 'slack_retryable', attempts: 1e9 }, 100, 50_000)).toBe(10_000);
  });
});
