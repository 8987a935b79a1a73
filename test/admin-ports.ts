import type { Express } from 'express';
import type { AdminDeps, AdminPorts } from '../dispatcher/admin';
import { createApp as createDispatcher, type DispatcherDeps } from '../dispatcher/app';
import { createLogger } from '../shared/logger';
import type { DeliveryStatus } from '../shared/model';
import { noneResumed } from '../shared/notifications';
import type { RunStore } from '../shared/ports';
import type { RedriveResult } from '../shared/redrive';

/** A run's delivery counts, every status 0 unless given. */
export function deliveryCounts(over: Partial<Record<DeliveryStatus, number>> = {}): Record<DeliveryStatus, number> {
  return { sending: 0, retrying: 0, sent: 0, failed: 0, skipped: 0, dead: 0, ...over };
}

/** A redrive's result: nothing done unless `over` says. */
export function redriveResult(runId: string, over: Partial<RedriveResult> = {}): RedriveResult {
  return { runId, redriven: 0, skipped: 0, failed: 0, waiting: 0, waitingUntil: null, ...over };
}

/** The admin API's ports over nothing: no run, no notification, nothing to redrive or resume; `over` replaces some. */
export function fakeAdminPorts(over: Partial<AdminPorts> = {}): AdminPorts {
  return {
    getRun: async () => null,
    countByStatus: async () => deliveryCounts(),
    recentRuns: async () => [],
    getNotification: async () => null,
    nextRunAt: async () => null,
    setNotificationEnabled: async () => null,
    deleteNotification: async () => false,
    saveNotification: async (_n, _late, first) => {
      await first?.();
      return true;
    },
    accountMissing: async () => false,
    redrivable: async () => false,
    resumePaused: async (_selector, { dryRun }) => noneResumed(dryRun),
    redrive: async (runId) => redriveResult(runId),
    redriveTopicReady: async () => undefined,
    ...over,
  };
}

/**
 * A dispatcher that has nothing to tick (no schedule is ever due) and publishes nowhere, for
 * tests of its HTTP surface: the admin API and status page over `admin`, where given.
 */
export function dispatcherForAdmin(admin?: AdminDeps, over: Partial<DispatcherDeps> = {}): Express {
  return createDispatcher({
    log: createLogger({ service: 'test', level: 'silent' }),
    projectId: 'p',
    runs: { dueSchedules: async () => [] } as unknown as RunStore,
    publisher: { publishPage: async () => undefined },
    pageSize: 10,
    leaseSeconds: 60,
    catchUpWindowSeconds: 900,
    ...(admin ? { admin } : {}),
    ...over,
  });
}
