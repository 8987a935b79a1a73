import type {
  BulkWriter,
  BulkWriterError,
  DocumentData,
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  UpdateData,
  WithFieldValue,
  WriteResult,
} from '@google-cloud/firestore';
import DataLoader from 'dataloader';
import { deferred } from './concurrency';
import { CODES } from './grpc';

/**
 * Coalesces the notifier's single-document Firestore calls across concurrent pushes: every
 * read asked for in one event-loop turn leaves as one `getAll()` (one BatchGetDocuments RPC),
 * and every write enqueued in one turn leaves through a BulkWriter flush (BatchWrite RPCs of
 * up to 20 writes). Each caller still gets its own result: its own snapshot, or its own write
 * result or error (a `create()` of an existing document rejects with code 6, ALREADY_EXISTS,
 * for that caller only, while the other writes of the same RPC succeed).
 *
 * Billing does not change: Firestore bills a batched read or write per document, as it bills
 * the single calls. What goes is the per-RPC cost on this side: an HTTP/2 stream, the client's
 * request set-up and its tracing, once per batch instead of once per call.
 *
 * Batches grow with the load, as in a database's group commit: while `maxRpcsInFlight` RPCs of
 * a kind (reads, or writes) are out, the next batch waits for one of them to answer, and what
 * is asked for meanwhile joins it. Alone, a call leaves at the end of its turn, as before; under
 * load, one RPC carries what arrived during the last one's round trip. A batch never waits more
 * than `maxHoldMs`, so a slow RPC cannot hold the others back.
 */

/**
 * Per-write failures tried again by the writer, at most `maxWriteAttempts` times in all.
 * ABORTED (contention) and UNAVAILABLE are transient. Both are safe for a claim's create: if
 * an earlier try did land, the retry comes back ALREADY_EXISTS, the claim reads the record,
 * finds its own live `sending` claim (the owner token is this attempt's alone) and takes it as
 * this attempt's (FirestoreStore.claim). Not
 * retried here: RESOURCE_EXHAUSTED (the writer backs it off by 60 s, past the push deadline;
 * Pub/Sub's redelivery is the better back-off) and DEADLINE_EXCEEDED (the RPC already waited
 * its full timeout). The RPC as a whole is retried by the client itself, as for any write.
 * A retry waits out its back-off in the writer's next batch, and the fresh writes that join
 * that batch wait with it: rare, and bounded by the same 1 to 1.5 s.
 */
const RETRIED_WRITE_CODES: ReadonlySet<number> = new Set([CODES.ABORTED, CODES.UNAVAILABLE]);

/**
 * Paces one kind of RPC: `schedule(send)` runs `send` at the end of the turn when fewer than
 * `maxInFlight` RPCs tracked by `track()` are out; otherwise when one of them settles, or once
 * it has waited `maxHoldMs`, whichever comes first. Sends run in the order they were scheduled.
 */
export class RpcGate {
  /** One promise per tracked RPC still out, settling (never rejecting) when it does. */
  private readonly pending = new Set<Promise<void>>();
  private readonly queue: { send: () => void; at: number }[] = [];
  private drainScheduled = false;
  private holdTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly maxInFlight: number,
    private readonly maxHoldMs: number,
  ) {}

  schedule(send: () => void): void {
    this.queue.push({ send, at: performance.now() });
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Counts `rpc` as in flight until it settles. */
  track<T>(rpc: Promise<T>): Promise<T> {
    // One entry per call, even for a promise tracked twice.
    const done = () => {
      this.pending.delete(settled);
      this.drain();
    };
    const settled: Promise<void> = rpc.then(done, done);
    this.pending.add(settled);
    return rpc;
  }

  /** Runs every waiting send now, whatever is in flight: for a close that must not leave one behind. */
  releaseAll(): void {
    for (const { send } of this.queue.splice(0)) send();
    this.clearHold();
  }

  /** Sends everything waiting now, and resolves once no tracked RPC is out. */
  async idle(): Promise<void> {
    this.releaseAll();
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** RPCs out now, and sends waiting: for tests and diagnostics. */
  get state(): { inFlight: number; waiting: number } {
    return { inFlight: this.pending.size, waiting: this.queue.length };
  }

  private drain(): void {
    const now = performance.now();
    for (;;) {
      const next = this.queue[0];
      if (!next) break;
      if (this.pending.size >= this.maxInFlight && now - next.at < this.maxHoldMs) break;
      this.queue.shift();
      next.send();
    }
    this.clearHold();
    const oldest = this.queue[0];
    if (oldest) {
      this.holdTimer = setTimeout(
        () => {
          this.holdTimer = null;
          this.drain();
        },
        Math.max(0, oldest.at + this.maxHoldMs - now),
      );
    }
  }

  private clearHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
  }
}

export interface CoalescerOptions {
  /** The most documents one `getAll()` asks for (default 100). */
  maxReadBatch?: number;
  /** Tries of one write, the first included (default 3). Retries wait 1 s, then 1.5 s (the writer's back-off). */
  maxWriteAttempts?: number;
  /** RPCs of a kind out at once before the next batch waits for one to answer (default 1). */
  maxRpcsInFlight?: number;
  /** The longest a batch waits for an RPC in flight to answer, ms (default 10). */
  maxHoldMs?: number;
}

/** The single-document calls of the delivery hot path, made one by one or coalesced. */
export interface DocumentCalls {
  get(ref: DocumentReference): Promise<DocumentSnapshot>;
  create(ref: DocumentReference, data: WithFieldValue<DocumentData>): Promise<WriteResult>;
  update(ref: DocumentReference, data: UpdateData<DocumentData>): Promise<WriteResult>;
  close(): Promise<void>;
}

/** Each call straight to Firestore: one RPC per call. */
export const DIRECT_CALLS: DocumentCalls = {
  get: (ref) => ref.get(),
  create: (ref, data) => ref.create(data),
  update: (ref, data) => ref.update(data),
  close: async () => undefined,
};

export class FirestoreCoalescer implements DocumentCalls {
  private readonly reads: DataLoader<DocumentReference, DocumentSnapshot>;
  private readonly maxWriteAttempts: number;
  /** Made on the first write, so a store that only reads holds no writer open. */
  private writer: BulkWriter | null = null;
  private flushScheduled = false;
  /**
   * Writes enqueued since the last flush. The flush's RPC counts as in flight until they settle,
   * or until a write is retried: a retry's back-off (1 to 1.5 s) is not a round trip to wait for.
   */
  private unflushed: Promise<WriteResult>[] = [];
  private retried = deferred();
  private readonly readGate: RpcGate;
  private readonly writeGate: RpcGate;
  private closed: Promise<void> | null = null;

  constructor(
    private readonly db: Firestore,
    opts: CoalescerOptions = {},
  ) {
    this.maxWriteAttempts = Math.max(1, opts.maxWriteAttempts ?? 3);
    const inFlight = Math.max(1, opts.maxRpcsInFlight ?? 1);
    const hold = Math.max(0, opts.maxHoldMs ?? 10);
    this.readGate = new RpcGate(inFlight, hold);
    this.writeGate = new RpcGate(inFlight, hold);
    this.reads = new DataLoader<DocumentReference, DocumentSnapshot>(
      // getAll() answers in the order asked, one snapshot per reference (a missing document
      // included, with exists false), and asks Firestore once for a reference given twice.
      (refs) => this.readGate.track(this.db.getAll(...refs)),
      {
        // No memoising: every load is a fresh read, as a single get() is.
        cache: false,
        maxBatchSize: Math.max(1, opts.maxReadBatch ?? 100),
        // At the end of the turn, after every request that arrived in it asked for its reads,
        // or later, when the read RPC before it answers: the batch stays open until then.
        batchScheduleFn: (dispatch) => this.readGate.schedule(dispatch),
      },
    );
  }

  /** The document, read together with the others asked for in this turn. */
  get(ref: DocumentReference): Promise<DocumentSnapshot> {
    if (this.closed) return DIRECT_CALLS.get(ref);
    return this.reads.load(ref);
  }

  /** Creates the document; rejects with `code` 6 (ALREADY_EXISTS) when it exists. */
  create(ref: DocumentReference, data: WithFieldValue<DocumentData>): Promise<WriteResult> {
    if (this.closed) return DIRECT_CALLS.create(ref, data);
    const op = this.bulkWriter().create(ref, data);
    this.scheduleFlush(op);
    return op;
  }

  /** Updates the document; rejects with `code` 5 (NOT_FOUND) when it does not exist. */
  update(ref: DocumentReference, data: UpdateData<DocumentData>): Promise<WriteResult> {
    if (this.closed) return DIRECT_CALLS.update(ref, data);
    const op = this.bulkWriter().update(ref, data);
    this.scheduleFlush(op);
    return op;
  }

  /**
   * Sends what is queued and waits for every write to settle and every read to be answered. Afterwards calls go to
   * Firestore one by one, so a push still running at shutdown is not refused by a closed writer.
   */
  close(): Promise<void> {
    if (!this.closed) {
      // Batches held back by the gates leave now, and are answered before the client can be
      // terminated (terminate() waits only for RPCs already sent).
      this.writeGate.releaseAll();
      const writes = this.writer ? this.writer.close() : Promise.resolve();
      this.closed = Promise.all([writes, this.readGate.idle()]).then(() => undefined);
    }
    return this.closed;
  }

  private bulkWriter(): BulkWriter {
    if (this.writer) return this.writer;
    // Throttling off: its ramp starts at 500 writes/s, below what one notifier sends.
    const writer = this.db.bulkWriter({ throttling: false });
    writer.onWriteError((err: BulkWriterError) => {
      // Nothing is retried once closing: close() then waits only for writes already sent.
      const retry =
        !this.closed && RETRIED_WRITE_CODES.has(err.code as number) && err.failedAttempts < this.maxWriteAttempts;
      if (retry) {
        // The flushes waiting on this write stop holding others back.
        this.retried.resolve();
        this.retried = deferred();
        // A retried write joins the writer's next batch: make sure that batch is sent, at the
        // end of this turn and not behind the gate, so fresh writes do not join its back-off.
        setImmediate(() => {
          if (this.writer && !this.closed) void this.writer.flush();
        });
      }
      return retry;
    });
    this.writer = writer;
    return writer;
  }

  /**
   * One flush per batch: the writer otherwise holds a batch until it has 20 writes (a full one
   * leaves at once, without waiting here). flush() sends the current batch; its promise
   * settles with the writes, which report on their own.
   */
  private scheduleFlush(op: Promise<WriteResult>): void {
    this.unflushed.push(op);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.writeGate.schedule(() => {
      this.flushScheduled = false;
      const sent = this.unflushed;
      this.unflushed = [];
      if (!this.writer || this.closed) return;
      void this.writer.flush();
      void this.writeGate.track(Promise.race([Promise.allSettled(sent), this.retried.promise]));
    });
  }
}
