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
    // 20 minutes watched: the ticks for 15:58 to 16:01 are past the 15-minute window.
    const next = nextTick(at('2026-12-02T15:57:00Z'), at('2026-12-02T16:17:30Z'), 60, 900);
    expect(new Date(next.dueMs).toISOString()).toBe('2026-12-02T16:03:00.000Z');
    expect(next.passedOver).toBe(5);
    expect(at('2026-12-02T16:17:30Z') - next.dueMs).toBeLessThanOrEqual(900_000);
  });

  test('an interval that is not a minute keeps its own rhythm', () => {
    const first = slotAtOrBefore(at('2026-12-02T15:57:17Z'), 20);
    expect(new Date(first).toISOString()).toBe('2026-12-02T15:57:00.000Z');
    expect(new Date(nextTick(first, at('2026-12-02T15:57:18Z'), 20, 900).dueMs).toISOString()).toBe(
      '2026-12-02T15:57:20.000Z',
    );
  });
});
