import { createLogger } from './logger';
import type { DispatchMessage } from './messages';
import type { DeliveryStatus } from './model';
import {
  addRunResult,
  emptyRunsResult,
  hasRedrivePending,
  markInterrupted,
  PAUSED_NAMED,
  type RedriveLedger,
  type RedriveResult,
  RUN_RECORD_GONE,
  redrivable,
  redriveRun,
  runSummary,
} from './redrive';

const log = createLogger({ service: 'redrive-test', level: 'silent' });
const occurrence = '2030-01-01T00:00:00.000Z';
const runId = `s_a:${occurrence}`;

/**
 * A ledger of dead deliveries in memory (and of failed ones, `failed`, some of notifications
 * `paused`), with hooks to make its calls fail.
 */
function fakeLedger(
  ids: string[],
  over: Partial<RedriveLedger> = {},
  more: { failed?: string[]; paused?: string[]; broken?: string[] } = {},
) {
  const status = new Map<string, DeliveryStatus>([
    ...ids.map((id): [string, DeliveryStatus] => [id, 'dead']),
    ...[...(more.failed ?? []), ...(more.broken ?? [])].map((id): [string, DeliveryStatus] => [id, 'failed']),
  ]);
  const from = new Map<string, DeliveryStatus>();
  const published: string[] = [];
  const ledger: RedriveLedger = {
    deliveryIdsOfRun: async (_runId, s, cursor, limit) =>
      [...status.entries()]
        .filter(([id, st]) => st === s && (!cursor || id > cursor))
        .map(([id]) => id)
        .sort()
        .slice(0, limit),
    redrivePendingOfRun: async () => ({ pending: [], scanned: null, done: true }),
    reopenDead: async (id) => {
      if (status.get(id) !== 'dead') return { kind: 'not_dead' };
      status.set(id, 'retrying');
      from.set(id, 'dead');
      return { kind: 'reopened', delivery: { notificationId: id.split(':')[0] as string, occurrence, runId } };
    },
    reopenFailed: async (id) => {
      if (status.get(id) !== 'failed') return { kind: 'not_dead' };
      if (more.broken?.includes(id)) return { kind: 'not_a_failure' };
      const notificationId = id.split(':')[0] as string;
      if (more.paused?.includes(notificationId)) return { kind: 'paused', notificationId };
      status.set(id, 'retrying');
      from.set(id, 'failed');
      return { kind: 'reopened', delivery: { notificationId, occurrence, runId } };
    },
    reopenStranded: async () => ({ kind: 'not_stranded' }),
    markPublished: async (deliveryIds) => {
      published.push(...deliveryIds);
    },
    restoreReopened: async (id) => {
      status.set(id, from.get(id) ?? 'dead');
    },
    ...over,
  };
  return { ledger, status, published };
}

const ids = ['n-1', 'n-2', 'n-3', 'n-4', 'n-5'].map((n) => `${n}:${occurrence}`);

function publisher() {
  const sent: DispatchMessage[] = [];
  return {
    sent,
    publishPage: async (page: { message: DispatchMessage }[]) => void sent.push(...page.map((p) => p.message)),
  };
}

describe('redriveRun', () => {
  it('still reports what it published when recording the publish fails (a later redrive takes them over)', async () => {
    const { ledger } = fakeLedger(ids, {
      markPublished: async () => {
        throw new Error('firestore unavailable');
      },
    });
    const pub = publisher();
    const result = await redriveRun(runId, { ledger, publisher: pub, log, pageSize: 2 });
    expect(result).toMatchObject({ redriven: 5, failed: 0 });
    expect(pub.sent).toHaveLength(5);
  });

  it('counts each delivery once: not again as waiting when recording its publish failed, or when another redrive reopened it', async () => {
    const pendingAll = async () => ({
      pending: ids.map((id) => ({ id, since: new Date() })),
      scanned: ids.at(-1) ?? null,
      done: true,
    });
    const lost = fakeLedger(ids, {
      markPublished: async () => {
        throw new Error('firestore unavailable');
      },
      redrivePendingOfRun: pendingAll,
    });
    expect(await redriveRun(runId, { ledger: lost.ledger, publisher: publisher(), log, pageSize: 2 })).toEqual({
      runId,
      redriven: 5,
      skipped: 0,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
    });
    // Another redrive reopened n-2 between this one's read and its reopen: skipped, not also waiting.
    const raced = fakeLedger(ids, { redrivePendingOfRun: async () => await pendingAll() });
    const reopen = raced.ledger.reopenDead;
    raced.ledger.reopenDead = async (id, now, redriveId) => {
      if (id === ids[1]) raced.status.set(id, 'retrying');
      return reopen(id, now, redriveId);
    };
    const result = await redriveRun(runId, { ledger: raced.ledger, publisher: publisher(), log, pageSize: 5 });
    expect(result).toMatchObject({ redriven: 4, skipped: 1, waiting: 0 });
  });

  it('counts a reopen that throws as failed and goes on with the rest', async () => {
    const base = fakeLedger(ids);
    const { ledger } = fakeLedger(ids, {
      reopenDead: async (id, now, redriveId) => {
        if (id.startsWith('n-2')) throw new Error('contention');
        return base.ledger.reopenDead(id, now, redriveId);
      },
    });
    const pub = publisher();
    const result = await redriveRun(runId, { ledger, publisher: pub, log });
    expect(result).toMatchObject({ redriven: 4, failed: 1 });
    expect(pub.sent.map((m) => m.notificationId)).not.toContain('n-2');
  });

  it('stops between pages once the service drains, saying it was interrupted', async () => {
    const { ledger, status } = fakeLedger(ids);
    let pages = 0;
    const progress: RedriveResult[] = [];
    const result = await redriveRun(runId, {
      ledger,
      publisher: publisher(),
      log,
      pageSize: 2,
      isDraining: () => pages >= 1,
      onProgress: (r) => {
        pages++;
        progress.push(r);
      },
    });
    expect(result).toMatchObject({ redriven: 2, interrupted: true });
    // What it had not reached is still dead, for a later redrive.
    expect([...status.values()].filter((s) => s === 'dead')).toHaveLength(3);
  });

  it('puts a page back when publishing fails, and counts it failed', async () => {
    const { ledger, status } = fakeLedger(ids);
    const result = await redriveRun(runId, {
      ledger,
      log,
      publisher: {
        publishPage: async () => {
          throw new Error('pubsub down');
        },
      },
    });
    expect(result).toMatchObject({ redriven: 0, failed: 5 });
    expect([...status.values()].every((s) => s === 'dead')).toBe(true);
  });

  it('stops at the first page Pub/Sub refuses: the pages after it are not reopened, and stay dead', async () => {
    const { ledger, status } = fakeLedger(ids);
    const reopenDead = jest.fn(ledger.reopenDead);
    let calls = 0;
    const result = await redriveRun(runId, {
      ledger: { ...ledger, reopenDead },
      log,
      pageSize: 2,
      publisher: {
        publishPage: async () => {
          if (++calls === 2) throw new Error('pubsub down');
        },
      },
    });
    expect(result).toMatchObject({ redriven: 2, failed: 2, stopped: 'Pub/Sub refused a page: pubsub down' });
    expect(calls).toBe(2);
    expect(reopenDead).toHaveBeenCalledTimes(4);
    expect([...status.values()].filter((s) => s === 'dead')).toHaveLength(3);
  });
});

describe('redriveRun of failed deliveries', () => {
  const failedIds = ['f-1', 'f-2', 'f-3'].map((n) => `${n}:${occurrence}`);

  it('leaves them failed unless asked', async () => {
    const { ledger, status } = fakeLedger(ids.slice(0, 2), {}, { failed: failedIds });
    const pub = publisher();
    const result = await redriveRun(runId, { ledger, publisher: pub, log });
    expect(result).toEqual({ runId, redriven: 2, skipped: 0, failed: 0, waiting: 0, waitingUntil: null });
    expect(pub.sent.map((m) => m.notificationId)).toEqual(['n-1', 'n-2']);
    expect(failedIds.map((id) => status.get(id))).toEqual(['failed', 'failed', 'failed']);
  });

  it('asked, publishes them after the dead ones, a page at a time, counts those of a paused notification apart, and a broken message’s record not at all', async () => {
    const { ledger, status } = fakeLedger(
      ids.slice(0, 2),
      {},
      { failed: failedIds, paused: ['f-2'], broken: [`b-1:${occurrence}`] },
    );
    const pub = publisher();
    const result = await redriveRun(runId, { ledger, publisher: pub, log, pageSize: 2, failed: true });
    expect(result).toEqual({
      runId,
      redriven: 4,
      skipped: 0,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
      paused: 1,
      pausedNotifications: ['f-2'],
      deleted: 0,
    });
    expect(pub.sent.map((m) => m.notificationId)).toEqual(['n-1', 'n-2', 'f-1', 'f-3']);
    expect(pub.sent.every((m) => m.redrive === true && m.runId === runId)).toBe(true);
    expect(failedIds.map((id) => status.get(id))).toEqual(['retrying', 'failed', 'retrying']);
  });

  it('puts back each failed delivery of a page that cannot be published', async () => {
    const base = fakeLedger([], {}, { failed: failedIds });
    const restoreReopened = jest.fn(base.ledger.restoreReopened);
    const result = await redriveRun(runId, {
      ledger: { ...base.ledger, restoreReopened },
      publisher: {
        publishPage: async () => {
          throw new Error('pubsub unavailable');
        },
      },
      log,
      failed: true,
    });
    expect(result).toMatchObject({ redriven: 0, failed: 3, paused: 0 });
    expect(result.stopped).toMatch(/pubsub unavailable/);
    // What each is put back to is the ledger's (test/ledger.test.ts: failed, not dead).
    expect(restoreReopened.mock.calls.map(([id]) => id)).toEqual(failedIds);
  });

  it('names at most PAUSED_NAMED paused notifications, each once, while counting every delivery', async () => {
    const many = Array.from({ length: PAUSED_NAMED + 5 }, (_, i) => `p-${String(i).padStart(3, '0')}`);
    // Two deliveries of the first notification: one run holds one per notification, but a
    // record of another run's message can share it.
    const deliveries = [...many.map((n) => `${n}:${occurrence}`), `p-000:${occurrence}:again`];
    const { ledger } = fakeLedger([], {}, { failed: deliveries, paused: many });
    const result = await redriveRun(runId, { ledger, publisher: publisher(), log, failed: true });
    expect(result.paused).toBe(PAUSED_NAMED + 6);
    expect(result.pausedNotifications).toEqual(many.slice(0, PAUSED_NAMED));
  });
});

describe('addRunResult', () => {
  const run = (runId: string, over: Partial<RedriveResult> = {}): RedriveResult => ({
    runId,
    redriven: 0,
    skipped: 0,
    failed: 0,
    waiting: 0,
    waitingUntil: null,
    ...over,
  });

  it('sums the runs, keeps the latest waitingUntil, and each run in order', () => {
    const total = emptyRunsResult(3, false);
    const a = run('a', { redriven: 2, skipped: 1, waiting: 1, waitingUntil: '2030-01-01T00:30:00.000Z' });
    const b = run('b', { redriven: 1, failed: 2, waiting: 2, waitingUntil: '2030-01-01T00:45:00.000Z' });
    const c = run('c', { waiting: 1, waitingUntil: '2030-01-01T00:10:00.000Z' });
    for (const r of [a, b, c]) addRunResult(total, r);
    expect(total).toEqual({
      listed: 3,
      redriven: 3,
      skipped: 1,
      failed: 2,
      waiting: 4,
      waitingUntil: '2030-01-01T00:45:00.000Z',
      runs: [a, b, c],
    });
  });

  it('with failed ones, sums paused and deleted, and names each paused notification once, at most PAUSED_NAMED', () => {
    const total = emptyRunsResult(2, true);
    const names = (from: number, n: number) => Array.from({ length: n }, (_, i) => `n-${from + i}`);
    addRunResult(total, run('a', { paused: 15, pausedNotifications: names(0, 15), deleted: 1, skipped: 1 }));
    addRunResult(total, run('b', { paused: 12, pausedNotifications: names(10, 12), deleted: 0 }));
    expect(total).toMatchObject({ paused: 27, deleted: 1, skipped: 1 });
    expect(total.pausedNotifications).toEqual(names(0, PAUSED_NAMED));
  });

  it('counts the runs after an interrupted or stopped one as not reached, and carries why', () => {
    const stopped = emptyRunsResult(4, false);
    addRunResult(stopped, run('a', { redriven: 1 }));
    expect(stopped.notReached).toBeUndefined();
    addRunResult(stopped, run('b', { stopped: 'Pub/Sub refused a page: boom', failed: 1 }));
    expect(stopped).toMatchObject({ stopped: 'Pub/Sub refused a page: boom', notReached: 2, failed: 1 });
    expect(stopped.interrupted).toBeUndefined();

    const interrupted = emptyRunsResult(3, false);
    addRunResult(interrupted, run('a', { redriven: 5, interrupted: true }));
    expect(interrupted).toMatchObject({ interrupted: true, notReached: 2, redriven: 5 });

    const between = emptyRunsResult(3, false);
    addRunResult(between, run('a', { redriven: 5 }));
    markInterrupted(between);
    expect(between).toMatchObject({ interrupted: true, notReached: 2 });
  });
});

describe('redrivable', () => {
  const none: Record<DeliveryStatus, number> = { sending: 0, retrying: 0, sent: 0, failed: 0, skipped: 0, dead: 0 };
  /** A ledger whose retrying deliveries are `ids`, those in `pending` reopened by a redrive and not yet published. */
  const pendingLedger = (ids: string[], pending: string[], asked: (string | null)[] = []) => ({
    redrivePendingOfRun: async (_runId: string, cursor: string | null, limit: number) => {
      asked.push(cursor);
      const page = ids.filter((id) => !cursor || id > cursor).slice(0, limit);
      return {
        pending: page.filter((id) => pending.includes(id)).map((id) => ({ id, since: new Date(0) })),
        scanned: page.at(-1) ?? null,
        done: page.length < limit,
      };
    },
  });
  it.each<[string, unknown, Partial<Record<DeliveryStatus, number>>, string[], boolean]>([
    ['a run that exists', { status: 'done' }, {}, [], true],
    ['a run expired since, with dead deliveries', null, { dead: 2, sent: 5 }, [], true],
    ['a run expired since, with deliveries a redrive reopened', null, { retrying: 1 }, ['d-1'], true],
    [
      'a run expired since, only retrying on their own (Pub/Sub redelivering)',
      null,
      { retrying: 1, sent: 3 },
      [],
      false,
    ],
    ['a run expired since, all its deliveries settled', null, { sent: 5, failed: 1 }, [], false],
    ['no run and no delivery', null, {}, [], false],
  ])('%s: %s', async (_what, run, counts, pending, expected) => {
    const reads = { getRun: async () => run, countByStatus: async () => ({ ...none, ...counts }) };
    const ids = Array.from({ length: counts.retrying ?? 0 }, (_, i) => `d-${i + 1}`);
    expect(await redrivable(runId, reads, pendingLedger(ids, pending))).toBe(expected);
  });

  it('counts a run expired since with failed deliveries only when failed ones are asked for', async () => {
    const reads = { getRun: async () => null, countByStatus: async () => ({ ...none, failed: 2, sent: 3 }) };
    expect(await redrivable(runId, reads, pendingLedger([], []))).toBe(false);
    expect(await redrivable(runId, reads, pendingLedger([], []), { failed: true })).toBe(true);
  });

  it('reads the retrying deliveries a page at a time until one a redrive reopened', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `d-${String(i).padStart(2, '0')}`);
    const asked: (string | null)[] = [];
    const reads = { getRun: async () => null, countByStatus: async () => ({ ...none, retrying: 12 }) };
    expect(await hasRedrivePending(runId, pendingLedger(ids, ['d-09'], asked), 5)).toBe(true);
    expect(asked).toEqual([null, 'd-04']);
    asked.length = 0;
    expect(await redrivable(runId, reads, pendingLedger(ids, [], asked))).toBe(false);
    expect(asked).toEqual([null]);
  });
});

describe('runSummary', () => {
  const none: Record<DeliveryStatus, number> = { sending: 0, retrying: 0, sent: 0, failed: 0, skipped: 0, dead: 0 };
  it('shows the record and the counts; once the record is gone, the counts with a note; nothing when neither', async () => {
    const counts = { ...none, sent: 3, dead: 1 };
    expect(
      await runSummary(runId, { getRun: async () => ({ status: 'done' }), countByStatus: async () => counts }),
    ).toEqual({ runId, run: { status: 'done' }, deliveries: counts });
    expect(await runSummary(runId, { getRun: async () => null, countByStatus: async () => counts })).toEqual({
      runId,
      run: null,
      deliveries: counts,
      note: RUN_RECORD_GONE,
    });
    expect(await runSummary(runId, { getRun: async () => null, countByStatus: async () => none })).toBeNull();
  });
});
