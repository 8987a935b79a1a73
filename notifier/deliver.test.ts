import { classifySlackErrorCode, classifySlackHttpStatus, PermanentError, RetryableError } from '../shared/errors';
import { createLogger } from '../shared/logger';
import { MemoryStore } from '../shared/memory-store';
import { type DispatchMessage, encodeDispatchMessage } from '../shared/messages';
import { deliveryIdOf, runIdOf } from '../shared/model';
import { notificationDoc } from '../shared/notifications';
import { scheduleIdOf } from '../shared/schedule';
import { capturedLog } from '../test/helpers';
import {
  DeadLetterNotRecorded,
  type DeliverDeps,
  handleDeadLetter,
  handlePush,
  OCCURRENCE_CLOCK_SKEW_MS,
  slackTsTime,
} from './deliver';
import type { PostRequest, SlackPort } from './slack';

/** A Slack stand-in: answers each post from a script, records what it was asked. */
class FakeSlack implements SlackPort {
  readonly posts: PostRequest[] = [];
  readonly lookups: { channel: string; deliveryId: string; since: Date; teamId: string | undefined }[] = [];
  /** One entry per post: an error to throw, or undefined to succeed. */
  script: (Error | undefined)[] = [];
  found: string | null = null;
  /** Posts found per channel, where one is set there; otherwise `found`. */
  readonly foundIn = new Map<string, string>();
  /** Run at each look, before it answers (a look that takes its time). */
  onLookup: () => void = () => undefined;
  /** Errors a look throws, per channel (Slack rate limited, the channel gone). */
  readonly lookupFails = new Map<string, Error>();

  async post(req: PostRequest): Promise<{ ts: string; channel: string }> {
    this.posts.push(req);
    const err = this.script.shift();
    if (err) throw err;
    return { ts: `1700000000.${String(this.posts.length).padStart(6, '0')}`, channel: req.channel };
  }

  async findDelivery(channel: string, deliveryId: string, since: Date, teamId?: string): Promise<string | null> {
    this.lookups.push({ channel, deliveryId, since, teamId });
    this.onLookup();
    const failure = this.lookupFails.get(channel);
    if (failure) throw failure;
    return this.foundIn.get(channel) ?? this.found;
  }

  async checkToken() {
    return { team: null, scopes: null };
  }
}

const log = createLogger({ service: 'deliver-test', level: 'silent' });

/** A logger that keeps each line's level and message. */
function recordingLogger(lines: { level: string; msg: string }[]): DeliverDeps['log'] {
  const stream = {
    write(line: string) {
      const { severity, message } = JSON.parse(line) as { severity: string; message: string };
      lines.push({ level: severity.toLowerCase(), msg: message });
    },
  };
  return createLogger({ service: 'deliver-test', level: 'info', destination: stream });
}
const t0 = new Date('2026-12-07T08:00:05.000Z');
const occurrence = '2026-12-07T08:00:00.000Z';

function setup(opts: { now?: () => Date } = {}) {
  const store = new MemoryStore();
  const slack = new FakeSlack();
  let now = t0;
  const deps: DeliverDeps = {
    ledger: store,
    notifications: store,
    accounts: store.accounts,
    runs: store,
    slack,
    log,
    claimTtlMs: 60_000,
    pauseAfterFailures: 3,
    clock: opts.now ?? (() => now),
    owner: 'notifier-test',
  };
  const advance = (ms: number) => {
    now = new Date(now.getTime() + ms);
  };
  /** The clock five seconds after an occurrence, as when its run has just published it. */
  const dueAt = (occ: string) => {
    now = new Date(Date.parse(occ) + 5000);
  };
  store.putAccount('acct-1', {
    name: 'Acme',
    metrics: [{ label: 'Revenue', value: 1200, change: 3 }],
    highlights: ['A good week'],
  });
  const doc = notificationDoc({
    id: 'n-1',
    accountId: 'acct-1',
    channelId: 'C0123',
    cron: '0 9 * * MON-FRI',
    timezone: 'Europe/Paris',
  });
  store.putNotification('n-1', doc);
  return { store, slack, deps, advance, dueAt, scheduleId: doc.scheduleId };
}

/** The schedule of the test's notifications: a push for it is one they still want. */
const SCHEDULE_ID = scheduleIdOf({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' });

function push(notificationId = 'n-1', occ = occurrence, extra: Partial<DispatchMessage> = {}) {
  const scheduleId = extra.scheduleId ?? SCHEDULE_ID;
  const message: DispatchMessage = {
    v: 1,
    notificationId,
    occurrence: occ,
    scheduleId,
    runId: runIdOf(scheduleId, occ),
    ...extra,
  };
  return {
    message: {
      data: encodeDispatchMessage(message).toString('base64'),
      attributes: { deliveryId: deliveryIdOf(notificationId, occ), runId: message.runId },
      messageId: `m-${notificationId}-${occ}`,
      publishTime: '2026-12-07T08:00:01.000Z',
    },
    subscription: 'projects/p/subscriptions/slack-fanout-dispatch-push',
    deliveryAttempt: 1,
  };
}

const id = deliveryIdOf('n-1', occurrence);

/** The claim of n-1's delivery by an attempt that then died mid-post: at t0, for 60 s, in C0123. */
function died(store: MemoryStore) {
  return store.claim({
    deliveryId: id,
    notificationId: 'n-1',
    occurrence,
    runId: runIdOf(SCHEDULE_ID, occurrence),
    owner: 'died',
    ttlMs: 60_000,
    now: t0,
    publishedAt: null,
    target: { channelId: 'C0123', teamId: null, accountId: 'acct-1' },
  });
}

/**
 * Makes every claim of `deps` land, lose its answer and be tried again with the same token (a
 * retried transaction): the record is then already the attempt's own. The answers given, kept.
 */
function claimRetriedWithItsToken(store: MemoryStore, deps: DeliverDeps): unknown[] {
  const answers: unknown[] = [];
  deps.ledger = Object.assign(Object.create(store) as MemoryStore, {
    claim: async (req: Parameters<MemoryStore['claim']>[0]) => {
      await store.claim(req);
      const again = await store.claim(req);
      answers.push(again);
      return again;
    },
  });
  return answers;
}

describe('handlePush', () => {
  it('posts the report and records sent with the Slack ts', async () => {
    const { store, slack, deps } = setup();
    const result = await handlePush(push(), deps);

    expect(result).toMatchObject({ kind: 'ack', reason: 'sent', deliveryId: id, status: 'sent' });
    expect(slack.posts).toHaveLength(1);
    const post = slack.posts[0] as PostRequest;
    expect(post.channel).toBe('C0123');
    expect(post.deliveryId).toBe(id);
    expect(post.text).toContain('Acme');
    expect(post.blocks.length).toBeGreaterThan(0);
    const d = await store.get(id);
    expect(d).toMatchObject({ status: 'sent', slackTs: '1700000000.000001', channelId: 'C0123', accountId: 'acct-1' });
    expect(d?.attempts).toBe(1);
    // Publish at 08:00:01, answered at 08:00:05.
    expect(d?.latencyMs).toBe(4000);
  });

  it('records a latency of 0, not less, for a publish time ahead of its clock', async () => {
    const { store, deps } = setup();
    const body = push();
    // Published, by Pub/Sub's clock, 50 s after the notifier's answer at 08:00:05.
    body.message.publishTime = '2026-12-07T08:00:55.000Z';
    expect(await handlePush(body, deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect((await store.get(id))?.latencyMs).toBe(0);
  });

  it('acks a duplicate of a sent delivery without posting again', async () => {
    const { slack, deps } = setup();
    await handlePush(push(), deps);
    const again = await handlePush(push(), deps);
    expect(again).toMatchObject({ kind: 'ack', reason: 'already_sent', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('retries while another attempt holds a live claim, without posting', async () => {
    const { store, slack, deps, advance } = setup();
    await store.claim({
      deliveryId: id,
      notificationId: 'n-1',
      occurrence,
      runId: 'r',
      owner: 'other-instance',
      ttlMs: 60_000,
      now: t0,
      publishedAt: null,
    });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'retry', reason: 'claimed_elsewhere', deliveryId: id });
    expect(slack.posts).toHaveLength(0);

    // Once that claim expires, the other attempt may have posted: look first, then post.
    advance(61_000);
    const later = await handlePush(push(), deps);
    expect(later).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.lookups).toHaveLength(1);
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(id))?.attempts).toBe(2);
  });

  it('records a retryable Slack error as retrying and asks for a retry, then sends on the next attempt', async () => {
    const { store, slack, deps } = setup();
    slack.script = [classifySlackErrorCode('ratelimited')];
    const result = await handlePush(push(), deps);

    expect(result).toMatchObject({ kind: 'retry', reason: 'slack_retryable', status: 'retrying', deliveryId: id });
    const d = await store.get(id);
    expect(d?.status).toBe('retrying');
    expect(d?.lastError).toMatchObject({ code: 'slack_retryable', slackError: 'ratelimited', retryable: true });
    expect(d?.outcomeUnknown).toBe(false);

    const next = await handlePush(push(), deps);
    expect(next).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(2);
    // A plain retryable failure posted nothing, so nothing is looked up.
    expect(slack.lookups).toHaveLength(0);
    expect((await store.get(id))?.attempts).toBe(2);
  });

  it('passes Retry-After on', async () => {
    const { slack, deps } = setup();
    slack.script = [new RetryableError('slack_retryable', 'rate limited', { retryAfterSeconds: 7 })];
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', retryAfterSeconds: 7 });
  });

  it('fails a permanent channel error, acks, counts it, and pauses the notification at 3 in a row', async () => {
    const { store, slack, deps, dueAt } = setup();
    const days = ['2026-12-07', '2026-12-08', '2026-12-09'].map((d) => `${d}T08:00:00.000Z`);
    slack.script = days.map(() => classifySlackErrorCode('channel_not_found'));

    for (const [i, occ] of days.entries()) {
      dueAt(occ);
      const result = await handlePush(push('n-1', occ), deps);
      expect(result).toMatchObject({ kind: 'ack', reason: 'slack_permanent_channel', status: 'failed' });
      const d = await store.get(deliveryIdOf('n-1', occ));
      expect(d?.status).toBe('failed');
      expect(d?.lastError).toMatchObject({ code: 'slack_permanent_channel', retryable: false });
      const n = store.notification('n-1');
      expect(n?.consecutiveFailures).toBe(i + 1);
      expect(n?.enabled).toBe(i + 1 < 3);
    }
    expect(store.notification('n-1')?.pausedReason).toBe('channel_not_found');

    // Paused: the next occurrence is skipped without a post.
    dueAt('2026-12-10T08:00:00.000Z');
    const after = await handlePush(push('n-1', '2026-12-10T08:00:00.000Z'), deps);
    expect(after).toMatchObject({ kind: 'ack', reason: 'notification_paused', status: 'skipped' });
    expect(slack.posts).toHaveLength(3);
    // While it was on its schedule, failing, its index entry was its own; paused, any left is taken out.
    expect(store.leftIndex).toEqual([{ id: 'n-1', scheduleId: SCHEDULE_ID }]);
  });

  it.each<[string, (doc: Record<string, unknown>) => Record<string, unknown> | null]>([
    ['deleted outside the system', () => null],
    ['without a schedule', (doc) => ({ ...doc, scheduleId: null })],
    ['enabled as a string', (doc) => ({ ...doc, enabled: 'yes' })],
  ])('a notification %s is taken out of the index of the schedule that published it', async (_, change) => {
    const { store, deps } = setup();
    const changed = change(store.notification('n-1') as Record<string, unknown>);
    if (changed) store.putNotification('n-1', changed);
    else store.notificationDocs.delete('n-1');
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack' });
    expect(store.leftIndex).toEqual([{ id: 'n-1', scheduleId: SCHEDULE_ID }]);
  });

  it('a tidy of the index that fails is logged, and the delivery keeps its outcome', async () => {
    const { store, deps } = setup();
    store.notificationDocs.delete('n-1');
    const lines: { level: string; msg: string }[] = [];
    store.leaveIndex = async () => {
      throw new Error('firestore unavailable');
    };
    const result = await handlePush(push(), { ...deps, log: recordingLogger(lines) });
    expect(result).toMatchObject({ kind: 'ack', reason: 'notification_not_found', status: 'failed' });
    expect(lines).toContainEqual({
      level: 'warning',
      msg: 'could not tidy the dispatch index; the next such message tries again',
    });
  });

  it('answers retry, posting nothing and recording nothing, to a push for an occurrence not yet due', async () => {
    const { store, slack, deps, dueAt } = setup();
    // Tomorrow's 09:00 in Paris: an occurrence of the schedule, which no run has dispatched yet.
    const later = '2026-12-08T08:00:00.000Z';
    const laterId = deliveryIdOf('n-1', later);
    // Pub/Sub's backoff decides when it comes again: the nack is not held for it.
    expect(await handlePush(push('n-1', later), deps)).toEqual({
      kind: 'retry',
      reason: 'future_occurrence',
      deliveryId: laterId,
    });
    expect(slack.posts).toHaveLength(0);
    expect(await store.get(laterId)).toBeNull();
    // Once it is due on this clock (a clock that was behind the dispatcher's, say), it posts.
    dueAt(later);
    expect(await handlePush(push('n-1', later), deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('posts an occurrence less than the allowed clock skew ahead of its clock', async () => {
    const { slack, deps } = setup({ now: () => new Date(Date.parse(occurrence) - OCCURRENCE_CLOCK_SKEW_MS + 1000) });
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('counts a report Slack refuses for good towards pausing, under Slack’s error or the HTTP status', async () => {
    const { store, slack, deps, dueAt } = setup();
    const days = ['2026-12-07', '2026-12-08', '2026-12-09'].map((d) => `${d}T08:00:00.000Z`);
    slack.script = [
      classifySlackErrorCode('invalid_blocks'),
      classifySlackHttpStatus(413),
      classifySlackErrorCode('msg_too_long'),
    ];
    for (const [i, at] of days.entries()) {
      dueAt(at);
      expect(await handlePush(push('n-1', at), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
      expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: i + 1, enabled: i + 1 < 3 });
    }
    expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'msg_too_long' });
  });

  it('does not count a payload error only this code can cause (invalid_arguments, no_text): a bad deploy pauses nothing', async () => {
    const { store, slack, deps, dueAt } = setup();
    const codes = ['invalid_arguments', 'no_text', 'invalid_blocks_format', 'metadata_too_large'];
    slack.script = codes.map((code) => classifySlackErrorCode(code));
    for (const [i] of codes.entries()) {
      const at = `2026-12-${String(7 + i).padStart(2, '0')}T08:00:00.000Z`;
      dueAt(at);
      expect(await handlePush(push('n-1', at), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
    }
    expect(store.notification('n-1')).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  });

  it('pauses under HTTP 413 as http_413', async () => {
    const { store, slack, deps, dueAt } = setup();
    slack.script = [413, 413, 413].map((status) => classifySlackHttpStatus(status));
    for (const day of ['07', '08', '09']) {
      const at = `2026-12-${day}T08:00:00.000Z`;
      dueAt(at);
      await handlePush(push('n-1', at), deps);
    }
    expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'http_413' });
  });

  it('does not count again a failure a redrive of a failed delivery meets, whichever occurrence the notification counted last', async () => {
    const { store, slack, deps, dueAt } = setup();
    const days = ['07', '08', '09', '10'].map((d) => `2026-12-${d}T08:00:00.000Z`);
    slack.script = days.map(() => classifySlackErrorCode('not_in_channel'));
    for (const at of days.slice(0, 3)) {
      dueAt(at);
      await handlePush(push('n-1', at), deps);
    }
    expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'not_in_channel' });
    // Resumed (its count back to 0), then a new occurrence fails: counted.
    store.putNotification('n-1', {
      ...(store.notification('n-1') as Record<string, unknown>),
      enabled: true,
      pausedReason: null,
      consecutiveFailures: 0,
    });
    dueAt(days[3] as string);
    await handlePush(push('n-1', days[3]), deps);
    expect(store.notification('n-1')).toMatchObject({ enabled: true, consecutiveFailures: 1 });
    // The three earlier occurrences redriven (reopened from failed), the cause not fixed yet:
    // each fails again, and none counts again, so the notification is not paused by them.
    slack.script = days.slice(0, 3).map(() => classifySlackErrorCode('not_in_channel'));
    for (const at of days.slice(0, 3)) {
      const deliveryId = `n-1:${at}`;
      store.deliveryDocs.set(deliveryId, {
        ...store.deliveryDocs.get(deliveryId),
        status: 'retrying',
        redriveId: 'redrive-a',
        lastRedriveAt: new Date(),
        failedBeforeRedriveAt: new Date(at),
      });
      expect(await handlePush(push('n-1', at, { redrive: true, redriveId: 'redrive-a' }), deps)).toMatchObject({
        kind: 'ack',
        status: 'failed',
      });
    }
    expect(store.notification('n-1')).toMatchObject({ enabled: true, consecutiveFailures: 1 });
  });

  it('a success after failures resets the failure count', async () => {
    const { store, slack, deps, dueAt } = setup();
    slack.script = [classifySlackErrorCode('not_in_channel')];
    await handlePush(push('n-1', '2026-12-07T08:00:00.000Z'), deps);
    expect(store.notification('n-1')?.consecutiveFailures).toBe(1);
    dueAt('2026-12-08T08:00:00.000Z');
    await handlePush(push('n-1', '2026-12-08T08:00:00.000Z'), deps);
    expect(store.notification('n-1')?.consecutiveFailures).toBe(0);
  });

  it('fails and acks a push for a notification that does not exist', async () => {
    const { store, slack, deps } = setup();
    const result = await handlePush(push('n-missing'), deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'notification_not_found', status: 'failed' });
    expect((await store.get(deliveryIdOf('n-missing', occurrence)))?.lastError?.code).toBe('notification_not_found');
    expect(slack.posts).toHaveLength(0);
    expect(store.leftIndex).toEqual([{ id: 'n-missing', scheduleId: SCHEDULE_ID }]);
  });

  it('fails and acks a notification without a channel (invalid_notification)', async () => {
    const { store, slack, deps } = setup();
    const doc = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...doc, slack: { teamId: 'T1' } });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'invalid_notification', status: 'failed' });
    expect((await store.get(id))?.lastError).toMatchObject({ code: 'invalid_notification', retryable: false });
    expect(slack.posts).toHaveLength(0);
  });

  it.each([' C0SPACE ', 'C0\u202eevil\u200b', 'C0\u0000'])(
    'fails a notification stored by hand with the channel %j, which a save refuses, without posting it',
    async (channelId) => {
      const { store, slack, deps } = setup();
      const doc = store.notification('n-1') as Record<string, unknown>;
      store.putNotification('n-1', { ...doc, slack: { channelId } });
      const result = await handlePush(push(), deps);
      expect(result).toMatchObject({ kind: 'ack', reason: 'invalid_notification', status: 'failed' });
      expect((await store.get(id))?.lastError?.message).toMatch(
        /slack\.channelId: has blanks( around it|, control characters or invisible characters in it), which no Slack id has/,
      );
      expect(slack.posts).toHaveLength(0);
    },
  );

  it('fails and acks a notification whose stored time zone is unknown', async () => {
    const { store, slack, deps } = setup();
    const doc = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...doc, schedule: { cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons' } });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'invalid_notification', status: 'failed' });
    expect((await store.get(id))?.lastError?.message).toContain('Mars/Olympus_Mons');
    expect(slack.posts).toHaveLength(0);
  });

  it('fails and acks when the account is missing', async () => {
    const { store, slack, deps } = setup();
    store.accountDocs.clear();
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'invalid_notification' });
    expect(slack.posts).toHaveLength(0);
  });

  it('pauses a notification whose account is missing at 3 occurrences in a row', async () => {
    const { store, slack, deps, dueAt } = setup();
    store.accountDocs.clear();
    for (const [i, occ] of ['2026-12-07T08:00:00.000Z', '2026-12-08T08:00:00.000Z'].entries()) {
      dueAt(occ);
      await handlePush(push('n-1', occ), deps);
      expect(store.notification('n-1')).toMatchObject({ enabled: true, consecutiveFailures: i + 1 });
    }
    dueAt('2026-12-09T08:00:00.000Z');
    await handlePush(push('n-1', '2026-12-09T08:00:00.000Z'), deps);
    expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'account_not_found' });
    expect(slack.posts).toHaveLength(0);
  });

  it.each<[string, (doc: Record<string, unknown>) => Record<string, unknown>, RegExp]>([
    ['no channel', (doc) => ({ ...doc, slack: {} }), /is invalid: slack\.channelId: /],
    ['a cron that cannot be read', (doc) => ({ ...doc, schedule: { cron: 'every day', timezone: 'UTC' } }), /cron/],
    ['an account id that is a number', (doc) => ({ ...doc, accountId: 42 }), /is invalid: accountId: /],
  ])(
    'pauses a notification with %s at 3 occurrences in a row, as notification_invalid',
    async (_what, broken, says) => {
      const { store, slack, deps, dueAt } = setup();
      store.putNotification('n-1', broken(store.notification('n-1') as Record<string, unknown>));
      const occurrences = ['2026-12-07T08:00:00.000Z', '2026-12-08T08:00:00.000Z', '2026-12-09T08:00:00.000Z'];
      for (const [i, occ] of occurrences.entries()) {
        dueAt(occ);
        expect(await handlePush(push('n-1', occ), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
        expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: i + 1 });
      }
      expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'notification_invalid' });
      const record = await store.get(deliveryIdOf('n-1', occurrences[2] as string));
      expect(record?.lastError).toMatchObject({ code: 'invalid_notification' });
      expect(record?.lastError?.message).toMatch(says);
      expect(slack.posts).toHaveLength(0);
    },
  );

  it('names what is wrong with an invalid account', async () => {
    const { store, slack, deps } = setup();
    for (const [accountId] of store.accountDocs) store.accountDocs.set(accountId, { name: 12345, metrics: 'lots' });
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'invalid_notification' });
    expect((await store.get(id))?.lastError?.message).toMatch(/^account \S+ is invalid: name: .+; metrics: /);
    expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 1, lastFailure: 'account_invalid' });
    expect(slack.posts).toHaveLength(0);
  });

  it('skips a paused notification', async () => {
    const { store, slack, deps } = setup();
    const doc = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...doc, enabled: false, pausedReason: 'paused by an operator' });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'notification_paused', status: 'skipped' });
    expect((await store.get(id))?.status).toBe('skipped');
    expect(slack.posts).toHaveLength(0);
  });

  it('after an outcome-unknown attempt, finds the earlier post and records sent without posting twice', async () => {
    const { store, slack, deps, advance } = setup();
    slack.script = [new RetryableError('slack_outcome_unknown', 'timed out', { slackError: 'request_timeout' })];
    const first = await handlePush(push(), deps);
    expect(first).toMatchObject({ kind: 'retry', reason: 'slack_outcome_unknown', status: 'retrying' });
    expect((await store.get(id))?.outcomeUnknown).toBe(true);

    advance(30_000);
    slack.found = '1700000000.424242';
    const second = await handlePush(push(), deps);
    expect(second).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect(slack.lookups).toEqual([{ channel: 'C0123', deliveryId: id, since: t0, teamId: undefined }]);
    expect(await store.get(id)).toMatchObject({ status: 'sent', slackTs: '1700000000.424242', outcomeUnknown: false });
    // Recorded as sent when it was posted, by its Slack timestamp, not when it was found.
    expect((await store.get(id))?.sentAt).toEqual(new Date('2023-11-14T22:13:20.424Z'));
  });

  it.each([
    ['1700000000.424242', '2023-11-14T22:13:20.424Z'],
    ['1700000000', '2023-11-14T22:13:20.000Z'],
    ['', null],
    ['abc', null],
    ['1700000000.', null],
    ['-1.5', null],
    ['0.000000', null],
    ['1e12', null],
    ['9999999999999.1', null],
  ])('reads the time of the Slack timestamp %j', (ts, iso) => {
    expect(slackTsTime(ts)?.toISOString() ?? null).toBe(iso);
  });

  it.each<[string, () => Error, boolean]>([
    [
      'a timeout (the post may still land)',
      () => new RetryableError('slack_outcome_unknown', 't', { slackError: 'request_timeout' }),
      true,
    ],
    ['a gateway timeout, HTTP 504', () => classifySlackHttpStatus(504), true],
    ['a bad gateway, HTTP 502 (a proxy may still pass the post on)', () => classifySlackHttpStatus(502), true],
    ["a gateway's HTTP 503 (Envoy's answer to an upstream reset)", () => classifySlackHttpStatus(503), true],
    ["Slack's internal_error (the call is over)", () => classifySlackErrorCode('internal_error'), false],
  ])(
    'after %s, the retry waits out the Slack timeout only when the post may still land',
    async (_what, error, waits) => {
      const { store, slack, deps } = setup();
      slack.script = [error()];
      const result = await handlePush(push(), deps);
      expect(result).toMatchObject({ kind: 'retry', reason: 'slack_outcome_unknown' });
      expect(result.notBeforeMs).toBe(waits ? 10_000 : undefined);
      expect((await store.get(id))?.outcomeUnknown).toBe(true);
      // The delivery is held as long, against any other message of it: a Pub/Sub duplicate, or
      // a redrive's, would otherwise look in the channel before the post could have landed.
      expect((await store.get(id))?.claimExpiresAt ?? null).toEqual(waits ? new Date(t0.getTime() + 10_000) : null);
    },
  );

  it('holds a delivery whose post timed out against another message until the post could have landed', async () => {
    const { slack, deps, advance } = setup();
    slack.script = [new RetryableError('slack_outcome_unknown', 'timed out', { slackError: 'request_timeout' })];
    await handlePush(push(), deps);
    advance(5_000);
    expect(await handlePush(push(), deps)).toMatchObject({
      kind: 'retry',
      reason: 'claimed_elsewhere',
      notBeforeMs: 5_000,
    });
    expect(slack.lookups).toHaveLength(0);
    advance(5_001);
    slack.found = '1700000000.424242';
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.lookups).toHaveLength(1);
    expect(slack.posts).toHaveLength(1);
  });

  describe('after an outcome-unknown attempt, the notification changed meanwhile', () => {
    /** One attempt whose outcome is unknown (Slack took the post, then a gateway answered 502), 30 s ago. */
    async function unknownOutcome() {
      const ctx = setup();
      ctx.slack.script = [classifySlackHttpStatus(502)];
      expect(await handlePush(push(), ctx.deps)).toMatchObject({ kind: 'retry', reason: 'slack_outcome_unknown' });
      expect(await ctx.store.get(id)).toMatchObject({
        outcomeUnknown: true,
        postTargets: [{ channelId: 'C0123', teamId: null, accountId: 'acct-1' }],
      });
      ctx.advance(30_000);
      return ctx;
    }
    const edit = (store: MemoryStore, change: Record<string, unknown>) =>
      store.putNotification('n-1', { ...(store.notification('n-1') as Record<string, unknown>), ...change });

    it('moved to another channel: finds the post in the channel it went to, and does not post in the new one', async () => {
      const { store, slack, deps } = await unknownOutcome();
      edit(store, { slack: { channelId: 'C0999' } });
      slack.foundIn.set('C0123', '1700000000.000001');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(slack.posts.map((p) => p.channel)).toEqual(['C0123']);
      expect(slack.lookups.map((l) => l.channel)).toEqual(['C0123']);
      expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: 'C0123', slackTs: '1700000000.000001' });
    });

    it('moved to another channel, the earlier post not found: looks in both, then posts once in the new one', async () => {
      const { store, slack, deps } = await unknownOutcome();
      edit(store, { slack: { channelId: 'C0999', teamId: 'T0002' } });
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(slack.lookups.map((l) => [l.channel, l.teamId])).toEqual([
        ['C0123', undefined],
        ['C0999', 'T0002'],
      ]);
      expect(slack.posts.map((p) => p.channel)).toEqual(['C0123', 'C0999']);
      expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: 'C0999' });
    });

    it.each<[string, (store: MemoryStore) => void]>([
      ['paused', (store) => edit(store, { enabled: false, pausedReason: 'ops pause' })],
      ['deleted', (store) => store.notificationDocs.delete('n-1')],
      ['its account deleted', (store) => store.accountDocs.delete('acct-1')],
      ['moved to a schedule that does not fall due then', (store) => edit(store, { scheduleId: 'other-schedule' })],
    ])('%s: a post that landed is recorded sent, not skipped or failed', async (_what, change) => {
      const { store, slack, deps } = await unknownOutcome();
      change(store);
      slack.foundIn.set('C0123', '1700000000.000001');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
      expect(slack.posts).toHaveLength(1);
      expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: 'C0123', accountId: 'acct-1' });
      // A delivered report does not count towards pausing.
      expect(store.notification('n-1')?.consecutiveFailures ?? 0).toBe(0);
    });

    it('its account changed, the channel not: the post found is recorded for the account it was made for', async () => {
      const { store, slack, deps } = await unknownOutcome();
      store.putAccount('acct-2', { name: 'Other', metrics: [], highlights: [] });
      edit(store, { accountId: 'acct-2' });
      slack.foundIn.set('C0123', '1700000000.000001');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(await store.get(id)).toMatchObject({ status: 'sent', accountId: 'acct-1' });
      expect((await store.get(id))?.postTargets).toEqual([{ channelId: 'C0123', teamId: null, accountId: 'acct-1' }]);
    });

    it('a post found resets the failure count, as a post made does', async () => {
      const { store, slack, deps } = await unknownOutcome();
      edit(store, { consecutiveFailures: 2 });
      slack.foundIn.set('C0123', '1700000000.000001');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(store.notification('n-1')?.consecutiveFailures).toBe(0);
    });

    it('a look that outlasts what the claim has left renews the claim, then posts once', async () => {
      const { store, slack, deps, advance } = await unknownOutcome();
      edit(store, { slack: { channelId: 'C0999' } });
      // Each look takes 30 s: two of them leave less of the 60 s claim than a post may take.
      slack.onLookup = () => advance(30_000);
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(slack.lookups.map((l) => l.channel)).toEqual(['C0123', 'C0999']);
      expect(slack.posts.map((p) => p.channel)).toEqual(['C0123', 'C0999']);
    });

    it('a look during which another attempt took the delivery over posts nothing', async () => {
      const { store, slack, deps, advance } = await unknownOutcome();
      slack.onLookup = () => {
        advance(55_000);
        const d = store.deliveryDocs.get(id);
        store.deliveryDocs.set(id, { ...d, claimedBy: 'another-attempt' });
      };
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', reason: 'dependency_unavailable' });
      expect(slack.posts).toHaveLength(1);
      expect(store.deliveryDocs.get(id)?.claimedBy).toBe('another-attempt');
    });

    it('paused, the earlier post not found: skipped after looking', async () => {
      const { store, slack, deps } = await unknownOutcome();
      edit(store, { enabled: false, pausedReason: 'ops pause' });
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'skipped' });
      expect(slack.lookups.map((l) => l.channel)).toEqual(['C0123']);
      expect(slack.posts).toHaveLength(1);
    });

    it.each<[string, string | null]>([
      ['the channel the same', null],
      ['moved to another channel', 'C0999'],
    ])(
      '%s: a look Slack rate limits fails the attempt for a retry, posting nothing, the outcome still unknown',
      async (_what, movedTo) => {
        const { store, slack, deps } = await unknownOutcome();
        if (movedTo) edit(store, { slack: { channelId: movedTo } });
        slack.lookupFails.set('C0123', classifySlackErrorCode('ratelimited'));
        expect(await handlePush(push(), deps)).toMatchObject({
          kind: 'retry',
          reason: 'slack_retryable',
          status: 'retrying',
        });
        // It never posts without having looked: the one post is the first attempt's.
        expect(slack.lookups.map((l) => l.channel)).toEqual(['C0123']);
        expect(slack.posts).toHaveLength(1);
        expect(await store.get(id)).toMatchObject({
          status: 'retrying',
          outcomeUnknown: true,
          lastError: { code: 'slack_retryable', slackError: 'ratelimited' },
        });
        // Once Slack answers the look, the post found there is recorded, not made again.
        slack.lookupFails.clear();
        slack.foundIn.set('C0123', '1700000000.000001');
        expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
        expect(slack.posts).toHaveLength(1);
        expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: 'C0123' });
      },
    );

    it('a channel that cannot be searched for good (channel_not_found) is passed over: the next place is looked in, then posted in', async () => {
      const { store, slack, deps } = await unknownOutcome();
      edit(store, { slack: { channelId: 'C0999' } });
      slack.lookupFails.set('C0123', classifySlackErrorCode('channel_not_found'));
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
      expect(slack.lookups.map((l) => l.channel)).toEqual(['C0123', 'C0999']);
      expect(slack.posts.map((p) => p.channel)).toEqual(['C0123', 'C0999']);
      expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: 'C0999', outcomeUnknown: false });
    });

    it.each(['not_in_channel', 'missing_scope'])(
      'where it would post cannot be read (%s): not posted again, recorded failed as unverifiable, not counted towards pausing',
      async (refusal) => {
        const { store, slack, deps } = await unknownOutcome();
        slack.lookupFails.set('C0123', classifySlackErrorCode(refusal));
        const { log: captured, lines } = capturedLog();
        const result = await handlePush(push(), { ...deps, log: captured });
        expect(result).toMatchObject({ kind: 'ack', reason: 'slack_outcome_unverifiable', status: 'failed' });
        // The one post is the first attempt's, whose outcome is unknown: each retry would post again.
        expect(slack.posts).toHaveLength(1);
        expect(await store.get(id)).toMatchObject({
          status: 'failed',
          lastError: {
            code: 'slack_outcome_unverifiable',
            slackError: refusal,
            message: `an earlier attempt's post may have landed in C0123, and the channel cannot be read to check (${refusal}): not posted again, so as not to post twice; look in the channel, and once the app may read its history, redrive --failed sends it if it is not there`,
          },
        });
        expect(store.notification('n-1')).toMatchObject({ enabled: true, consecutiveFailures: 0 });
        expect(lines.some((l) => l.message === 'could not check the channel for an earlier post; going on')).toBe(
          false,
        );
      },
    );

    it('an attempt that died mid-post (its claim expired, nothing recorded), then a channel change', async () => {
      const { store, slack, deps, advance } = setup();
      // The first attempt's claim, as its create() left it, and then no word from it.
      expect(await died(store)).toMatchObject({ kind: 'claimed', earlierTargets: [] });
      advance(61_000);
      edit(store, { slack: { channelId: 'C0999' } });
      slack.foundIn.set('C0123', '1700000000.777777');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
      expect(slack.posts).toHaveLength(0);
      expect(await store.get(id)).toMatchObject({
        status: 'sent',
        channelId: 'C0123',
        slackTs: '1700000000.777777',
        postTargets: [
          { channelId: 'C0123', teamId: null, accountId: 'acct-1' },
          { channelId: 'C0999', teamId: null, accountId: 'acct-1' },
        ],
      });
    });
  });

  describe('an attempt that died mid-post (its claim expired, nothing recorded)', () => {
    it('and the look of the attempt after it rate limited: the next attempt still looks, and posts nothing', async () => {
      const { store, slack, deps, advance } = setup();
      await died(store);
      advance(61_000);
      slack.foundIn.set('C0123', '1700000000.777777');
      slack.lookupFails.set('C0123', classifySlackHttpStatus(429, 30));
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', status: 'retrying' });
      expect(await store.get(id)).toMatchObject({ status: 'retrying', outcomeUnknown: true });
      advance(31_000);
      slack.lookupFails.clear();
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
      expect(slack.lookups).toHaveLength(2);
      expect(slack.posts).toHaveLength(0);
      expect(await store.get(id)).toMatchObject({ status: 'sent', slackTs: '1700000000.777777' });
    });

    it('and the takeover retried with its token (its answer lost): still looks', async () => {
      const { store, slack, deps, advance } = setup();
      await died(store);
      advance(61_000);
      const answers = claimRetriedWithItsToken(store, deps);
      slack.foundIn.set('C0123', '1700000000.777777');
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
      expect(answers).toEqual([expect.objectContaining({ kind: 'claimed', attempts: 2, outcomeUnknown: true })]);
      expect(slack.lookups).toHaveLength(1);
      expect(slack.posts).toHaveLength(0);
    });
  });

  it('after an outcome-unknown attempt that did not post, posts once', async () => {
    const { store, slack, deps } = setup();
    slack.script = [classifySlackErrorCode('internal_error')];
    await handlePush(push(), deps);
    slack.found = null;
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.lookups).toHaveLength(1);
    expect(slack.posts).toHaveLength(2);
    expect((await store.get(id))?.slackTs).toBe('1700000000.000002');
  });

  it.each<[string, number, boolean]>([
    ['5 s of its 60 s claim left, less than the 10 s a post may take: starts no post', 55_000, false],
    // A post that times out may still land for as long again: were this attempt killed before it
    // writes its hold, another could take the claim over in that time, find nothing and post.
    [
      '15 s of its 60 s claim left, less than the 10 s a post may take and 10 s it may still land in: starts no post',
      45_000,
      false,
    ],
    ['25 s of its 60 s claim left, more than a post’s 10 s and 10 s it may still land in: posts', 35_000, true],
  ])('an attempt that stalled between its claim and its post, %s', async (_what, stalledMs, posts) => {
    const { store, slack, deps, advance } = setup();
    deps.slackTimeoutMs = 10_000;
    // The claim is taken at t0 for 60 s; the attempt then stalls before it would post.
    deps.ledger = Object.assign(Object.create(store) as MemoryStore, {
      claim: async (req: Parameters<MemoryStore['claim']>[0]) => {
        const claim = await store.claim(req);
        advance(stalledMs);
        return claim;
      },
    });
    const result = await handlePush(push(), deps);
    if (posts) {
      expect(result).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
      expect(slack.posts).toHaveLength(1);
      return;
    }
    // Another attempt could take the claim over while this post is still in flight, and post too.
    expect(result).toMatchObject({ kind: 'retry', reason: 'dependency_unavailable', status: 'retrying' });
    expect(slack.posts).toHaveLength(0);
    expect(await store.get(id)).toMatchObject({
      status: 'retrying',
      outcomeUnknown: false,
      claimExpiresAt: null,
      lastError: { code: 'dependency_unavailable', retryable: true },
    });
  });

  it('a claim whose write landed but whose answer was lost, retried with the same token, still looks for the earlier post', async () => {
    const { store, slack, deps } = setup();
    slack.script = [classifySlackErrorCode('internal_error')];
    await handlePush(push(), deps);
    expect(await store.get(id)).toMatchObject({ status: 'retrying', outcomeUnknown: true });
    // The next attempt's claim takes the record, its answer is lost, and the store tries again with
    // the same token (a retried transaction): the record is then already this attempt's own.
    const answers = claimRetriedWithItsToken(store, deps);
    slack.foundIn.set('C0123', '1700000000.000001');
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent', status: 'sent' });
    expect(answers).toEqual([expect.objectContaining({ kind: 'claimed', attempts: 2, outcomeUnknown: true })]);
    expect(slack.lookups).toHaveLength(1);
    expect(slack.posts).toHaveLength(1);
    expect(await store.get(id)).toMatchObject({ status: 'sent', slackTs: '1700000000.000001' });
  });

  describe.each([
    ['as its own clock says', false],
    // The attempt's clock stands still: only the deadline's own mark says it was answered, as
    // when its timer fires before the attempt's clock shows the time up, under load.
    ['even when its own clock says time is left', true],
  ])('a push whose claim hangs past its deadline (%s)', (_how, frozen) => {
    it('is answered retry by its deadline, naming the delivery, and never posts after', async () => {
      const { store, slack, deps } = setup();
      let release: () => void = () => undefined;
      jest.spyOn(store, 'claim').mockImplementation(
        (req) =>
          new Promise((resolve) => {
            release = () => resolve(MemoryStore.prototype.claim.call(store, req));
          }),
      );
      const now = frozen ? jest.spyOn(Date, 'now').mockReturnValue(Date.now()) : null;
      try {
        const result = await handlePush(push(), { ...deps, deadlineMs: 50 });
        expect(result).toEqual({ kind: 'retry', reason: 'deadline_exceeded', deliveryId: id });
        release();
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        now?.mockRestore();
      }
      // The attempt went on after its answer, found it answered, and did not post.
      expect(slack.posts).toHaveLength(0);
    });
  });

  it('acks an invalid push and records it against the delivery the envelope names', async () => {
    const { store, slack, deps } = setup();
    const body = push();
    body.message.data = Buffer.from(JSON.stringify({ notificationId: 'n-1' })).toString('base64');
    const result = await handlePush(body, deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'invalid_message', deliveryId: id });
    expect((await store.get(id))?.lastError?.code).toBe('invalid_message');
    expect(slack.posts).toHaveLength(0);
  });

  it('answers retry to a dispatch message pushed without its envelope, recording and posting nothing, so that it dead-letters for a redrive', async () => {
    const { log, lines } = capturedLog();
    const { store, slack, deps } = setup();
    deps.log = log;
    const body = push();
    const bare = JSON.parse(Buffer.from(body.message.data, 'base64').toString('utf8'));
    const result = await handlePush(bare, deps);
    expect(result).toEqual({ kind: 'retry', reason: 'unwrapped_message', deliveryId: id });
    expect(await store.get(id)).toBeNull();
    expect(slack.posts).toHaveLength(0);
    expect(lines.find((l) => l.reason === 'unwrapped_message')).toMatchObject({
      severity: 'ERROR',
      deliveryId: id,
      message: expect.stringContaining('"no wrapper"'),
    });
    // The same message wrapped, once the subscription is mended, posts.
    expect(await handlePush(body, deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('records a dispatch message dead-lettered without its envelope dead, a retrying delivery included, naming the subscription setting', async () => {
    const { log, lines } = capturedLog();
    const { store, slack, deps } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    expect((await store.get(id))?.status).toBe('retrying');
    const tried = slack.posts.length;
    deps.log = log;
    const bare = JSON.parse(Buffer.from(push().message.data, 'base64').toString('utf8'));
    expect(await handleDeadLetter(bare, deps)).toEqual({ deliveryId: id, status: 'dead' });
    expect(await store.get(id)).toMatchObject({ status: 'dead', runId: runIdOf(SCHEDULE_ID, occurrence) });
    expect(lines.find((l) => l.reason === 'unwrapped_message')).toMatchObject({
      severity: 'ERROR',
      deliveryId: id,
      message: expect.stringContaining('"no wrapper"'),
    });
    expect(slack.posts).toHaveLength(tried);
  });

  it("leaves a redriven delivery to its redriven message when the dispatcher's own message is dead-lettered again without its envelope", async () => {
    const { store, slack, deps } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    const bare = JSON.parse(Buffer.from(push().message.data, 'base64').toString('utf8'));
    expect(await handleDeadLetter(bare, deps)).toEqual({ deliveryId: id, status: 'dead' });
    // Redriven: the delivery is carried by the redriven message now.
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying', lastRedriveAt: new Date() });
    // Pub/Sub delivers the old dead letter again: it has no publish time, but it is not a redrive's.
    expect(await handleDeadLetter(bare, deps)).toEqual({ deliveryId: id, status: 'superseded' });
    expect((await store.get(id))?.status).toBe('retrying');
    // The redriven message's own dead letter does end it, as does a redrive's that names none.
    const redriven = { ...bare, redrive: true, redriveId: 'redrive-a' };
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), redriveId: 'redrive-a' });
    expect(await handleDeadLetter(redriven, deps)).toEqual({ deliveryId: id, status: 'dead' });
    // Redriven again: a repeat of the first redrive's dead letter leaves it to the second.
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying', redriveId: 'redrive-b' });
    expect(await handleDeadLetter(redriven, deps)).toEqual({ deliveryId: id, status: 'superseded' });
    expect((await store.get(id))?.status).toBe('retrying');
    expect(await handleDeadLetter({ ...bare, redrive: true }, deps)).toEqual({ deliveryId: id, status: 'dead' });
  });

  it('refuses a dispatch message dead-lettered without its envelope for a run never dispatched, as a wrapped one', async () => {
    const { store, slack, deps } = setup();
    const bare = JSON.parse(Buffer.from(push().message.data, 'base64').toString('utf8'));
    expect(await handleDeadLetter(bare, deps)).toEqual({ deliveryId: id, status: 'refused', reason: 'no_such_run' });
    expect(await store.get(id)).toMatchObject({ status: 'failed', lastError: { code: 'invalid_message' } });
    expect(slack.posts).toHaveLength(0);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'hello'],
    ['an empty object', {}],
  ])('acks a body that is not an envelope (%s)', async (_what, body) => {
    const { store, deps } = setup();
    expect(await handlePush(body, deps)).toMatchObject({ kind: 'ack', reason: 'invalid_message', deliveryId: null });
    expect(store.deliveryDocs.size).toBe(0);
  });

  it('retries when the ledger is unreachable, without posting', async () => {
    const { store, slack, deps } = setup();
    jest.spyOn(store, 'claim').mockRejectedValue(new Error('14 UNAVAILABLE'));
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', reason: 'dependency_unavailable' });
    expect(slack.posts).toHaveLength(0);
  });

  it('a post Slack took but the ledger could not record is looked for, not posted again', async () => {
    const { store, slack, deps, advance } = setup();
    // Firestore refuses the `sent` record once (RESOURCE_EXHAUSTED is not retried by the client).
    jest.spyOn(store, 'markSent').mockRejectedValueOnce(new Error('8 RESOURCE_EXHAUSTED'));
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', status: 'retrying' });
    expect(slack.posts).toHaveLength(1);
    expect(await store.get(id)).toMatchObject({ status: 'retrying', outcomeUnknown: true });

    advance(30_000);
    slack.found = '1700000000.000001';
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect(slack.lookups).toHaveLength(1);
    expect(await store.get(id)).toMatchObject({ status: 'sent', slackTs: '1700000000.000001' });
  });

  it('counts a permanent failure towards pausing once per occurrence: the same occurrence failing again is not counted', async () => {
    const { store, slack, deps } = setup();
    deps.pauseAfterFailures = 2;
    slack.script = [classifySlackErrorCode('channel_not_found'), classifySlackErrorCode('channel_not_found')];
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
    expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 1, enabled: true });
    // The same occurrence again, as after a redrive of the delivery: it fails the same way.
    const id = deliveryIdOf('n-1', occurrence);
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying' });
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
    expect(slack.posts).toHaveLength(2);
    // Still one occurrence in a row: not paused.
    expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 1, enabled: true });
    // The next occurrence failing is the second in a row: paused.
    expect(await store.recordPermanentFailure('n-1', 'channel_not_found', 2, t0, '2026-12-08T08:00:00.000Z')).toBe(
      true,
    );
    expect(store.notification('n-1')).toMatchObject({
      consecutiveFailures: 2,
      enabled: false,
      pausedReason: 'channel_not_found',
    });
  });

  it.each<[string, 'recordPermanentFailure' | 'markFinal']>([
    ['the failure count', 'recordPermanentFailure'],
    ['the failed record', 'markFinal'],
  ])(
    'a permanent failure when %s cannot be written is retried, and then counted once and recorded',
    async (_what, refused) => {
      const { store, slack, deps, advance } = setup();
      slack.script = [classifySlackErrorCode('channel_not_found'), classifySlackErrorCode('channel_not_found')];
      jest.spyOn(store, refused).mockRejectedValueOnce(new Error('14 UNAVAILABLE'));
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', reason: 'record_failed' });
      advance(61_000);
      expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
      expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 1, lastFailure: 'channel_not_found' });
      expect(await store.get(id)).toMatchObject({ status: 'failed', lastError: { slackError: 'channel_not_found' } });
    },
  );

  it('a permanent failure that pauses the notification, whose failed record cannot be written, is recorded failed on the retry, not skipped', async () => {
    const { store, slack, deps, advance } = setup();
    // Two failures in a row before: this one is the third, and pauses it.
    await store.recordPermanentFailure('n-1', 'channel_not_found', 3, t0, '2026-12-05T08:00:00.000Z');
    await store.recordPermanentFailure('n-1', 'channel_not_found', 3, t0, '2026-12-06T08:00:00.000Z');
    slack.script = [classifySlackErrorCode('channel_not_found')];
    jest.spyOn(store, 'markFinal').mockRejectedValueOnce(new Error('14 UNAVAILABLE'));
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', reason: 'record_failed' });
    expect(store.notification('n-1')).toMatchObject({ enabled: false, pausedReason: 'channel_not_found' });
    advance(61_000);
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'failed' });
    // The first attempt's post, refused; none on the retry.
    expect(slack.posts).toHaveLength(1);
    expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 3 });
    expect(await store.get(id)).toMatchObject({
      status: 'failed',
      lastError: { code: 'paused_by_this_failure', message: expect.stringContaining('channel_not_found') },
    });
    // Another occurrence's delivery while it is paused is skipped, as before.
    const next = '2026-12-06T08:00:00.000Z';
    expect(await handlePush(push('n-1', next), deps)).toMatchObject({ kind: 'ack', status: 'skipped' });
  });

  it('a failure count that cannot be reset after a post leaves the delivery sent', async () => {
    const { store, slack, deps } = setup();
    await store.recordPermanentFailure('n-1', 'channel_not_found', 3, t0);
    jest.spyOn(store, 'resetFailures').mockRejectedValueOnce(new Error('14 UNAVAILABLE'));
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(id))?.status).toBe('sent');
  });

  it('skips, without posting, an occurrence of a schedule the notification has left', async () => {
    const { store, slack, deps } = setup();
    // 07:30 UTC: the old schedule's time, not the notification's (09:00 in Paris).
    const at = '2026-12-07T07:30:00.000Z';
    const old = scheduleIdOf({ cron: '30 7 * * *', timezone: 'UTC' });
    const result = await handlePush(push('n-1', at, { scheduleId: old }), deps);
    expect(result).toMatchObject({ kind: 'ack', reason: 'notification_rescheduled', status: 'skipped' });
    expect(slack.posts).toHaveLength(0);
    expect(await store.get(deliveryIdOf('n-1', at))).toMatchObject({
      status: 'skipped',
      lastError: { code: 'notification_rescheduled' },
    });
  });

  it('sends an occurrence from a schedule the notification has left when its own schedule falls due then too', async () => {
    const { store, slack, deps } = setup();
    // 08:00 UTC is 09:00 in Paris: the notification wants this instant whichever schedule's
    // message brings it (a stale index entry, or a message in flight at the move).
    const old = scheduleIdOf({ cron: '0 8 * * *', timezone: 'UTC' });
    expect(await handlePush(push('n-1', occurrence, { scheduleId: old }), deps)).toMatchObject({
      kind: 'ack',
      reason: 'sent',
      status: 'sent',
    });
    // The new schedule's message is the same delivery: acked, not posted again.
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'already_sent' });
    expect(slack.posts).toHaveLength(1);
    expect(await store.get(id)).toMatchObject({ status: 'sent' });
  });

  it('still sends an occurrence after an earlier skip, once the notification is on a schedule that falls due then', async () => {
    const { store, slack, deps } = setup();
    const at = '2026-12-07T07:30:00.000Z';
    const old = scheduleIdOf({ cron: '30 7 * * *', timezone: 'UTC' });
    expect(await handlePush(push('n-1', at, { scheduleId: old }), deps)).toMatchObject({
      reason: 'notification_rescheduled',
    });
    // Moved again, to a schedule that falls due at 07:30 UTC: its message claims the delivery.
    const moved = notificationDoc({
      id: 'n-1',
      accountId: 'acct-1',
      channelId: 'C0123',
      cron: '30 8 * * *',
      timezone: 'Europe/Paris',
    });
    store.putNotification('n-1', moved);
    expect(await handlePush(push('n-1', at, { scheduleId: moved.scheduleId }), deps)).toMatchObject({
      kind: 'ack',
      reason: 'sent',
    });
    // And the old schedule's message again (a redelivery) now finds it sent.
    expect(await handlePush(push('n-1', at, { scheduleId: old }), deps)).toMatchObject({ reason: 'already_sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('fails, without posting, a notification whose schedule cannot be read when it has left the message’s', async () => {
    const { store, slack, deps } = setup();
    store.putNotification('n-1', {
      ...notificationDoc({
        id: 'n-1',
        accountId: 'acct-1',
        channelId: 'C0123',
        cron: '0 9 * * MON-FRI',
        timezone: 'Europe/Paris',
      }),
      schedule: { cron: '61 9 * * *', timezone: 'Europe/Paris' },
      scheduleId: 's_other',
    });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack', status: 'failed' });
    expect(slack.posts).toHaveLength(0);
    expect((await store.get(id))?.lastError).toMatchObject({ code: 'invalid_notification' });
    expect((await store.get(id))?.lastError?.message).toMatch(/invalid cron "61 9 \* \* \*"/);
  });

  it('keeps a gateway page out of the ledger: the stored error is capped', async () => {
    const { store, slack, deps } = setup();
    slack.script = [
      new RetryableError('slack_outcome_unknown', `bad answer ${'x'.repeat(5000)}`, { slackError: 'y'.repeat(500) }),
    ];
    await handlePush(push(), deps);
    const err = (await store.get(id))?.lastError;
    expect(err?.message.length).toBeLessThan(1100);
    expect(err?.slackError?.length).toBeLessThan(200);
  });

  it('retries when the outcome cannot be recorded', async () => {
    const { store, slack, deps } = setup();
    slack.script = [new PermanentError('slack_permanent_payload', 'too long', { slackError: 'msg_too_long' })];
    jest.spyOn(store, 'markFinal').mockRejectedValue(new Error('14 UNAVAILABLE'));
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'retry', reason: 'record_failed' });
  });
});

describe('a push too broken to deliver', () => {
  /** A push whose data is not a dispatch message, naming a delivery in its attributes. */
  function broken(deliveryId: string, runId: string) {
    const body = push();
    body.message.data = Buffer.from('{"v":2}').toString('base64');
    body.message.attributes = { deliveryId, runId };
    return body;
  }

  it('is recorded failed under the delivery it names, in the run it names, when that has no record', async () => {
    const { store, deps } = setup();
    const runId = runIdOf(SCHEDULE_ID, occurrence);
    expect(await handlePush(broken(id, runId), deps)).toMatchObject({ kind: 'ack', reason: 'invalid_message' });
    expect(await store.get(id)).toMatchObject({ status: 'failed', runId, lastError: { code: 'invalid_message' } });
    expect((await store.countByStatus(runId)).failed).toBe(1);
  });

  it('never ends a delivery a good message is carrying', async () => {
    const { store, slack, deps } = setup();
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    expect((await store.get(id))?.status).toBe('retrying');
    await handlePush(broken(id, runIdOf(SCHEDULE_ID, occurrence)), deps);
    expect((await store.get(id))?.status).toBe('retrying');
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(2);
  });

  it('sent before the good message arrives, does not stop it', async () => {
    const { store, slack, deps } = setup();
    await handlePush(broken(id, runIdOf(SCHEDULE_ID, occurrence)), deps);
    // The broken message got there first and left a record; the good one must still post.
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(id))?.status).toBe('sent');
  });
});

describe('a message for an instant its schedule does not fall due at', () => {
  it.each([
    ['half a minute past an occurrence', '2026-12-07T08:00:30.000Z'],
    ['a millisecond past it', '2026-12-07T08:00:00.001Z'],
    ['a whole minute the cron does not name', '2026-12-07T08:01:00.000Z'],
    ['a Saturday, for a MON-FRI cron', '2026-12-05T08:00:00.000Z'],
  ])('(%s) is skipped, posts nothing, and does not count towards pausing', async (_, occ) => {
    const { store, slack, deps } = setup();
    expect(await handlePush(push('n-1', occ), deps)).toMatchObject({ kind: 'ack', reason: 'not_an_occurrence' });
    expect(slack.posts).toHaveLength(0);
    expect(await store.get(deliveryIdOf('n-1', occ))).toMatchObject({
      status: 'skipped',
      lastError: {
        code: 'not_an_occurrence',
        message: expect.stringContaining(`${occ} is not an occurrence of schedule`),
      },
    });
    expect(store.notification('n-1')?.consecutiveFailures ?? 0).toBe(0);
    // The schedule's own occurrence still posts.
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', status: 'sent' });
    expect(slack.posts).toHaveLength(1);
  });
});

describe('a notification whose cron was changed by hand, its scheduleId left as it was', () => {
  it("fails the old schedule's instants as invalid, naming both schedules and how to mend it, and counts them towards pausing", async () => {
    const { store, slack, deps } = setup();
    const n = store.notification('n-1') as Record<string, unknown>;
    // 10:00 in Paris on weekdays, where the document still names the 09:00 schedule.
    store.putNotification('n-1', { ...n, schedule: { cron: '0 10 * * MON-FRI', timezone: 'Europe/Paris' } });
    const result = await handlePush(push(), deps);
    expect(result).toMatchObject({ kind: 'ack', status: 'failed' });
    expect(slack.posts).toHaveLength(0);
    const own = scheduleIdOf({ cron: '0 10 * * MON-FRI', timezone: 'Europe/Paris' });
    expect(await store.get(id)).toMatchObject({
      status: 'failed',
      lastError: {
        code: 'invalid_notification',
        message: expect.stringContaining(`its scheduleId "${n.scheduleId}" is not its schedule's ("${own}"`),
      },
    });
    expect(store.notification('n-1')).toMatchObject({ consecutiveFailures: 1, lastFailure: 'notification_invalid' });
  });
});

describe('a message for an instant its schedule does not fall due at, then a move to a schedule that does', () => {
  it('does not end the delivery: the new schedule’s message for that instant still posts', async () => {
    const { store, slack, deps } = setup();
    const occ = '2026-12-07T07:00:00.000Z';
    // 08:00 in Paris: not an occurrence of '0 9 * * MON-FRI'.
    expect(await handlePush(push('n-1', occ), deps)).toMatchObject({ reason: 'not_an_occurrence' });
    // The notification moves to 08:00 on weekdays, whose occurrence that instant is.
    const moved = { cron: '0 8 * * MON-FRI', timezone: 'Europe/Paris' };
    const movedId = scheduleIdOf(moved);
    const n = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...n, schedule: moved, scheduleId: movedId });
    expect(await handlePush(push('n-1', occ, { scheduleId: movedId }), deps)).toMatchObject({
      kind: 'ack',
      status: 'sent',
    });
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(deliveryIdOf('n-1', occ)))?.status).toBe('sent');
  });
});

/** The run a dispatch of `occ` makes before it publishes, as the dispatcher makes it. */
async function dispatched(
  store: MemoryStore,
  occ = occurrence,
  schedule = { cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' },
): Promise<string> {
  const scheduleId = scheduleIdOf(schedule);
  store.putSchedule(scheduleId, { ...schedule, nextRunAt: new Date(occ) });
  const claim = await store.claimRun(scheduleId, occ, 'dispatcher-test', 60_000, new Date(occ), null);
  expect(claim.kind).toBe('acquired');
  return scheduleId;
}

describe('handleDeadLetter', () => {
  it('marks a retrying delivery dead with its attempt count', async () => {
    const { store, slack, deps } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    const body = push();
    (body.message.attributes as Record<string, string>).CloudPubSubDeadLetterSourceDeliveryCount = '10';
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'dead' });
    expect(await store.get(id)).toMatchObject({ status: 'dead', deadLetterAttempts: 10 });
  });

  it('logs the death with the ids that follow the delivery, as /push does', async () => {
    const { store, slack, deps } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    const { log, lines } = capturedLog();
    deps.log = log;
    const body = push();
    (body.message.attributes as Record<string, string>).CloudPubSubDeadLetterSourceDeliveryCount = '10';
    await handleDeadLetter(body, deps);
    // A count Pub/Sub writes is no cause for a warning.
    expect(lines.filter((l) => l.deliveryCount !== undefined)).toEqual([]);
    expect(lines.find((l) => l.message === 'delivery dead-lettered')).toMatchObject({
      severity: 'ERROR',
      deliveryId: id,
      notificationId: 'n-1',
      runId: runIdOf(SCHEDULE_ID, occurrence),
      messageId: body.message.messageId,
      attempts: 10,
    });
  });

  it.each(['1.5', '-3', '0', 'ten', '1e400'])(
    'reads a delivery count Pub/Sub never writes (%j) as none',
    async (count) => {
      const { store, slack, deps } = setup();
      await dispatched(store);
      slack.script = [classifySlackErrorCode('service_unavailable')];
      await handlePush(push(), deps);
      const body = push();
      (body.message.attributes as Record<string, string>).CloudPubSubDeadLetterSourceDeliveryCount = count;
      const { log, lines } = capturedLog();
      expect(await handleDeadLetter(body, { ...deps, log })).toEqual({ deliveryId: id, status: 'dead' });
      expect(store.deliveryDocs.get(id)?.deadLetterAttempts ?? null).toBeNull();
      // Said, with the value as sent, on a line with the delivery's id.
      expect(lines.find((l) => l.deliveryCount !== undefined)).toMatchObject({
        severity: 'WARNING',
        deliveryId: id,
        deliveryCount: count,
        message: expect.stringContaining('is not a count of attempts'),
      });
    },
  );

  it('leaves a redriven delivery to its redriven message when the dead letter is of the message before the redrive', async () => {
    const { store, slack, deps, advance } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    const deadLetter = (sourcePublishedAt?: string) => {
      const body = push();
      const attrs = body.message.attributes as Record<string, string>;
      attrs.CloudPubSubDeadLetterSourceDeliveryCount = '10';
      if (sourcePublishedAt) attrs.CloudPubSubDeadLetterSourceTopicPublishTime = sourcePublishedAt;
      return body;
    };
    // The first message dies; a redrive reopens the delivery ten minutes later.
    expect(await handleDeadLetter(deadLetter('2026-12-07T08:00:01.000Z'), deps)).toEqual({
      deliveryId: id,
      status: 'dead',
    });
    advance(600_000);
    const redriveAt = new Date(t0.getTime() + 600_000);
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying', lastRedriveAt: redriveAt });
    // Pub/Sub sends that dead letter again: the redriven message carries the delivery now.
    expect(await handleDeadLetter(deadLetter('2026-12-07T08:00:01.000Z'), deps)).toEqual({
      deliveryId: id,
      status: 'superseded',
    });
    expect((await store.get(id))?.status).toBe('retrying');
    // Within the clock allowance of the redrive, or with no source publish time: taken as the
    // redriven message's own dead letter.
    expect(await handleDeadLetter(deadLetter(new Date(redriveAt.getTime() - 30_000).toISOString()), deps)).toEqual({
      deliveryId: id,
      status: 'dead',
    });
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying' });
    expect(await handleDeadLetter(deadLetter(), deps)).toEqual({ deliveryId: id, status: 'dead' });
    store.deliveryDocs.set(id, { ...store.deliveryDocs.get(id), status: 'retrying' });
    expect(await handleDeadLetter(deadLetter('not a time'), deps)).toEqual({ deliveryId: id, status: 'dead' });
  });

  it('leaves a redriven delivery to its redriven message when the older message is dead-lettered again within a minute of the redrive', async () => {
    const { store, slack, deps, advance } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), deps);
    const deadLetter = (extra: Partial<DispatchMessage> = {}) => {
      const body = push('n-1', occurrence, extra);
      const attrs = body.message.attributes as Record<string, string>;
      attrs.CloudPubSubDeadLetterSourceDeliveryCount = '10';
      // Published 30 s before the redrive: inside the allowance for the clocks' disagreement.
      attrs.CloudPubSubDeadLetterSourceTopicPublishTime = new Date(t0.getTime() + 30_000).toISOString();
      return body;
    };
    expect(await handleDeadLetter(deadLetter(), deps)).toEqual({ deliveryId: id, status: 'dead' });
    advance(60_000);
    const redriven = (redriveId: string) => ({
      ...store.deliveryDocs.get(id),
      status: 'retrying' as const,
      lastRedriveAt: new Date(t0.getTime() + 60_000),
      redriveId,
    });
    store.deliveryDocs.set(id, redriven('redrive-a'));
    // The dispatcher's message, dead-lettered again: its message names no redrive.
    expect(await handleDeadLetter(deadLetter(), deps)).toEqual({ deliveryId: id, status: 'superseded' });
    expect(await store.get(id)).toMatchObject({ status: 'retrying', redriveId: 'redrive-a' });
    // An earlier redrive's message, the same.
    const earlier = deadLetter({ redrive: true, redriveId: 'redrive-0' });
    expect(await handleDeadLetter(earlier, deps)).toEqual({ deliveryId: id, status: 'superseded' });
    // The redriven message's own dead letter ends it.
    const own = deadLetter({ redrive: true, redriveId: 'redrive-a' });
    expect(await handleDeadLetter(own, deps)).toEqual({ deliveryId: id, status: 'dead' });
  });

  it('leaves a sent delivery sent', async () => {
    const { store, deps } = setup();
    await dispatched(store);
    await handlePush(push(), deps);
    const logged: { level: string; msg: string }[] = [];
    const spy = { ...deps, log: recordingLogger(logged) };
    expect(await handleDeadLetter(push(), spy)).toEqual({ deliveryId: id, status: 'sent' });
    expect((await store.get(id))?.status).toBe('sent');
    // Nothing went wrong with the delivery: no error is logged for it.
    expect(logged).toEqual([{ level: 'info', msg: 'dead letter of a delivery already sent: left as it is' }]);
  });

  /** A delivery whose one attempt Slack refused for now, and its dead letter after 10 attempts (not yet handled). */
  async function failedOnceWithDeadLetter() {
    const fixture = setup();
    await dispatched(fixture.store);
    fixture.slack.script = [classifySlackErrorCode('service_unavailable')];
    await handlePush(push(), fixture.deps);
    const body = push();
    const attrs = body.message.attributes as Record<string, string>;
    attrs.CloudPubSubDeadLetterSourceDeliveryCount = '10';
    return { ...fixture, body, attrs };
  }

  it('answers dead, leaving the record as it is, to a dead letter again of a delivery already dead whose run is gone since', async () => {
    const { store, deps, advance, body } = await failedOnceWithDeadLetter();
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'dead' });
    const dead = await store.get(id);
    expect(dead).toMatchObject({ status: 'dead', deadLetterAttempts: 10, runId: runIdOf(SCHEDULE_ID, occurrence) });
    // The run's record expires; Pub/Sub delivers the same dead letter again.
    store.runDocs.delete(runIdOf(SCHEDULE_ID, occurrence));
    advance(60_000);
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'dead' });
    expect(await store.get(id)).toEqual(dead);
  });

  it('leaves a redriven delivery being sent to its redriven message, answering superseded, when the dead letter is of the message before', async () => {
    const { store, deps, advance, body, attrs } = await failedOnceWithDeadLetter();
    attrs.CloudPubSubDeadLetterSourceTopicPublishTime = '2026-12-07T08:00:01.000Z';
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'dead' });
    // Redriven ten minutes later, and its redriven message's attempt is posting now.
    advance(600_000);
    const redriveAt = new Date(t0.getTime() + 600_000);
    store.deliveryDocs.set(id, {
      ...store.deliveryDocs.get(id),
      status: 'sending',
      claimedBy: 'the-redriven-attempt',
      claimExpiresAt: new Date(redriveAt.getTime() + 60_000),
      lastRedriveAt: redriveAt,
    });
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'superseded' });
    expect(await store.get(id)).toMatchObject({ status: 'sending', claimedBy: 'the-redriven-attempt' });
  });

  it('records dead a message none of whose attempts reached the notifier, whatever shape the envelope gives deliveryAttempt', async () => {
    const { store, deps } = setup();
    await dispatched(store);
    const body = { ...push(), deliveryAttempt: '1' };
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: id, status: 'dead' });
    expect(await store.get(id)).toMatchObject({ status: 'dead', attempts: 0, runId: runIdOf(SCHEDULE_ID, occurrence) });
  });

  it('records a message too broken to read as a broken push is, under the run its attributes name, never ending its delivery', async () => {
    const { store, deps } = setup();
    const deliveryId = deliveryIdOf('n-1', occurrence);
    const runId = runIdOf(SCHEDULE_ID, occurrence);
    const body = { message: { data: '!!!notbase64', attributes: { deliveryId, runId } } };
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId, status: 'invalid' });
    expect(await store.get(deliveryId)).toMatchObject({
      status: 'failed',
      attempts: 0,
      runId,
      lastError: { code: 'invalid_message' },
    });
    // The delivery's good message still posts: the record said nothing of it.
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect(await store.get(deliveryId)).toMatchObject({ status: 'sent' });
    // A run id that could not be a document is not recorded.
    const bad = { message: { data: '!!!', attributes: { deliveryId: 'broken2:x', runId: 'a/b' } } };
    await handleDeadLetter(bad, deps);
    expect((await store.get('broken2:x'))?.runId ?? null).toBeNull();
  });

  it('refuses, without ending the delivery, a message for an occurrence that has not fallen due yet', async () => {
    const { store, slack, deps, advance } = setup();
    const { log, lines } = capturedLog();
    deps.log = log;
    // Tomorrow's 09:00 in Paris: an occurrence of the schedule, but not due at t0.
    const later = '2026-12-08T08:00:00.000Z';
    const laterId = deliveryIdOf('n-1', later);
    const body = push('n-1', later);
    (body.message.attributes as Record<string, string>).CloudPubSubDeadLetterSourceDeliveryCount = '10';
    expect(await handleDeadLetter(body, deps)).toEqual({
      deliveryId: laterId,
      status: 'refused',
      reason: 'future_occurrence',
    });
    // Recorded as a broken message is: not dead, not ending the delivery.
    expect(await store.get(laterId)).toMatchObject({
      status: 'failed',
      attempts: 0,
      runId: runIdOf(SCHEDULE_ID, later),
      lastError: { code: 'invalid_message', message: expect.stringContaining(`${later} has not fallen due yet`) },
    });
    const warning = lines.find((l) => l.deliveryId === laterId && l.severity === 'WARNING');
    expect(warning).toMatchObject({ reason: 'future_occurrence' });
    expect(String(warning?.message)).toContain('refused');
    // When it falls due, its real message posts.
    advance(24 * 3_600_000);
    expect(await handlePush(push('n-1', later), deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect(await store.get(laterId)).toMatchObject({ status: 'sent' });
  });

  it('refuses a message for an occurrence already recorded, leaving the record as it is', async () => {
    const { store, deps } = setup();
    const later = '2026-12-08T08:00:00.000Z';
    const laterId = deliveryIdOf('n-1', later);
    // A record of that delivery another message left (an attempt in flight, say).
    const claim = await store.claim({
      deliveryId: laterId,
      notificationId: 'n-1',
      occurrence: later,
      runId: runIdOf(SCHEDULE_ID, later),
      owner: 'another-notifier',
      ttlMs: 60_000,
      now: t0,
      publishedAt: null,
    });
    expect(claim.kind).toBe('claimed');
    const before = await store.get(laterId);
    expect(await handleDeadLetter(push('n-1', later), deps)).toMatchObject({ status: 'refused' });
    expect(await store.get(laterId)).toEqual(before);
  });

  it('takes as due an occurrence less than the allowed clock skew ahead, and refuses one further ahead with no run', async () => {
    const skewed = (ms: number) => () => new Date(Date.parse(occurrence) - ms);
    const far = setup({ now: skewed(OCCURRENCE_CLOCK_SKEW_MS + 1000) });
    expect(await handleDeadLetter(push(), far.deps)).toMatchObject({ status: 'refused', reason: 'future_occurrence' });
    // Its run says it was dispatched: this clock is behind the dispatcher's, by more than the
    // pushes' retry window, and the message Pub/Sub gave up on is recorded dead, for a redrive.
    await dispatched(far.store);
    expect(await handleDeadLetter(push(), far.deps)).toEqual({ deliveryId: id, status: 'dead' });
    const near = setup({ now: skewed(OCCURRENCE_CLOCK_SKEW_MS - 1000) });
    await dispatched(near.store);
    expect(await handleDeadLetter(push(), near.deps)).toEqual({ deliveryId: id, status: 'dead' });
    expect((await near.store.get(id))?.status).toBe('dead');
  });

  it('refuses, without ending the delivery, a message of a run that was never dispatched', async () => {
    const { store, slack, deps } = setup();
    // 09:30 in Paris, past: not an occurrence of '0 9 * * MON-FRI', so no run of it exists.
    const at = '2026-12-07T07:30:00.000Z';
    const atId = deliveryIdOf('n-1', at);
    expect(await handleDeadLetter(push('n-1', at), deps)).toEqual({
      deliveryId: atId,
      status: 'refused',
      reason: 'no_such_run',
    });
    expect(await store.get(atId)).toMatchObject({
      status: 'failed',
      attempts: 0,
      lastError: {
        code: 'invalid_message',
        message: expect.stringContaining(`no run ${runIdOf(SCHEDULE_ID, at)} was dispatched`),
      },
    });
    // A made-up schedule, and a real occurrence not dispatched yet: refused alike.
    const madeUp = scheduleIdOf({ cron: '30 8 * * *', timezone: 'Europe/Paris' });
    expect(await handleDeadLetter(push('n-1', at, { scheduleId: madeUp }), deps)).toMatchObject({
      reason: 'no_such_run',
    });
    expect(await handleDeadLetter(push(), deps)).toMatchObject({ status: 'refused', reason: 'no_such_run' });
    // Moved to a schedule that falls due then: that schedule's message still posts.
    const moved = { cron: '30 8 * * MON-FRI', timezone: 'Europe/Paris' };
    const movedId = scheduleIdOf(moved);
    const n = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...n, schedule: moved, scheduleId: movedId });
    expect(await handlePush(push('n-1', at, { scheduleId: movedId }), deps)).toMatchObject({ status: 'sent' });
    // And so does the occurrence the last made-up message named.
    store.putNotification('n-1', n);
    expect(await handlePush(push(), deps)).toMatchObject({ status: 'sent' });
    expect(slack.posts).toHaveLength(2);
  });

  it('records dead, under its run, a message of a real run the notification is not part of, for a redrive', async () => {
    const { store, slack, deps } = setup();
    // A real run of another schedule, at 08:30 in Paris.
    const at = '2026-12-07T07:30:00.000Z';
    const other = await dispatched(store, at, { cron: '30 8 * * MON-FRI', timezone: 'Europe/Paris' });
    // The notification sits on a schedule that falls due then too (or moved there since).
    const own = { cron: '30 8 * * *', timezone: 'Europe/Paris' };
    const ownId = scheduleIdOf(own);
    const n = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...n, schedule: own, scheduleId: ownId });
    const atId = deliveryIdOf('n-1', at);
    expect(await handleDeadLetter(push('n-1', at, { scheduleId: other }), deps)).toMatchObject({ status: 'dead' });
    // Dead is dead for every message of the delivery, and is where a redrive of that run finds it.
    expect(await handlePush(push('n-1', at, { scheduleId: ownId }), deps)).toMatchObject({ reason: 'already_dead' });
    expect((await store.countByStatus(runIdOf(other, at))).dead).toBe(1);
    // A second dead letter, naming the notification's own run, leaves it under the first.
    await dispatched(store, at, own);
    expect(await handleDeadLetter(push('n-1', at, { scheduleId: ownId }), deps)).toMatchObject({ status: 'dead' });
    expect(await store.get(atId)).toMatchObject({ status: 'dead', runId: runIdOf(other, at) });
    // The redrive reopens it and publishes that run's message again: it posts, once.
    const dead = store.deliveryDocs.get(atId);
    store.deliveryDocs.set(atId, { ...dead, status: 'retrying', outcomeUnknown: false, redrivePending: true });
    expect(await handlePush(push('n-1', at, { scheduleId: other, redrive: true }), deps)).toMatchObject({
      status: 'sent',
    });
    expect(await handlePush(push('n-1', at, { scheduleId: ownId }), deps)).toMatchObject({ reason: 'already_sent' });
    expect(slack.posts).toHaveLength(1);
  });

  it('takes a message whose run id is not its schedule’s at its occurrence for a broken one', async () => {
    const { store, deps } = setup();
    await dispatched(store);
    // A real run's schedule and occurrence, recorded under a run no redrive would look in.
    expect(await handleDeadLetter(push('n-1', occurrence, { runId: 'junk' }), deps)).toMatchObject({
      status: 'invalid',
    });
    expect((await store.get(id))?.status).toBe('failed');
    expect(await handleDeadLetter(push(), deps)).toMatchObject({ status: 'dead' });
    expect(await store.get(id)).toMatchObject({ status: 'dead', runId: runIdOf(SCHEDULE_ID, occurrence) });
  });

  it('records dead the message of a notification that moved since, none of whose attempts left a record', async () => {
    const { store, slack, deps } = setup();
    // Both schedules ran at 09:00 in Paris; the notification was in the weekday one's run, and
    // moved to the daily one after both read their index.
    await dispatched(store);
    const daily = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
    const dailyId = await dispatched(store, occurrence, daily);
    const n = store.notification('n-1') as Record<string, unknown>;
    store.putNotification('n-1', { ...n, schedule: daily, scheduleId: dailyId });
    // Every attempt of the weekday run's message failed before its claim (an outage, say).
    expect(await handleDeadLetter(push(), deps)).toEqual({ deliveryId: id, status: 'dead' });
    // Under that run, where a redrive of it looks for it.
    expect(await store.get(id)).toMatchObject({ status: 'dead', runId: runIdOf(SCHEDULE_ID, occurrence) });
    expect(await handlePush(push(), deps)).toMatchObject({ reason: 'already_dead' });
    expect(slack.posts).toHaveLength(0);
  });

  it('records dead a message whose run is gone since an attempt claimed its delivery through it', async () => {
    const { store, slack, deps } = setup();
    await dispatched(store);
    slack.script = [classifySlackErrorCode('service_unavailable')];
    expect(await handlePush(push(), deps)).toMatchObject({ status: 'retrying' });
    // The run's record expired (its retention) while a redrive of it was under way.
    store.runDocs.delete(runIdOf(SCHEDULE_ID, occurrence));
    expect(await handleDeadLetter(push(), deps)).toEqual({ deliveryId: id, status: 'dead' });
    // So is one a redrive of that run reopened, though no attempt of it ever claimed it.
    const reopened = deliveryIdOf('n-3', occurrence);
    store.deliveryDocs.set(reopened, {
      notificationId: 'n-3',
      occurrence,
      runId: runIdOf(SCHEDULE_ID, occurrence),
      status: 'retrying',
      attempts: 0,
      redrivePending: false,
    });
    expect(await handleDeadLetter(push('n-3'), deps)).toEqual({ deliveryId: reopened, status: 'dead' });
    // Without either, a message of a run that does not exist is refused.
    const other = deliveryIdOf('n-2', occurrence);
    expect(await handleDeadLetter(push('n-2'), deps)).toMatchObject({ status: 'refused', reason: 'no_such_run' });
    expect((await store.get(other))?.status).toBe('failed');
  });

  it('acks, as a broken message, one whose schedule id Firestore would refuse as a document id', async () => {
    const { store, slack, deps } = setup();
    for (const scheduleId of ['__x__', '..', 'a/b']) {
      expect(await handleDeadLetter(push('n-1', occurrence, { scheduleId }), deps)).toMatchObject({
        status: 'invalid',
      });
    }
    // The delivery's real message still posts.
    expect(await handlePush(push(), deps)).toMatchObject({ kind: 'ack', reason: 'sent' });
    expect(slack.posts).toHaveLength(1);
    expect((await store.get(id))?.status).toBe('sent');
  });

  it('records dead a past message whose notification is gone', async () => {
    const { store, deps } = setup();
    await dispatched(store);
    expect(await handleDeadLetter(push('n-gone'), deps)).toMatchObject({ status: 'dead' });
    expect((await store.get(deliveryIdOf('n-gone', occurrence)))?.status).toBe('dead');
  });

  it('fails, for a retry, when the run or the delivery cannot be read', async () => {
    const { store, deps } = setup();
    await dispatched(store);
    const unavailable = async (): Promise<never> => {
      throw new Error('firestore unavailable');
    };
    const broken: Partial<DeliverDeps>[] = [
      { runs: { getRun: unavailable } },
      { ledger: Object.assign(Object.create(store) as MemoryStore, { get: unavailable }) },
    ];
    for (const part of broken) {
      const lines: string[] = [];
      const log = createLogger({
        service: 'deliver-test',
        level: 'info',
        destination: { write: (l: string) => lines.push(l) },
      });
      const failed = handleDeadLetter(push(), { ...deps, ...part, log });
      await expect(failed).rejects.toThrow('firestore unavailable');
      await expect(failed).rejects.toBeInstanceOf(DeadLetterNotRecorded);
      // Said once, with the delivery's ids, for the operator who must find the record.
      const said = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(said).toEqual([
        expect.objectContaining({
          message: 'could not record a dead-lettered message; retry later',
          deliveryId: id,
          notificationId: 'n-1',
          err: 'firestore unavailable',
        }),
      ]);
    }
    expect(await store.get(id)).toBeNull();
  });

  it('acks, unrecorded, a message whose delivery id cannot be a document id', async () => {
    const { deps } = setup();
    const body = { message: { data: 'e30=', attributes: { deliveryId: 'a/b' } } };
    expect(await handleDeadLetter(body, deps)).toEqual({ deliveryId: null, status: 'unrecorded' });
  });
});
