import type { RunDoc } from './model';
import { type ClaimRequest, claimStep, runBlocker, scheduleAdvance, scheduleRunState } from './schedule-state';

const at = (hhmm: string) => new Date(`2026-12-07T${hhmm}:00.000Z`);
const occ = (hhmm: string) => at(hhmm).toISOString();
const state = (next: string | null, active: string | null, last: string | null = null) => ({
  exists: true,
  nextRunAt: next ? at(next) : null,
  activeOccurrence: active ? occ(active) : null,
  lastRunAt: last ? at(last) : null,
});

describe('runBlocker', () => {
  it('lets a run start when nothing holds the schedule and it has not moved past the occurrence', () => {
    expect(runBlocker(state('10:00', null), occ('10:00'), false)).toBeNull();
    expect(runBlocker(state('10:00', null), occ('10:01'), false)).toBeNull();
  });

  it('lets the run the schedule names start or resume', () => {
    expect(runBlocker(state('10:00', '10:00'), occ('10:00'), false)).toBeNull();
    expect(runBlocker(state('10:00', '10:00'), occ('10:00'), true)).toBeNull();
  });

  it('refuses another occurrence while a run holds the schedule, naming it', () => {
    expect(runBlocker(state('10:00', '10:01'), occ('10:00'), false)).toMatch(/dispatching 2026-12-07T10:01:00.000Z/);
    expect(runBlocker(state('10:00', '10:00'), occ('10:01'), true)).toMatch(/dispatching 2026-12-07T10:00:00.000Z/);
  });

  it('refuses to start an occurrence the schedule has moved past, but lets an unfinished run of it finish', () => {
    expect(runBlocker(state('10:02', null), occ('10:00'), false)).toMatch(/moved past 2026-12-07T10:00:00.000Z/);
    expect(runBlocker(state('10:02', null), occ('10:00'), true)).toBeNull();
  });
});

describe('a schedule document that is gone', () => {
  it('starts no run and is not written again: a write of the run state alone would leave it without cron and time zone', () => {
    const gone = scheduleRunState(undefined);
    expect(runBlocker(gone, occ('10:00'), false)).toMatch(/the schedule document is gone.*reindex/);
    expect(runBlocker(gone, occ('10:00'), true)).toMatch(/the schedule document is gone/);
    expect(scheduleAdvance(gone, occ('10:00'), at('10:01'), 0)).toBeNull();
    expect(scheduleAdvance(gone, null, at('10:01'), 3)).toBeNull();
  });
});

describe('scheduleAdvance', () => {
  it('moves the schedule on when its own run ends, recording the occurrence and the skips', () => {
    expect(scheduleAdvance(state('10:00', '10:00'), occ('10:00'), at('10:01'), 2)).toEqual({
      nextRunAt: at('10:01'),
      lastRunAt: at('10:00'),
      skipped: 2,
    });
  });

  it('writes nothing while another occurrence’s run holds the schedule', () => {
    expect(scheduleAdvance(state('10:00', '10:01'), occ('10:00'), at('10:01'), 0)).toBeNull();
    expect(scheduleAdvance(state('10:00', '10:01'), null, at('10:05'), 3)).toBeNull();
  });

  it('never moves nextRunAt or lastRunAt back, and counts skips only when it moves the schedule', () => {
    expect(scheduleAdvance(state('10:03', null, '10:02'), occ('10:00'), at('10:01'), 4)).toEqual({
      nextRunAt: at('10:03'),
      skipped: 0,
    });
  });

  it('reads a stored document, with missing or mistyped fields as null', () => {
    expect(scheduleRunState(undefined)).toEqual({
      exists: false,
      nextRunAt: null,
      activeOccurrence: null,
      lastRunAt: null,
    });
    expect(scheduleRunState({ nextRunAt: 'x', activeOccurrence: 5, lastRunAt: new Date('bad') })).toEqual({
      exists: true,
      nextRunAt: null,
      activeOccurrence: null,
      lastRunAt: null,
    });
  });
});

describe('claimStep on a running run whose lease expired (its dispatcher died)', () => {
  /** The 10:00 run, half sent, its lease gone at 10:01. */
  const expired: RunDoc = {
    scheduleId: 's',
    occurrence: occ('10:00'),
    status: 'running',
    leaseOwner: 'dead-dispatcher',
    leaseExpiresAt: at('10:01'),
    cursor: 'b07',
    published: 2,
    pages: 1,
    resumes: 0,
    startedAt: at('10:00'),
    updatedAt: at('10:00'),
    finishedAt: null,
    indexReadAt: at('10:00'),
    skippedBefore: 0,
  };
  const claim: ClaimRequest = {
    scheduleId: 's',
    occurrence: occ('10:00'),
    owner: 'this-dispatcher',
    leaseMs: 60_000,
    now: at('10:05'),
    indexReadAt: at('10:05'),
  };

  it('takes it over while the schedule still points at its occurrence', () => {
    expect(claimStep(expired, state('10:00', '10:00'), claim)).toEqual({
      kind: 'take',
      run: {
        ...expired,
        leaseOwner: 'this-dispatcher',
        leaseExpiresAt: at('10:06'),
        resumes: 1,
        updatedAt: at('10:05'),
      },
    });
  });

  it('takes it over when nothing holds the schedule, even once the schedule has moved past its occurrence: an unfinished run finishes', () => {
    expect(claimStep(expired, state('10:02', null), claim)).toMatchObject({
      kind: 'take',
      run: { leaseOwner: 'this-dispatcher', resumes: 1 },
    });
  });

  it('does not take it over once the schedule document is gone (deleted)', () => {
    const step = claimStep(expired, scheduleRunState(undefined), claim);
    expect(step).toEqual({ kind: 'superseded', reason: expect.stringMatching(/the schedule document is gone/) });
  });

  it('does not take it over while the schedule points at another occurrence’s run', () => {
    const step = claimStep(expired, state('10:00', '10:03'), claim);
    expect(step).toEqual({
      kind: 'superseded',
      reason: expect.stringMatching(/dispatching 2026-12-07T10:03:00.000Z/),
    });
  });
});
