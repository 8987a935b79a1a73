/**
 * A diagnostic notifier for the capacity phase: the notifier service (notifier/service.ts: the
 * same app, Slack client, logging and shutdown) with the in-memory store in place of Firestore,
 * seeded with what the capacity fixture writes to Firestore. Its CPU per delivery beside the
 * real notifier's is what the Firestore client costs per delivery. Started by
 * bench/capacity.ts as the notifier's container command with this entry; never deployed.
 *
 * Env: the notifier's, plus BENCH_NOTIFICATIONS, BENCH_ACCOUNTS and BENCH_ID_PREFIX (as
 * benchNotifications takes them).
 */
import { demoAccounts } from '../dev/demo';
import { serveNotifier } from '../notifier/service';
import { loadServiceConfig } from '../shared/auth';
import { MemoryStore } from '../shared/memory-store';
import { notificationDoc } from '../shared/notifications';
import { benchNotifications } from './seed';

function count(name: string): number {
  const n = Number(process.env[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return n;
}

try {
  const { config, auth } = loadServiceConfig('notifier');
  const notifications = count('BENCH_NOTIFICATIONS');
  const accounts = count('BENCH_ACCOUNTS');
  const prefix = process.env.BENCH_ID_PREFIX ?? 'n';
  serveNotifier(config, auth, () => {
    const store = new MemoryStore();
    const now = new Date();
    for (const n of benchNotifications(notifications, accounts, prefix)) {
      store.putNotification(n.id, { ...notificationDoc(n), createdAt: now, updatedAt: now });
    }
    for (const { id, account } of demoAccounts(accounts)) store.putAccount(id, account);
    return {
      ledger: store,
      notifications: store,
      accounts: store.accounts,
      runs: store,
      readiness: {},
      close: async () => undefined,
    };
  });
} catch (err) {
  process.stderr.write(`notifier (in-memory store): ${(err as Error).message}\n`);
  process.exit(1);
}
