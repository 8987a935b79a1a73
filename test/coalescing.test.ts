import type { Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import type { ClaimRequest } from '../shared/ports';
import { COLLECTIONS } from '../shared/topology';

/**
 * The notifier's coalesced store (shared/firestore-batching.ts) against the real Firestore
 * emulator: BulkWriter's BatchWrite and getAll's BatchGetDocuments, with concurrent callers.
 */

type RpcMethods = {
  request: (...args: unknown[]) => Promise<unknown>;
  requestStream: (...args: unknown[]) => Promise<unknown>;
};

/** Counts the RPCs the client sends, by method, as bench/instrument.ts does. */
function countRpcs(db: Firestore): Record<string, number> {
  const counts: Record<string, number> = {};
  const rpc = db as unknown as RpcMethods;
  for (const m of ['request', 'requestStream'] as const) {
    const original = rpc[m].bind(db);
    rpc[m] = (...args: unknown[]) => {
      const method = String(args[0]);
      counts[method] = (counts[method] ?? 0) + 1;
      return original(...args);
    };
  }
  return counts;
}

describe('coalesced store on the emulator', () => {
  let db: Firestore;
  let store: FirestoreStore;
  let rpcs: Record<string, number>;
  const now = new Date('2031-01-01T00:00:00Z');

  function claimOf(deliveryId: string, owner: string): ClaimRequest {
    return {
      deliveryId,
      notificationId: deliveryId.split(':')[0] ?? deliveryId,
      occurrence: now.toISOString(),
      runId: 'r1',
      owner,
      ttlMs: 60_000,
      now,
      publishedAt: null,
    };
  }

  beforeEach(() => {
    db = createFirestore(uniqueProjectId('coalesce'));
    store = new FirestoreStore(db, { coalesce: true });
    rpcs = countRpcs(db);
  });
  afterEach(async () => {
    await store.close();
    await db.terminate();
  });

  test("a claim whose create landed but was retried finds its own claim, not someone else's", async () => {
    const id = `n-own:${now.toISOString()}`;
    const first = await store.claim(claimOf(id, 'attempt-1'));
    expect(first.kind).toBe('claimed');
    // The same attempt again, as after a create retried by the writer: still its claim.
    const again = await store.claim(claimOf(id, 'attempt-1'));
    expect(again).toMatchObject({ kind: 'claimed', attempts: 1, outcomeUnknown: false });
    // Any other attempt meanwhile sees a live claim.
    expect((await store.claim(claimOf(id, 'attempt-2'))).kind).toBe('busy');
  });

  test('50 concurrent claims of 25 deliveries: exactly one claimed per delivery, the rest busy', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `n-${String(i).padStart(3, '0')}:${now.toISOString()}`);
    const requests = [...ids.map((id) => claimOf(id, `a-${id}`)), ...ids.map((id) => claimOf(id, `b-${id}`))];
    const claims = await Promise.all(requests.map((r) => store.claim(r)));

    const kinds = claims.map((c) => c.kind);
    expect(kinds.filter((k) => k === 'claimed')).toHaveLength(25);
    expect(kinds.filter((k) => k === 'busy')).toHaveLength(25);
    for (let i = 0; i < ids.length; i++) {
      // One of the two attempts at each delivery holds it.
      expect([claims[i]?.kind, claims[i + ids.length]?.kind].sort()).toEqual(['busy', 'claimed']);
    }
    // The creates went out together: a BatchWrite holds up to 20, and never one document twice.
    expect(rpcs.batchWrite ?? 0).toBeGreaterThanOrEqual(3);
    expect(rpcs.batchWrite ?? 0).toBeLessThanOrEqual(6);
    // Commits only from the losers' read transactions (at most one each), none from a create.
    expect(rpcs.commit ?? 0).toBeLessThanOrEqual(25);

    const owners = await Promise.all(ids.map(async (id) => (await store.get(id))?.claimedBy));
    for (let i = 0; i < ids.length; i++) {
      const winner = claims[i]?.kind === 'claimed' ? requests[i] : requests[i + ids.length];
      expect(owners[i]).toBe(winner?.owner);
    }

    // Recorded sent together; a later claim sees the final status.
    const before = rpcs.batchWrite ?? 0;
    await Promise.all(
      ids.map((id) => store.markSent(id, { slackTs: '1.1', channelId: 'C1', accountId: 'a1', latencyMs: 1, now })),
    );
    expect((rpcs.batchWrite ?? 0) - before).toBeLessThanOrEqual(2);
    const again = await Promise.all(ids.map((id) => store.claim(claimOf(id, `c-${id}`))));
    expect(again.every((c) => c.kind === 'final' && c.status === 'sent')).toBe(true);
  });

  test('a claim of a record left by another path falls back to the transaction and takes it over', async () => {
    const id = `n-retry:${now.toISOString()}`;
    await db
      .collection(COLLECTIONS.deliveries)
      .doc(id)
      .set({ status: 'retrying', attempts: 1, firstAttemptAt: now, outcomeUnknown: true });
    const fresh = `n-fresh:${now.toISOString()}`;
    const [retried, created] = await Promise.all([store.claim(claimOf(id, 'o1')), store.claim(claimOf(fresh, 'o2'))]);
    expect(retried).toMatchObject({ kind: 'claimed', attempts: 2, outcomeUnknown: true });
    expect(created).toMatchObject({ kind: 'claimed', attempts: 1, outcomeUnknown: false });
    expect((await store.get(id))?.claimedBy).toBe('o1');
  });

  test('markSent of a delivery that does not exist fails for its caller only', async () => {
    const id = `n-ok:${now.toISOString()}`;
    await store.claim(claimOf(id, 'o1'));
    const sent = { slackTs: '1.1', channelId: 'C1', accountId: 'a1', latencyMs: 1, now };
    const [ok, missing] = await Promise.allSettled([store.markSent(id, sent), store.markSent('never:claimed', sent)]);
    expect(ok.status).toBe('fulfilled');
    expect(missing.status).toBe('rejected');
    expect((await store.get(id))?.status).toBe('sent');
  });

  test('concurrent notification and account reads: one round trip per turn, each caller its own document', async () => {
    const batch = db.batch();
    for (let i = 0; i < 30; i++) {
      batch.set(db.collection(COLLECTIONS.notifications).doc(`n-${i}`), { accountId: `acct-${i % 3}`, i });
    }
    for (let a = 0; a < 3; a++) batch.set(db.collection(COLLECTIONS.accounts).doc(`acct-${a}`), { name: `A${a}` });
    await batch.commit();
    const before = rpcs.batchGetDocuments ?? 0;

    const [notifications, accounts] = await Promise.all([
      Promise.all(Array.from({ length: 32 }, (_, i) => store.getRaw(`n-${i}`))),
      Promise.all(Array.from({ length: 4 }, (_, a) => store.getAccountRaw(`acct-${a}`))),
    ]);
    for (let i = 0; i < 30; i++) expect(notifications[i]).toEqual({ accountId: `acct-${i % 3}`, i });
    expect(notifications[30]).toBeNull();
    expect(notifications[31]).toBeNull();
    expect(accounts.map((a) => a?.name ?? null)).toEqual(['A0', 'A1', 'A2', null]);
    expect((rpcs.batchGetDocuments ?? 0) - before).toBe(1);
  });
});
