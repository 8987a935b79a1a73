import { nextTick, slotAtOrBefore } from './tick-rhythm';

const at = (iso: string) => Date.parse(iso);

describe('the local run ticks on the clock', () => {
  test('every minute on the minute, whenever the first tick came', () => {
    const first = slotAtOrBefore(at('2026-12-02T15:57:17.400Z'), 60);
    expect(new Date(first).toISOString()).toBe('2026-12-02T15:57:00.000Z');
    const next = nextTick(first, at('2026-12-02T15:57:21Z'), 60, 900);
    expect(new Date(next.dueMs).toISOString()).toBe('2026-12-02T15:58:00.000Z');
    expect(next.passedOver).toBe(0);
  });

  test('a tick due while the last one was watched keeps the time it was due, so no minute is left out', () => {
    // The last tick's deliveries took 75 s: the next is sent late, for 15:58, then 15:59.
    const late = nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T15:58:15Z'), 60, 900);
    expect(new Date(late.dueMs).toISOString()).toBe('2026-12-02T15:58:00.000Z');
    const after = nextTick(late.dueMs, at('2026-12-02T15:58:19Z'), 60, 900);
    expect(new Date(after.dueMs).toISOString()).toBe('2026-12-02T15:59:00.000Z');
  });

  test('ticks due longer ago than the catch-up window are left out, and counted', () => {
    // 20 minutes watched: the ticks for 15:58 to 16:02 are past the 15-minute window.
    const next = nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T16:17:30Z'), 60, 900);
    expect(new Date(next.dueMs).toISOString()).toBe('2026-12-02T16:03:00.000Z');
    expect(next.passedOver).toBe(5);
    expect(at('2026-12-02T16:17:30Z') - next.dueMs).toBeLessThanOrEqual(900_000);
  });

  test('an interval that does not divide a minute keeps its own rhythm', () => {
    const first = slotAtOrBefore(at('2026-12-02T15:57:17Z'), 45);
    expect(first % 45_000).toBe(0);
    expect(first).toBeLessThanOrEqual(at('2026-12-02T15:57:17Z'));
    expect(at('2026-12-02T15:57:17Z') - first).toBeLessThan(45_000);
    const next = nextTick(first, at('2026-12-02T15:57:18Z'), 45, 900);
    expect(next).toEqual({ dueMs: first + 45_000, passedOver: 0 });
    expect(nextTick(first, at('2026-12-02T15:57:18Z'), 90, 900).dueMs).toBe(first + 90_000);
  });

  test('with a catch-up window under a minute, a tick up to a minute late is still sent, as the dispatcher ages it at its own time', () => {
    // 45 s late, window 30 s: the dispatcher sends it (it is not a minute late).
    expect(nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T15:58:45Z'), 60, 30)).toEqual({
      dueMs: at('2026-12-02T15:58:00Z'),
      passedOver: 0,
    });
    // Window 0: the same; past a minute late it is left out.
    expect(nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T15:58:59Z'), 60, 0).passedOver).toBe(0);
    expect(nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T15:59:30Z'), 60, 0)).toEqual({
      dueMs: at('2026-12-02T15:59:00Z'),
      passedOver: 1,
    });
  });

  test('a clock set back ticks on from its new time, not after a wait of the time it went back', () => {
    // The last tick was due at 16:20; the clock now says 16:03.
    expect(nextTick(at('2026-12-02T16:20:00Z'), at('2026-12-02T16:03:10Z'), 60, 900)).toEqual({
      dueMs: at('2026-12-02T16:04:00Z'),
      passedOver: 0,
    });
  });

  test('a 20 s interval ticks at :00, :20 and :40', () => {
    const first = slotAtOrBefore(at('2026-12-02T15:57:17Z'), 20);
    expect(new Date(first).toISOString()).toBe('2026-12-02T15:57:00.000Z');
    expect(new Date(nextTick(first, at('2026-12-02T15:57:18Z'), 20, 900).dueMs).toISOString()).toBe(
      '2026-12-02T15:57:20.000Z',
    );
  });
});
