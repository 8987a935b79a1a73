import { loadServiceConfig } from '../shared/auth';
import { createFirestore, firestoreReady } from '../shared/firestore';
import { accountStoreOf, FirestoreStore } from '../shared/firestore-store';
import { serveNotifier } from './service';

try {
  // Before anything listens: a bad setting, or one that would run open on Cloud Run, stops it.
  const { config, auth } = loadServiceConfig('notifier');
  serveNotifier(config, auth, () => {
    const db = createFirestore(config.projectId);
    // Reads and ledger writes of concurrent pushes share round trips (shared/firestore-batching.ts).
    const store = new FirestoreStore(db, { coalesce: true });
    return {
      ledger: store,
      notifications: store,
      accounts: accountStoreOf(store),
      runs: store,
      readiness: { firestore: firestoreReady(db) },
      close: async () => {
        // Queued writes leave before the client goes (terminate() refuses while a writer is open).
        await store.close();
        await db.terminate();
      },
    };
  });
} catch (err) {
  process.stderr.write(`notifier: ${(err as Error).message}\n`);
  process.exit(1);
}
