import { Readable } from 'node:stream';
import { Firestore } from '@google-cloud/firestore';
import { deferred } from './concurrency';
import { FirestoreCoalescer, RpcGate } from './firestore-batching';
import { FirestoreStore } from './firestore-store';
import { CODES } from './grpc';

/**
 * The real Firestore client (its BulkWriter, its getAll) over a fake RPC layer: the two
 * methods the client sends every call through, `request` and `requestStream`, are replaced on
 * the instance by an in-memory Firestore that records each RPC. No network.
 */

interface Rpc {
  method: string;
  /** Document names read, or written, by the RPC. */
  docs: string[];
}

interface FakeWrite {
  update?: { name: string; fields?: Record<string, unknown> };
  updateMask?: { fieldPaths: string[] };
  currentDocument?: { exists?: boolean };
}

type RpcMethods = {
  request: (method: string, req: unknown) => Promise<unknown>;
  requestStream: (method: string, bidi: boolean, req: unknown) => Promise<Readable>;
};

const TIME = { seconds: 1_700_000_000, nanos: 0 };

class FakeFirestore {
  readonly db = new Firestore({ projectId: 'unit', ignoreUndefinedProperties: true });
  readonly docs = new Map<string, Record<string, unknown>>();
  readonly rpcs: Rpc[] = [];
  /** A status code to answer for the next writes to a document, one per try (then OK). */
  readonly writeFaults = new Map<string, number[]>();
  /** When set, the next batchGetDocuments fails with it. */
  readFault: Error | null = null;
  /** While set, every RPC waits for it before answering: an RPC in flight, held open. */
  hold: Promise<void> | null = null;
  private held: { resolve: () => void } | null = null;

  /** Holds every RPC from now until the returned release() (or the test's end) is called. */
  holdRpcs(): () => void {
    const held = deferred();
    this.held = held;
    this.hold = held.promise;
    return () => this.release();
  }

  release(): void {
    this.hold = null;
    this.held?.resolve();
    this.held = null;
  }

  constructor() {
    const rpc = this.db as unknown as RpcMethods;
    rpc.request = async (method, req) => this.request(method, req);
    rpc.requestStream = async (method, _bidi, req) => this.requestStream(method, req);
  }

  name(path: string): string {
    return `projects/unit/databases/(default)/documents/${path}`;
  }

  put(path: string, fields: Record<string, string>): void {
    this.docs.set(this.name(path), Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { stringValue: v }])));
  }

  rpcsOf(method: string): Rpc[] {
    return this.rpcs.filter((r) => r.method === method);
  }

  private async request(method: string, req: unknown): Promise<unknown> {
    if (method !== 'batchWrite') throw new Error(`unexpected RPC ${method}`);
    const writes = (req as { writes: FakeWrite[] }).writes;
    this.rpcs.push({ method, docs: writes.map((w) => w.update?.name ?? '') });
    await new Promise((r) => setImmediate(r));
    if (this.hold) await this.hold;
    const status = writes.map((w) => {
      const name = w.update?.name ?? '';
      const fault = this.writeFaults.get(name)?.shift();
      if (fault !== undefined) return { code: fault, message: `fault ${fault}` };
      const exists = this.docs.has(name);
      if (w.currentDocument?.exists === false && exists) return { code: CODES.ALREADY_EXISTS, message: 'exists' };
      if (w.currentDocument?.exists === true && !exists) return { code: 5, message: 'not found' };
      const fields = w.update?.fields ?? {};
      if (w.updateMask) {
        const merged = { ...this.docs.get(name) };
        for (const f of w.updateMask.fieldPaths) merged[f] = fields[f];
        this.docs.set(name, merged);
      } else {
        this.docs.set(name, fields);
      }
      return { code: 0 };
    });
    return { writeResults: writes.map(() => ({ updateTime: TIME })), status };
  }

  private async requestStream(method: string, req: unknown): Promise<Readable> {
    if (method !== 'batchGetDocuments') throw new Error(`unexpected RPC ${method}`);
    const names = (req as { documents: string[] }).documents;
    this.rpcs.push({ method, docs: [...names] });
    if (this.hold) await this.hold;
    if (this.readFault) {
      const err = this.readFault;
      this.readFault = null;
      throw err;
    }
    return Readable.from(
      names.map((name) => {
        const fields = this.docs.get(name);
        return fields
          ? { found: { name, fields, createTime: TIME, updateTime: TIME }, readTime: TIME }
          : { missing: name, readTime: TIME };
      }),
    );
  }
}

const turn = () => new Promise((r) => setImmediate(r));

describe('RpcGate', () => {
  it('sends at the end of the turn while nothing is in flight', async () => {
    const gate = new RpcGate(1, 1000);
    const sent: string[] = [];
    gate.schedule(() => sent.push('a'));
    expect(sent).toEqual([]);
    await turn();
    expect(sent).toEqual(['a']);
  });

  it('holds the next send while maxInFlight RPCs are out, and sends it when one settles, in order', async () => {
    const gate = new RpcGate(1, 60_000);
    const sent: string[] = [];
    const first = deferred();
    gate.schedule(() => {
      sent.push('a');
      void gate.track(first.promise);
    });
    await turn();
    gate.schedule(() => sent.push('b'));
    gate.schedule(() => sent.push('c'));
    await turn();
    await turn();
    expect(sent).toEqual(['a']);
    expect(gate.state).toEqual({ inFlight: 1, waiting: 2 });
    first.resolve();
    await turn();
    // b and c tracked nothing, so both leave once a is answered.
    expect(sent).toEqual(['a', 'b', 'c']);
    expect(gate.state).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('counts a rejected RPC as answered', async () => {
    const gate = new RpcGate(1, 60_000);
    const sent: string[] = [];
    void gate.track(Promise.reject(new Error('unavailable'))).catch(() => undefined);
    gate.schedule(() => sent.push('b'));
    await turn();
    await turn();
    expect(sent).toEqual(['b']);
  });

  it('lets maxInFlight RPCs out at once', async () => {
    const gate = new RpcGate(2, 60_000);
    const open = deferred();
    const sent: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      gate.schedule(() => {
        sent.push(name);
        void gate.track(open.promise);
      });
    }
    await turn();
    expect(sent).toEqual(['a', 'b']);
    open.resolve();
    await turn();
    expect(sent).toEqual(['a', 'b', 'c']);
  });

  it('sends after maxHoldMs when the RPC in flight does not answer', async () => {
    const gate = new RpcGate(1, 30);
    void gate.track(new Promise(() => undefined));
    const started = performance.now();
    const sentAt = await new Promise<number>((resolve) => gate.schedule(() => resolve(performance.now())));
    expect(sentAt - started).toBeGreaterThanOrEqual(25);
    expect(sentAt - started).toBeLessThan(1000);
  });
});

describe('FirestoreCoalescer', () => {
  let fake: FakeFirestore;
  let co: FirestoreCoalescer;

  beforeEach(() => {
    fake = new FakeFirestore();
    co = new FirestoreCoalescer(fake.db);
  });

  afterEach(async () => {
    // An RPC a failed test left held would keep close() waiting for its answer.
    fake.release();
    await co.close();
    await fake.db.terminate();
  });

  /**
   * For a test that holds an RPC open across several turns: only its answer lets the next batch
   * go, never the hold timer, however slow the machine.
   */
  async function patient(): Promise<void> {
    await co.close();
    co = new FirestoreCoalescer(fake.db, { maxHoldMs: 60_000 });
  }

  it('sends the reads asked for in one turn as one getAll, each caller getting its own document', async () => {
    fake.put('notifications/n1', { accountId: 'a1' });
    fake.put('notifications/n2', { accountId: 'a2' });
    fake.put('accounts/a1', { name: 'Acme' });
    const col = (c: string, id: string) => fake.db.collection(c).doc(id);
    const snaps = await Promise.all([
      co.get(col('notifications', 'n1')),
      co.get(col('notifications', 'n2')),
      co.get(col('accounts', 'a1')),
      co.get(col('notifications', 'missing')),
      // The same document twice in one batch: both callers get it.
      co.get(col('notifications', 'n1')),
    ]);
    expect(fake.rpcsOf('batchGetDocuments')).toHaveLength(1);
    // Asked once for the repeated document.
    expect(fake.rpcsOf('batchGetDocuments')[0]?.docs).toHaveLength(4);
    expect(snaps.map((s) => s.ref.path)).toEqual([
      'notifications/n1',
      'notifications/n2',
      'accounts/a1',
      'notifications/missing',
      'notifications/n1',
    ]);
    expect(snaps.map((s) => s.exists)).toEqual([true, true, true, false, true]);
    expect(snaps[0]?.get('accountId')).toBe('a1');
    expect(snaps[1]?.get('accountId')).toBe('a2');
    expect(snaps[2]?.get('name')).toBe('Acme');
    expect(snaps[3]?.data()).toBeUndefined();
    expect(snaps[4]?.get('accountId')).toBe('a1');
    // Separate objects: one caller cannot see another's changes.
    expect(snaps[4]).not.toBe(snaps[0]);
  });

  it('sends reads of different turns separately, without waiting for more', async () => {
    fake.put('notifications/n1', { accountId: 'a1' });
    const first = await co.get(fake.db.doc('notifications/n1'));
    const second = await co.get(fake.db.doc('notifications/n1'));
    expect(first.exists && second.exists).toBe(true);
    expect(fake.rpcsOf('batchGetDocuments')).toHaveLength(2);
  });

  it('gathers the reads asked for while a read RPC is out into the next one', async () => {
    await patient();
    const release = fake.holdRpcs();
    const first = co.get(fake.db.doc('accounts/a0'));
    await turn();
    // Asked for in later turns, while the first read is still out.
    const later: Promise<unknown>[] = [];
    for (let i = 1; i <= 3; i++) {
      later.push(co.get(fake.db.doc(`accounts/a${i}`)));
      await turn();
    }
    expect(fake.rpcsOf('batchGetDocuments').map((r) => r.docs.length)).toEqual([1]);
    release();
    await Promise.all([first, ...later]);
    expect(fake.rpcsOf('batchGetDocuments').map((r) => r.docs.length)).toEqual([1, 3]);
  });

  it('gathers the writes made while a write RPC is out into the next one', async () => {
    await patient();
    const release = fake.holdRpcs();
    const first = co.create(fake.db.doc('deliveries/d0'), { status: 'sending' });
    await turn();
    await turn();
    const later: Promise<unknown>[] = [];
    for (let i = 1; i <= 3; i++) {
      later.push(co.create(fake.db.doc(`deliveries/d${i}`), { status: 'sending' }));
      await turn();
    }
    expect(fake.rpcsOf('batchWrite').map((r) => r.docs.length)).toEqual([1]);
    release();
    await Promise.all([first, ...later]);
    expect(fake.rpcsOf('batchWrite').map((r) => r.docs.length)).toEqual([1, 3]);
    expect(fake.docs.size).toBe(4);
  });

  it('does not let a read RPC that never answers hold the next batch past maxHoldMs', async () => {
    const quick = new FirestoreCoalescer(fake.db, { maxHoldMs: 20 });
    fake.hold = new Promise(() => undefined);
    void quick.get(fake.db.doc('accounts/stuck'));
    await turn();
    fake.hold = null;
    fake.put('accounts/a1', { name: 'Acme' });
    const snap = await quick.get(fake.db.doc('accounts/a1'));
    expect(snap.get('name')).toBe('Acme');
    expect(fake.rpcsOf('batchGetDocuments').map((r) => r.docs)).toEqual([
      [fake.name('accounts/stuck')],
      [fake.name('accounts/a1')],
    ]);
  });

  it('caps a read batch at maxReadBatch documents', async () => {
    const small = new FirestoreCoalescer(fake.db, { maxReadBatch: 3 });
    const snaps = await Promise.all(Array.from({ length: 7 }, (_, i) => small.get(fake.db.doc(`accounts/a${i}`))));
    expect(snaps.every((s) => !s.exists)).toBe(true);
    expect(fake.rpcsOf('batchGetDocuments').map((r) => r.docs.length)).toEqual([3, 3, 1]);
    await small.close();
  });

  it('fails every read of a batch whose RPC fails, and the next batch reads again', async () => {
    fake.readFault = Object.assign(new Error('permission denied'), { code: 7 });
    const failed = await Promise.allSettled([co.get(fake.db.doc('a/1')), co.get(fake.db.doc('a/2'))]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((failed[0] as PromiseRejectedResult).reason).toMatchObject({ code: 7 });
    const ok = await co.get(fake.db.doc('a/1'));
    expect(ok.exists).toBe(false);
  });

  it('fails only the create of an existing document, with code 6, and applies the rest of its batch', async () => {
    fake.put('deliveries/d2', { status: 'sent' });
    const results = await Promise.allSettled(
      ['d1', 'd2', 'd3'].map((id) => co.create(fake.db.doc(`deliveries/${id}`), { status: 'sending' })),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const err = (results[1] as PromiseRejectedResult).reason as { code?: number };
    // The check the claim makes: (err as { code?: number }).code === 6.
    expect(err.code).toBe(CODES.ALREADY_EXISTS);
    // One RPC for the three, and the existing document untouched.
    expect(fake.rpcsOf('batchWrite')).toHaveLength(1);
    expect(fake.rpcsOf('batchWrite')[0]?.docs).toHaveLength(3);
    expect(fake.docs.get(fake.name('deliveries/d2'))).toEqual({ status: { stringValue: 'sent' } });
    expect(fake.docs.get(fake.name('deliveries/d1'))).toEqual({ status: { stringValue: 'sending' } });
  });

  it('sends a lone write at the end of its turn, without waiting for a batch to fill', async () => {
    const started = Date.now();
    await co.create(fake.db.doc('deliveries/only'), { status: 'sending' });
    await co.update(fake.db.doc('deliveries/only'), { status: 'sent' });
    // BulkWriter alone would hold a batch of one until it had 20 writes or a flush.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(fake.rpcsOf('batchWrite').map((r) => r.docs.length)).toEqual([1, 1]);
    expect(fake.docs.get(fake.name('deliveries/only'))).toEqual({ status: { stringValue: 'sent' } });
  });

  it('fails an update of a missing document for its caller only', async () => {
    fake.put('deliveries/here', { status: 'sending' });
    const results = await Promise.allSettled([
      co.update(fake.db.doc('deliveries/here'), { status: 'sent' }),
      co.update(fake.db.doc('deliveries/gone'), { status: 'sent' }),
    ]);
    expect(results[0]?.status).toBe('fulfilled');
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 5 });
  });

  it('tries a transient write failure again, a bounded number of times', async () => {
    const bounded = new FirestoreCoalescer(fake.db, { maxWriteAttempts: 2 });
    fake.writeFaults.set(fake.name('deliveries/flaky'), [CODES.ABORTED]);
    fake.writeFaults.set(fake.name('deliveries/down'), [CODES.UNAVAILABLE, CODES.UNAVAILABLE, CODES.UNAVAILABLE]);
    const [flaky, down] = await Promise.allSettled([
      bounded.create(fake.db.doc('deliveries/flaky'), { status: 'sending' }),
      bounded.create(fake.db.doc('deliveries/down'), { status: 'sending' }),
    ]);
    expect(flaky?.status).toBe('fulfilled');
    expect((down as PromiseRejectedResult).reason).toMatchObject({ code: CODES.UNAVAILABLE, failedAttempts: 2 });
    // The first try of both, then one retry each.
    const tries = fake.rpcsOf('batchWrite').flatMap((r) => r.docs);
    expect(tries.filter((d) => d.endsWith('/flaky'))).toHaveLength(2);
    expect(tries.filter((d) => d.endsWith('/down'))).toHaveLength(2);
    await bounded.close();
  });

  it('does not hold fresh writes at the gate while a write waits out its retry back-off', async () => {
    // A long hold, so a gate that waited on the retry would show in every latency.
    const slow = new FirestoreCoalescer(fake.db, { maxHoldMs: 1000 });
    fake.writeFaults.set(fake.name('deliveries/a0'), [CODES.ABORTED]);
    // A full batch of 20 leaves at once; one of its writes is retried after 1 to 1.5 s.
    const full = Array.from({ length: 20 }, (_, i) =>
      slow.create(fake.db.doc(`deliveries/a${i}`), { status: 'sending' }),
    );
    await Promise.allSettled(full.slice(1));
    await new Promise((r) => setTimeout(r, 20));
    const latencies: number[] = [];
    for (let i = 0; i < 4; i++) {
      const started = performance.now();
      await slow.create(fake.db.doc(`deliveries/lone${i}`), { status: 'sending' });
      latencies.push(performance.now() - started);
    }
    // Each lone write left at the end of its turn: neither the hold nor the back-off.
    expect(Math.max(...latencies)).toBeLessThan(500);
    await expect(full[0]).resolves.toBeDefined();
    expect(fake.docs.size).toBe(24);
    await slow.close();
  });

  it('close() sends a read batch the gate is holding, before the client can be terminated', async () => {
    await patient();
    const release = fake.holdRpcs();
    const first = co.get(fake.db.doc('accounts/a0'));
    await turn();
    const second = co.get(fake.db.doc('accounts/a1'));
    await turn();
    expect(fake.rpcsOf('batchGetDocuments')).toHaveLength(1);
    let closed = false;
    const closing = co.close().then(() => {
      closed = true;
    });
    for (let i = 0; i < 5; i++) await turn();
    // Sent at close, although the first read is still out; close() waits for both answers.
    expect(fake.rpcsOf('batchGetDocuments')).toHaveLength(2);
    expect(closed).toBe(false);
    release();
    await closing;
    await expect(Promise.all([first, second])).resolves.toHaveLength(2);
  });

  it('does not retry a failure that is not transient', async () => {
    fake.writeFaults.set(fake.name('deliveries/busy'), [CODES.RESOURCE_EXHAUSTED]);
    await expect(co.create(fake.db.doc('deliveries/busy'), { status: 'sending' })).rejects.toMatchObject({
      code: CODES.RESOURCE_EXHAUSTED,
    });
    expect(fake.rpcsOf('batchWrite')).toHaveLength(1);
  });

  it('close() sends queued writes and waits for them; later calls still work, one by one', async () => {
    const pending = co.create(fake.db.doc('deliveries/late'), { status: 'sending' });
    await co.close();
    await expect(pending).resolves.toBeDefined();
    expect(fake.docs.has(fake.name('deliveries/late'))).toBe(true);
    // Closed: a direct read, and terminate() is no longer refused by an open writer.
    const snap = await co.get(fake.db.doc('deliveries/late'));
    expect(snap.get('status')).toBe('sending');
  });
});

describe('FirestoreStore with coalesce', () => {
  it('reads notifications and accounts through one getAll per turn, null for a missing one', async () => {
    const fake = new FakeFirestore();
    const store = new FirestoreStore(fake.db, { coalesce: true });
    fake.put('notifications/n1', { accountId: 'a1' });
    fake.put('accounts/a1', { name: 'Acme' });
    const [n1, missing, account] = await Promise.all([
      store.getRaw('n1'),
      store.getRaw('nope'),
      store.getAccountRaw('a1'),
    ]);
    expect(n1).toEqual({ accountId: 'a1' });
    expect(missing).toBeNull();
    expect(account).toEqual({ name: 'Acme' });
    expect(fake.rpcsOf('batchGetDocuments')).toHaveLength(1);
    await store.close();
    await fake.db.terminate();
  });

  it('claims fresh deliveries of one turn with one write RPC, and records sent the same way', async () => {
    const fake = new FakeFirestore();
    const store = new FirestoreStore(fake.db, { coalesce: true });
    const now = new Date('2031-01-01T00:00:00Z');
    const claims = await Promise.all(
      ['d1', 'd2', 'd3'].map((deliveryId) =>
        store.claim({
          deliveryId,
          notificationId: 'n1',
          occurrence: now.toISOString(),
          runId: 'r1',
          owner: `o-${deliveryId}`,
          ttlMs: 60_000,
          now,
          publishedAt: null,
        }),
      ),
    );
    expect(claims.map((c) => c.kind)).toEqual(['claimed', 'claimed', 'claimed']);
    await Promise.all(
      ['d1', 'd2', 'd3'].map((id) =>
        store.markSent(id, { slackTs: '1.2', channelId: 'C1', accountId: 'a1', latencyMs: 5, now }),
      ),
    );
    expect(fake.rpcsOf('batchWrite').map((r) => r.docs.length)).toEqual([3, 3]);
    expect(fake.docs.get(fake.name('deliveries/d2'))?.status).toEqual({ stringValue: 'sent' });
    await store.close();
    await fake.db.terminate();
  });
});
