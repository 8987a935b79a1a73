import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import request from 'supertest';
import { deferred } from '../shared/concurrency';
import { continueWhenRead, LINGER_BYTES, LINGER_MS, NotReady } from '../shared/http';
import { createLogger } from '../shared/logger';
import { MemoryStore } from '../shared/memory-store';
import { runIdOf } from '../shared/model';
import type { PagePublisher } from '../shared/pubsub';
import { CLOSE_GRACE_MS, createLifecycle, serve } from '../shared/service';
import { answerBeforeClose, answerWhileSending, capturedLog, listening } from '../test/helpers';
import { createApp, type DispatcherDeps, MAX_SCHEDULE_TIME_AHEAD_MS, TICK_ANSWER_GRACE_MS, tickTimeOf } from './app';
import { LOGGED_OCCURRENCES } from './tick';

const now = new Date('2026-11-29T09:30:00.000Z');

describe('tickTimeOf (X-CloudScheduler-ScheduleTime)', () => {
  it('is now when the header is absent or empty', () => {
    expect(tickTimeOf(undefined, now)).toBe(now);
    expect(tickTimeOf('', now)).toBe(now);
  });

  it.each([
    ['2026-11-29T09:30:00Z', '2026-11-29T09:30:00.000Z'],
    ['2026-11-29T09:29:00.123Z', '2026-11-29T09:29:00.123Z'],
    ['2026-11-29T10:29:00+01:00', '2026-11-29T09:29:00.000Z'],
    ['2026-11-29T09:30:05Z', '2026-11-29T09:30:05.000Z'],
    ['2026-11-29t09:29:00z', '2026-11-29T09:29:00.000Z'],
    ['2026-11-29T09:29:00.123456789-00:00', '2026-11-29T09:29:00.123Z'],
    // RFC 3339's section 5.6 lets a space stand for the T.
    ['2026-11-29 09:29:00Z', '2026-11-29T09:29:00.000Z'],
  ])('reads the RFC 3339 time %s', (header, iso) => {
    const t = tickTimeOf(header, now);
    expect(t instanceof Date ? t.toISOString() : t).toBe(iso);
  });

  it.each([
    ['a bare number', '1'],
    ['a negative number', '-1'],
    ['an RFC 1123 date', 'Tue, 01 Dec 2026 00:00:00 GMT'],
    ['a date without a time', '2026-11-29'],
    ['a time without an offset', '2026-11-29T09:30:00'],
    ['a day that does not exist', '2026-02-30T09:00:00Z'],
    ['words', 'yesterday'],
    ['two spaces for the T', '2026-11-29  09:29:00Z'],
  ])('refuses %s, naming the header', (_what, header) => {
    expect(tickTimeOf(header, now)).toEqual({
      error: `X-CloudScheduler-ScheduleTime ${JSON.stringify(header)} is not an RFC 3339 time`,
    });
  });

  it('refuses a time ahead of the clock by more than the skew allowed, saying by how much', () => {
    const ahead = new Date(now.getTime() + 86_400_000).toISOString();
    const result = tickTimeOf(ahead, now);
    expect(result).toEqual({
      error: expect.stringMatching(
        /ScheduleTime "2026-11-30T09:30:00.000Z" is 86400 s ahead of this dispatcher's clock/,
      ),
    });
    expect('error' in (tickTimeOf('9999-12-31T23:55:00Z', now) as object)).toBe(true);
    const edge = new Date(now.getTime() + MAX_SCHEDULE_TIME_AHEAD_MS).toISOString();
    expect(tickTimeOf(edge, now)).toEqual(new Date(edge));
    const past = new Date(now.getTime() + MAX_SCHEDULE_TIME_AHEAD_MS + 1).toISOString();
    expect('error' in (tickTimeOf(past, now) as object)).toBe(true);
  });

  it('refuses a time before year 1, which Firestore cannot query for (it answered 503 for ever); year 1 is taken', () => {
    for (const header of ['0000-01-01T00:00:00Z', '0000-12-31T23:59:59.999Z', '0001-01-01T00:30:00+01:00']) {
      expect(tickTimeOf(header, now)).toEqual({
        error: `X-CloudScheduler-ScheduleTime ${JSON.stringify(header)} is before 0001-01-01T00:00:00Z, the earliest time Firestore keeps`,
      });
    }
    expect(tickTimeOf('0001-01-01T00:00:00Z', now)).toEqual(new Date('0001-01-01T00:00:00Z'));
  });

  it('refuses the header sent more than once, saying so, and takes it sent once', () => {
    expect(tickTimeOf(['2026-11-29T09:29:00Z', '2026-11-29T09:28:00Z'], now)).toEqual({
      error:
        'X-CloudScheduler-ScheduleTime was sent 2 times ("2026-11-29T09:29:00Z", "2026-11-29T09:28:00Z"); Cloud Scheduler sends it once',
    });
    expect(tickTimeOf(['2026-11-29T09:29:00Z'], now)).toEqual(new Date('2026-11-29T09:29:00Z'));
    expect(tickTimeOf([], now)).toBe(now);
  });
});

/** A dispatcher over `runs` that publishes nowhere unless `over` says, its log lines kept in `lines`. */
function tickApp(runs: MemoryStore, over: Partial<DispatcherDeps> = {}) {
  const lines: string[] = [];
  const app = createApp({
    runs,
    publisher: { publishPage: async () => undefined },
    log: createLogger({ service: 'test', level: 'info', destination: { write: (l: string) => lines.push(l) } }),
    pageSize: 10,
    leaseSeconds: 60,
    catchUpWindowSeconds: 900,
    projectId: 'demo-test',
    clock: () => now,
    ...over,
  });
  return { app, lines };
}

describe('the 503s a tick and /readyz answer', () => {
  const SECRET_TEXT = '14 UNAVAILABLE: connect ECONNREFUSED 10.8.0.3:443 (project acme-prod-123)';
  const appWith = (runs: MemoryStore, readiness: Record<string, () => Promise<void>> = {}) =>
    tickApp(runs, { readiness });
  const down = async () => {
    throw new Error(SECRET_TEXT);
  };

  it.each([
    ['JSON that is not an object', 'application/json', '42'],
    ['a JSON string', 'application/json', '"tick"'],
    ['JSON that does not parse', 'application/json', '{tick'],
    ['plain text', 'text/plain', 'tick'],
  ])(
    'tick whatever body a Scheduler job was given (%s): the tick reads only its headers',
    async (_what, type, body) => {
      const { app } = appWith(new MemoryStore());
      const res = await request(app).post('/tick').set('Content-Type', type).send(body);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tickTime: now.toISOString(), published: 0 });
    },
  );

  it('refuse a tick body past 16 KB with 413', async () => {
    const { app } = appWith(new MemoryStore());
    const res = await request(app)
      .post('/tick')
      .set('Content-Type', 'text/plain')
      .send('x'.repeat(17 * 1024));
    expect(res.status).toBe(413);
  });

  /**
   * Runs `f` against a fresh app, and gives back what it gave, with the server's side of each
   * connection: the bytes it read, and how long after it opened it closed.
   */
  const withServer = async <T>(f: (port: number) => Promise<T>, runs = new MemoryStore()) => {
    const { app } = appWith(runs);
    // Served as `serve` serves it, 100 Continue included.
    const server = continueWhenRead(createServer(app)).listen(0, '127.0.0.1');
    const closes: Promise<{ read: number; ms: number }>[] = [];
    server.on('connection', (s: Socket) => {
      const opened = Date.now();
      closes.push(new Promise((r) => s.once('close', () => r({ read: s.bytesRead, ms: Date.now() - opened }))));
    });
    await new Promise((r) => server.once('listening', r));
    try {
      const got = await f((server.address() as AddressInfo).port);
      return { got, server: await Promise.all(closes) };
    } finally {
      server.close();
    }
  };

  describe('a tick whose client waits for 100 Continue before it sends its body', () => {
    const head = (length: number) =>
      `POST /tick HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`;

    it('is answered 413 without a 100 when its declared length is past the limit: the body is never asked for', async () => {
      const { got } = await withServer((port) => answerBeforeClose(port, head(1e9)));
      expect(got).toMatch(/^HTTP\/1\.1 413 /);
    });

    it('refused before its body is read, is answered without a 100 and closed without a reset, should its client send the body anyway', async () => {
      const length = 512 * 1024;
      const { got } = await withServer((port) =>
        answerWhileSending(
          port,
          `PUT /tick HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`,
          {
            bytes: length,
            halfOpen: true,
            afterAnswer: true,
          },
        ),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 405 /);
      expect(got.error).toBeUndefined();
    });

    it('is sent 100 Continue when its body is to be read, then runs', async () => {
      const { got } = await withServer((port) =>
        answerWhileSending(port, head(2), { bytes: 0, trailing: '{}', afterAnswer: true }),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    });
  });

  describe('a tick refused for its declared length, while its body is still arriving', () => {
    const head = (length: number) =>
      `POST /tick HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n`;
    it('is answered 413 at once, closing the connection, without waiting for the body', async () => {
      const { got } = await withServer((port) => answerBeforeClose(port, head(1e9)));
      expect(got).toMatch(/^HTTP\/1\.1 413/);
      expect(got.toLowerCase()).toContain('connection: close');
    });

    it('is answered 413 and closed without a reset: what is still sent is read and dropped first', async () => {
      const { got } = await withServer((port) =>
        answerWhileSending(port, head(1e9), { bytes: 512 * 1024, halfOpen: true, afterAnswer: true }),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 413/);
      expect(got.error).toBeUndefined();
    });

    it(`is closed ${LINGER_MS} ms after its answer when its client sends no more but keeps its side open`, async () => {
      // The client cannot tell the close from its side, which stays open: it gives up after 3 s.
      const { got, server } = await withServer((port) =>
        answerWhileSending(port, head(1e9), { bytes: 64 * 1024, halfOpen: true, timeoutMs: LINGER_MS + 1_000 }),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 413/);
      expect(server).toHaveLength(1);
      expect(server[0]?.ms).toBeGreaterThanOrEqual(LINGER_MS - 100);
      expect(server[0]?.ms).toBeLessThan(LINGER_MS + 500);
    });

    it(`reads at most ${LINGER_BYTES} bytes more from a client that does not stop sending`, async () => {
      const { got, server } = await withServer((port) =>
        answerWhileSending(port, head(1e9), { bytes: 256 * 1024 * 1024, halfOpen: true, afterAnswer: true }),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 413/);
      expect(server).toHaveLength(1);
      // Cut off by what it sent, not by the time.
      expect(server[0]?.ms).toBeLessThan(LINGER_MS);
      expect(server[0]?.read).toBeGreaterThan(LINGER_BYTES);
      // What the server had read before the answer, and the chunk that crossed the bound.
      expect(server[0]?.read).toBeLessThan(2 * LINGER_BYTES);
    });

    it('reads on what its client sent without waiting for the answer, with no reset', async () => {
      // More than Node's server buffers for a request before it pauses the connection.
      const bytes = 768 * 1024;
      const { got, server } = await withServer((port) =>
        answerWhileSending(port, head(1e9), { bytes, halfOpen: true, timeoutMs: LINGER_MS + 1_000 }),
      );
      expect(got.answer).toMatch(/^HTTP\/1\.1 413/);
      expect(server[0]?.read).toBeGreaterThan(bytes);
      // Closed by the server once all was read: nothing unread to reset the connection with.
      expect(got.error).toBe(`not closed within ${LINGER_MS + 1_000} ms`);
    });

    it('runs no request sent with it, before its answer', async () => {
      const runs = new MemoryStore();
      const due = jest.spyOn(runs, 'dueSchedules');
      const { got, server } = await withServer(
        (port) => answerWhileSending(port, head(20_000), { bytes: 20_000, trailing: head(0) }),
        runs,
      );
      expect([...got.answer.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1])).toEqual(['413']);
      expect(due).not.toHaveBeenCalled();
      // Closed at once, by the request that came after the refused one.
      expect(server[0]?.ms).toBeLessThan(1_000);
    });

    it('runs no request sent after it on the same connection', async () => {
      const runs = new MemoryStore();
      const due = jest.spyOn(runs, 'dueSchedules');
      const { got } = await withServer(
        (port) =>
          answerWhileSending(port, head(20_000), {
            bytes: 20_000,
            trailing: head(0),
            halfOpen: true,
            afterAnswer: true,
            keepOpen: true,
            timeoutMs: LINGER_MS + 1_000,
          }),
        runs,
      );
      expect([...got.answer.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1])).toEqual(['413']);
      expect(due).not.toHaveBeenCalled();
    });
  });

  it('answer 405, with Allow: POST, for /tick asked with another method', async () => {
    const { app } = appWith(new MemoryStore());
    const res = await request(app).get('/tick');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.body).toMatchObject({ error: 'method_not_allowed', method: 'GET' });
  });

  it('name a setup mistake by its reason (a topic with no subscription), still not its text, and publish nothing', async () => {
    const noSubscription = async () => {
      throw new NotReady(`topic projects/${SECRET_TEXT}/topics/t has no subscription`, 'topic_has_no_subscription');
    };
    const { app, lines } = appWith(new MemoryStore(), { firestore: async () => undefined, pubsub: noSubscription });
    const tick = await request(app).post('/tick').send({});
    expect(tick.status).toBe(503);
    expect(tick.body).toEqual({
      error: 'dependency_unavailable',
      checks: { firestore: 'ok', pubsub: 'topic_has_no_subscription' },
    });
    const ready = await request(app).get('/readyz');
    expect(ready.body).toEqual({
      ok: false,
      checks: { firestore: 'ok', pubsub: 'topic_has_no_subscription' },
      draining: false,
    });
    expect(JSON.stringify([tick.body, ready.body])).not.toContain(SECRET_TEXT);
    expect(lines.some((l) => l.includes(SECRET_TEXT) && l.includes('has no subscription'))).toBe(true);
  });

  it('name the dependency that failed, not its error text, which goes to the log', async () => {
    const { app, lines } = appWith(new MemoryStore(), { firestore: down, pubsub: async () => undefined });
    const tick = await request(app).post('/tick').send({});
    expect(tick.status).toBe(503);
    expect(tick.body).toEqual({ error: 'dependency_unavailable', checks: { firestore: 'unavailable', pubsub: 'ok' } });
    for (const path of ['/readyz', '/ready']) {
      const ready = await request(app).get(path);
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ ok: false, checks: { firestore: 'unavailable', pubsub: 'ok' }, draining: false });
    }
    expect(lines.filter((l) => l.includes(SECRET_TEXT)).length).toBeGreaterThanOrEqual(2);
  });

  it('a tick that fails before dispatching answers tick_failed without the error text', async () => {
    const store = new MemoryStore();
    jest.spyOn(store, 'dueSchedules').mockRejectedValue(new Error(SECRET_TEXT));
    const { app, lines } = appWith(store);
    const res = await request(app).post('/tick').send({});
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'tick_failed' });
    expect(lines.some((l) => l.includes(SECRET_TEXT))).toBe(true);
  });
});

describe("a tick's log line", () => {
  it('lists at most LOGGED_OCCURRENCES occurrences, the failed first, and counts them all by status; the answer lists every one', async () => {
    const store = new MemoryStore();
    const count = LOGGED_OCCURRENCES + 50;
    for (let i = 0; i < count; i++) {
      const id = `s${String(i).padStart(3, '0')}`;
      store.putSchedule(id, { cron: '* * * * *', timezone: 'UTC', nextRunAt: now });
      store.putNotification(`n${i}`, {
        accountId: 'a1',
        slack: { channelId: 'C1' },
        schedule: { cron: '* * * * *', timezone: 'UTC' },
        scheduleId: id,
        enabled: true,
      });
    }
    // The last schedule's run cannot be claimed: it fails, and is listed all the same.
    const realClaim = store.claimRun.bind(store);
    jest.spyOn(store, 'claimRun').mockImplementation(async (...args) => {
      if (args[0] === `s${count - 1}`) throw new Error('claim refused');
      return realClaim(...args);
    });
    const { app, lines } = tickApp(store);
    const res = await request(app).post('/tick').send({});
    expect(res.status).toBe(503);
    expect(res.body.occurrences).toHaveLength(count);
    const logged = lines
      .map((l) => JSON.parse(l) as { message?: string; tick?: Record<string, unknown> })
      .find((l) => l.message?.endsWith(' published'))?.tick as {
      occurrences: { scheduleId: string; status: string }[];
      occurrencesNotListed: number;
      statuses: Record<string, number>;
      published: number;
    };
    expect(logged.occurrences).toHaveLength(LOGGED_OCCURRENCES);
    expect(logged.occurrences[0]).toMatchObject({ scheduleId: `s${count - 1}`, status: 'failed' });
    expect(logged.occurrencesNotListed).toBe(50);
    expect(logged.statuses).toEqual({ dispatched: count - 1, failed: 1 });
    expect(logged.published).toBe(count - 1);
  });
});

describe('a tick past its deadline (TICK_DEADLINE_SECONDS)', () => {
  /** A dispatcher whose ticks have a 300 ms deadline, pages of 2. */
  const withDeadline = (
    store: MemoryStore,
    publishPage: PagePublisher['publishPage'],
    readiness: Record<string, () => Promise<void>> = {},
  ) => tickApp(store, { publisher: { publishPage }, pageSize: 2, deadlineMs: 300, readiness });

  it('is answered 503 tick_timeout when a Firestore call never answers, and logs the tick once it ends', async () => {
    const store = new MemoryStore();
    store.putSchedule('s1', { cron: '* * * * *', timezone: 'UTC', nextRunAt: now });
    store.putNotification('n1', {
      accountId: 'a1',
      slack: { channelId: 'C1' },
      schedule: { cron: '* * * * *', timezone: 'UTC' },
      scheduleId: 's1',
      enabled: true,
    });
    const held = deferred();
    const realClaim = store.claimRun.bind(store);
    // The emulator frozen just after the tick read its due schedules: the claim answers nothing.
    jest.spyOn(store, 'claimRun').mockImplementation(async (...args) => {
      await held.promise;
      return realClaim(...args);
    });
    const { app, lines } = withDeadline(store, async () => undefined);
    const t0 = performance.now();
    const res = await request(app).post('/tick').send({});
    const took = performance.now() - t0;
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'tick_timeout', message: expect.stringContaining('TICK_DEADLINE_SECONDS') });
    expect(res.body.message).toContain('Firestore or Pub/Sub is not answering');
    expect(took).toBeGreaterThanOrEqual(300 + TICK_ANSWER_GRACE_MS - 50);
    expect(took).toBeLessThan(300 + TICK_ANSWER_GRACE_MS + 2_000);
    // Firestore answers again: the run, long past its deadline, publishes nothing and lets go of
    // its lease at once, and the tick's outcome is logged.
    held.resolve();
    await new Promise((r) => setTimeout(r, 100));
    const late = lines.map((l) => JSON.parse(l) as { message?: string; tick?: { occurrences: { error?: string }[] } });
    const ended = late.find((l) => l.message?.includes('ended after it was answered 503'));
    expect(ended?.tick?.occurrences).toEqual([
      expect.objectContaining({ status: 'failed', published: 0, error: expect.stringContaining('deadline') }),
    ]);
    expect(late.some((l) => l.message?.includes('did not end within 0.3 s'))).toBe(true);
    expect(await store.getRun(runIdOf('s1', now.toISOString()))).toMatchObject({
      status: 'running',
      leaseOwner: null,
      published: 0,
    });
  }, 15_000);

  it("counts from the tick's arrival: a readiness check that takes the whole deadline leaves no schedule started", async () => {
    const store = new MemoryStore();
    store.putSchedule('s1', { cron: '* * * * *', timezone: 'UTC', nextRunAt: now });
    const publish = jest.fn<Promise<void>, Parameters<PagePublisher['publishPage']>>(async () => undefined);
    const slow = () => new Promise<void>((r) => setTimeout(r, 400));
    const res = await request(withDeadline(store, publish, { firestore: slow }).app)
      .post('/tick')
      .send({});
    expect(res.status).toBe(503);
    expect(res.body.occurrences).toEqual([
      expect.objectContaining({ status: 'failed', error: expect.stringContaining('passed its deadline (0.3 s') }),
    ]);
    expect(publish).not.toHaveBeenCalled();
  });

  it('answers 503 with the runs it stopped at its deadline, as for a shutdown', async () => {
    const store = new MemoryStore();
    store.putSchedule('s1', { cron: '* * * * *', timezone: 'UTC', nextRunAt: now });
    for (let i = 0; i < 6; i++) {
      store.putNotification(`n${i}`, {
        accountId: `a${i}`,
        slack: { channelId: `C${i}` },
        schedule: { cron: '* * * * *', timezone: 'UTC' },
        scheduleId: 's1',
        enabled: true,
      });
    }
    const publish = jest.fn<Promise<void>, Parameters<PagePublisher['publishPage']>>(
      () => new Promise((r) => setTimeout(r, 200)),
    );
    const { app } = withDeadline(store, publish);
    const res = await request(app).post('/tick').send({});
    expect(res.status).toBe(503);
    expect(res.body.occurrences).toEqual([
      expect.objectContaining({ status: 'failed', published: 4, error: expect.stringContaining('deadline (0.3 s') }),
    ]);
    expect(publish).toHaveBeenCalledTimes(2);
  });
});

describe('POST /tick with a bad schedule time', () => {
  it('answers 400 invalid_schedule_time and dispatches nothing', async () => {
    const store = new MemoryStore();
    store.putSchedule('s1', { cron: '* * * * *', timezone: 'UTC', nextRunAt: new Date(now.getTime() - 60_000) });
    const publish = jest.fn<Promise<void>, Parameters<PagePublisher['publishPage']>>(async () => undefined);
    const app = createApp({
      runs: store,
      publisher: { publishPage: publish },
      log: createLogger({ service: 'test', level: 'silent' }),
      pageSize: 10,
      leaseSeconds: 60,
      catchUpWindowSeconds: 900,
      projectId: 'demo-test',
      clock: () => now,
    });
    for (const header of ['2026-11-30T09:30:00Z', 'Tue, 01 Dec 2026 00:00:00 GMT']) {
      const res = await request(app).post('/tick').set('X-CloudScheduler-ScheduleTime', header).send({});
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_schedule_time', message: expect.stringContaining(header) });
    }
    // Sent twice on the wire (setHeader with two values writes two lines): Node would join them.
    const server = createServer(app).listen(0, '127.0.0.1');
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const twice = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/tick', method: 'POST' }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        });
        req.setHeader('X-CloudScheduler-ScheduleTime', ['2026-11-29T09:29:00Z', '2026-11-29T09:29:00Z']);
        req.on('error', reject).end();
      });
      expect(twice.status).toBe(400);
      expect(twice.body).toMatchObject({
        error: 'invalid_schedule_time',
        message: expect.stringContaining('sent 2 times'),
      });
    } finally {
      server.close();
    }
    expect(publish).not.toHaveBeenCalled();
    expect(store.schedule('s1')?.nextRunAt?.toISOString()).toBe(new Date(now.getTime() - 60_000).toISOString());
  });
});

/** A store with one every-minute schedule due a minute ago, and `count` notifications on it. */
function dueEveryMinute(count: number): MemoryStore {
  const store = new MemoryStore();
  store.putSchedule('s1', { cron: '* * * * *', timezone: 'UTC', nextRunAt: new Date(now.getTime() - 60_000) });
  for (let i = 0; i < count; i++) {
    store.putNotification(`n${i}`, {
      accountId: 'a1',
      slack: { channelId: 'C1' },
      schedule: { cron: '* * * * *', timezone: 'UTC' },
      scheduleId: 's1',
      enabled: true,
    });
  }
  return store;
}

describe('shutting down while a tick runs', () => {
  it('waits for the tick, which stops at its next page and answers, before the clients are closed', async () => {
    const store = dueEveryMinute(6);
    const log = createLogger({ service: 'test', level: 'silent' });
    const lifecycle = createLifecycle(log);
    const firstPage = deferred();
    const release = deferred();
    let pages = 0;
    const app = createApp({
      runs: store,
      publisher: {
        publishPage: async () => {
          pages++;
          firstPage.resolve();
          await release.promise;
        },
      },
      log,
      pageSize: 1,
      leaseSeconds: 60,
      catchUpWindowSeconds: 900,
      projectId: 'demo-test',
      clock: () => now,
      isDraining: lifecycle.isDraining,
      track: lifecycle.track,
    });
    const { server, port } = await listening(app);
    const tick = fetch(`http://127.0.0.1:${port}/tick`, { method: 'POST' });
    await firstPage.promise;
    // Probes are not work a shutdown waits for.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(lifecycle.inFlight()).toBe(1);

    let closedWhileTickInFlight: boolean | null = null;
    const shutdown = lifecycle.shutdown(server, async () => {
      closedWhileTickInFlight = lifecycle.inFlight() > 0;
    });
    release.resolve();
    const res = await tick;
    await shutdown;
    expect(closedWhileTickInFlight).toBe(false);
    // The run stopped at the page after SIGTERM: not every notification was published.
    expect(res.status).toBe(503);
    expect(pages).toBeLessThan(6);
    expect(await res.json()).toMatchObject({ occurrences: [expect.objectContaining({ status: 'failed' })] });
  });
});

describe('shutting down while a tick whose caller left runs', () => {
  it('waits for the tick all the same, before the clients are closed', async () => {
    const store = dueEveryMinute(6);
    const { log, lines } = capturedLog();
    const lifecycle = createLifecycle(log);
    const firstPage = deferred();
    const release = deferred();
    const app = createApp({
      ...minimalDeps(),
      runs: store,
      publisher: {
        publishPage: async () => {
          firstPage.resolve();
          await release.promise;
        },
      },
      log,
      pageSize: 1,
      clock: () => now,
      isDraining: lifecycle.isDraining,
      track: lifecycle.track,
    });
    const { server, port } = await listening(app);
    const caller = new AbortController();
    const tick = fetch(`http://127.0.0.1:${port}/tick`, { method: 'POST', signal: caller.signal }).catch(
      (err: unknown) => err,
    );
    await firstPage.promise;
    // Cloud Scheduler's connection drops (its attempt deadline), then the instance is told to stop.
    caller.abort();
    await tick;
    await new Promise((r) => setTimeout(r, 50));
    expect(lifecycle.inFlight()).toBe(1);
    let closedWhileTickInFlight: boolean | null = null;
    const shutdown = lifecycle.shutdown(server, async () => {
      closedWhileTickInFlight = lifecycle.inFlight() > 0;
    });
    release.resolve();
    await shutdown;
    expect(closedWhileTickInFlight).toBe(false);
    expect(lines.find((l) => String(l.message).startsWith('ended after its caller left'))).toMatchObject({
      status: 503,
    });
  });
});

describe('the lifecycle', () => {
  it('a second SIGTERM while draining changes nothing: one shutdown, one exit, after the first finishes', async () => {
    const before = process.listeners('SIGTERM');
    const beforeInt = process.listeners('SIGINT');
    const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const log = createLogger({ service: 'test', level: 'silent' });
      const lifecycle = createLifecycle(log);
      const shutdown = jest.spyOn(lifecycle, 'shutdown');
      const closing = deferred();
      const server = serve(
        createApp({ ...minimalDeps(), log }),
        { service: 'test', port: 0, host: '127.0.0.1' },
        log,
        lifecycle,
        () => closing.promise,
      );
      await new Promise((r) => server.once('listening', r));
      process.emit('SIGTERM');
      // Still listening after the first: a second real signal must not get Node's default (exit 143).
      expect(process.listeners('SIGTERM').length).toBeGreaterThan(before.length);
      process.emit('SIGTERM');
      await new Promise((r) => setTimeout(r, 50));
      // Still closing: the second signal did not exit early.
      expect(exit).not.toHaveBeenCalled();
      closing.resolve();
      for (let i = 0; i < 100 && exit.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(shutdown).toHaveBeenCalledTimes(1);
      expect(exit.mock.calls).toEqual([[0]]);
    } finally {
      exit.mockRestore();
      for (const l of process.listeners('SIGTERM')) if (!before.includes(l)) process.off('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!beforeInt.includes(l)) process.off('SIGINT', l);
    }
  });

  it('exits even when closing the clients hangs, within its close grace', async () => {
    const lifecycle = createLifecycle(createLogger({ service: 'test', level: 'silent' }));
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const t0 = performance.now();
    await lifecycle.shutdown(server, () => new Promise<void>(() => undefined), 100);
    expect(performance.now() - t0).toBeLessThan(CLOSE_GRACE_MS + 1000);
  });
});

function minimalDeps() {
  return {
    runs: new MemoryStore(),
    publisher: { publishPage: async () => undefined },
    pageSize: 10,
    leaseSeconds: 60,
    catchUpWindowSeconds: 900,
    projectId: 'demo-test',
  };
}
