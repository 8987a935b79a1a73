import {
  newOccurrenceLines,
  occurrenceLine,
  PendingRunsLine,
  pendingRuns,
  RefusedTickLine,
  tickRefusal,
} from './tick-answer';

const at = new Date('2026-12-02T18:34:30.000Z');

describe('tickRefusal', () => {
  it('names the dependency the dispatcher found unavailable, and the ones that answered', () => {
    expect(
      tickRefusal(at, 503, { error: 'dependency_unavailable', checks: { firestore: 'ok', pubsub: 'unavailable' } }),
    ).toBe('tick 2026-12-02T18:34:30.000Z failed: HTTP 503 dependency_unavailable: Pub/Sub unavailable (Firestore ok)');
    expect(
      tickRefusal(at, 503, {
        error: 'dependency_unavailable',
        checks: { firestore: 'unavailable', pubsub: 'unavailable' },
      }),
    ).toBe(
      'tick 2026-12-02T18:34:30.000Z failed: HTTP 503 dependency_unavailable: Firestore unavailable, Pub/Sub unavailable',
    );
  });

  it('says a setup mistake the dispatcher names (a dispatch topic missing, or read by no subscription) in words', () => {
    expect(
      tickRefusal(at, 503, {
        error: 'dependency_unavailable',
        checks: { firestore: 'ok', pubsub: 'topic_has_no_subscription' },
      }),
    ).toBe(
      'tick 2026-12-02T18:34:30.000Z failed: HTTP 503 dependency_unavailable: Pub/Sub: the dispatch topic has no subscription, so no notifier would read what it publishes (Firestore ok)',
    );
    expect(
      tickRefusal(at, 503, { error: 'dependency_unavailable', checks: { firestore: 'ok', pubsub: 'topic_missing' } }),
    ).toBe(
      'tick 2026-12-02T18:34:30.000Z failed: HTTP 503 dependency_unavailable: Pub/Sub: the dispatch topic does not exist (Firestore ok)',
    );
  });

  it('says the error or message alone when the answer has no checks', () => {
    expect(tickRefusal(at, 503, { error: 'tick_failed' })).toBe(
      'tick 2026-12-02T18:34:30.000Z failed: HTTP 503 tick_failed',
    );
    expect(tickRefusal(at, 400, { error: 'bad_request', message: 'bad schedule time' })).toBe(
      'tick 2026-12-02T18:34:30.000Z failed: HTTP 400 bad schedule time',
    );
    expect(tickRefusal(at, 500, {})).toBe('tick 2026-12-02T18:34:30.000Z failed: HTTP 500');
  });
});

describe('occurrenceLine', () => {
  it('names a run, what it published, and nothing more when nothing was passed over', () => {
    expect(
      occurrenceLine({
        scheduleId: 's_1',
        runId: 's_1:2026-12-02T17:18:00.000Z',
        status: 'dispatched',
        published: 3,
        skipped: 0,
      }),
    ).toBe('  run s_1:2026-12-02T17:18:00.000Z: dispatched, 3 published');
  });

  it("says the occurrences passed over, as a tick every 90 s passes over an every-minute schedule's", () => {
    expect(
      occurrenceLine({
        scheduleId: 's_1',
        runId: 's_1:2026-12-02T17:18:00.000Z',
        status: 'dispatched',
        published: 1,
        skipped: 1,
      }),
    ).toBe(
      '  run s_1:2026-12-02T17:18:00.000Z: dispatched, 1 published, 1 occurrence passed over (only the latest due is sent)',
    );
  });

  it('names the schedule of an occurrence too old to send, and why', () => {
    expect(occurrenceLine({ scheduleId: 's_2', runId: null, status: 'skipped-missed', published: 0, skipped: 2 })).toBe(
      '  schedule s_2: skipped-missed, 0 published, 2 occurrences passed over (older than the catch-up window)',
    );
  });
});

describe('newOccurrenceLines', () => {
  const leased = { scheduleId: 's_1', runId: 's_1:2026-12-02T17:18:00.000Z', status: 'leased-elsewhere', published: 0 };
  const other = { scheduleId: 's_2', runId: 's_2:2026-12-02T17:18:00.000Z', status: 'leased-elsewhere', published: 0 };

  it("says a run's line once for a tick sent again, and a run whose answer changed again", () => {
    const said = new Set<string>();
    expect(newOccurrenceLines([leased, other], said)).toEqual([occurrenceLine(leased), occurrenceLine(other)]);
    // The tick sent again while the lease runs out: the same answers, nothing new to say.
    expect(newOccurrenceLines([leased, other], said)).toEqual([]);
    // The lease ran out: the run is dispatched, said; the other, unchanged, is not.
    const dispatched = { ...leased, status: 'dispatched', published: 40 };
    expect(newOccurrenceLines([dispatched, other], said)).toEqual([occurrenceLine(dispatched)]);
  });

  it('says every line for a tick of its own (a set of its own)', () => {
    newOccurrenceLines([leased], new Set());
    expect(newOccurrenceLines([leased], new Set())).toEqual([occurrenceLine(leased)]);
  });
});

describe('pendingRuns', () => {
  const run = (status: string, error?: string) => ({ runId: null, status, published: 0, ...(error ? { error } : {}) });

  it('counts the statuses and quotes the distinct errors, a few of them', () => {
    const lock = '10 ABORTED: Transaction lock timeout.';
    expect(pendingRuns([run('failed', lock), run('failed', lock), run('leased')])).toBe(`2 failed, 1 leased: ${lock}`);
    expect(pendingRuns([run('leased'), run('leased')])).toBe('2 leased');
    expect(pendingRuns([run('failed', 'a'), run('failed', 'b'), run('failed', 'c'), run('failed', 'd')])).toBe(
      '4 failed: a; b; and 2 other errors',
    );
    expect(pendingRuns([run('failed', 'x'.repeat(500))])).toBe(`1 failed: ${'x'.repeat(199)}…`);
  });
});

describe('PendingRunsLine', () => {
  const leased = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ runId: `s_${i}:t`, status: 'leased-elsewhere', published: 0 }));

  it('says the runs not dispatched when they change, and while they stay, a reminder every 30 s', () => {
    const lines = new PendingRunsLine(5);
    const t0 = 1_000_000;
    expect(lines.next(leased(10), t0, t0 - 1000)).toBe(
      '  10 runs not dispatched yet (10 leased-elsewhere); the tick is sent again every 5 s, as Cloud Scheduler retries',
    );
    // The same, 5 s later and 25 s later: nothing.
    expect(lines.next(leased(10), t0 + 5000, t0 - 1000)).toBeNull();
    expect(lines.next(leased(10), t0 + 25_000, t0 - 1000)).toBeNull();
    // 30 s after it was said: a reminder, timed from the first send.
    expect(lines.next(leased(10), t0 + 30_000, t0 - 1000)).toBe(
      '  still 10 runs not dispatched, 31 s after the tick was first sent',
    );
    expect(lines.next(leased(10), t0 + 35_000, t0 - 1000)).toBeNull();
    // Fewer left: said at once; and back to what it was before, said again.
    expect(lines.next(leased(4), t0 + 40_000, t0 - 1000)).toMatch(/^ {2}4 runs not dispatched yet/);
    expect(lines.next(leased(10), t0 + 45_000, t0 - 1000)).toMatch(/^ {2}10 runs not dispatched yet/);
  });
});

describe('RefusedTickLine', () => {
  const refusal =
    'tick 2026-12-02T18:34:30.000Z failed: HTTP 503 dependency_unavailable: Pub/Sub unavailable (Firestore ok)';

  it('says a refusal once, then every 30 s that it still is, and a new one at once', () => {
    const lines = new RefusedTickLine(5);
    const t0 = 1_000_000;
    expect(lines.next(refusal, t0, t0)).toBe(
      `${refusal}; the tick is sent again every 5 s, as Cloud Scheduler retries`,
    );
    // The same refusal at every send of the next 25 s: nothing more.
    for (let s = 5; s < 30; s += 5) expect(lines.next(refusal, t0 + s * 1000, t0)).toBeNull();
    expect(lines.next(refusal, t0 + 30_000, t0)).toBe('  still refused, 30 s after the tick was first sent');
    expect(lines.next(refusal, t0 + 35_000, t0)).toBeNull();
    const other = refusal.replace('Pub/Sub unavailable (Firestore ok)', 'Firestore unavailable (Pub/Sub ok)');
    expect(lines.next(other, t0 + 40_000, t0)).toBe(
      `${other}; the tick is sent again every 5 s, as Cloud Scheduler retries`,
    );
  });

  it('says a refusal again after a send that got through, not as the one before still going on', () => {
    const lines = new RefusedTickLine(5);
    const t0 = 1_000_000;
    expect(lines.next(refusal, t0, t0)).not.toBeNull();
    lines.accepted();
    expect(lines.next(refusal, t0 + 10_000, t0)).toBe(
      `${refusal}; the tick is sent again every 5 s, as Cloud Scheduler retries`,
    );
  });
});
