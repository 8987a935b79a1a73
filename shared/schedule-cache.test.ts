import { CHECKED_SCHEDULE_CHARS, checkedSchedule, checkedScheduleCount } from './schedule';

// In a file of its own: it fills the module's cache of checked schedules to its bound.
it('keeps checked schedules up to a bound on their characters, past which each is checked again', () => {
  const before = checkedScheduleCount();
  // Made-up crons of 990 characters: each refused, and each refusal kept until the bound.
  const made = 2 + Math.ceil(CHECKED_SCHEDULE_CHARS / 990);
  for (let i = 0; i < made; i++) {
    const cron = `${String(i).padStart(8, '0')}${'x'.repeat(982)}`;
    expect(checkedSchedule(cron, 'UTC')).toHaveProperty('problem');
  }
  const kept = checkedScheduleCount() - before;
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThan(made);
  expect(kept).toBeLessThanOrEqual(CHECKED_SCHEDULE_CHARS / 990);
});

it('keeps at most CHECKED_SCHEDULE_ENTRIES checked schedules, however short', () => {
  jest.isolateModules(() => {
    // A module of its own: the test above filled this file's.
    const fresh = require('./schedule') as typeof import('./schedule');
    const made = fresh.CHECKED_SCHEDULE_ENTRIES + 2;
    for (let i = 0; i < made; i++) fresh.checkedSchedule(`x${i}`, 'UTC');
    expect(fresh.checkedScheduleCount()).toBe(fresh.CHECKED_SCHEDULE_ENTRIES);
  });
});
