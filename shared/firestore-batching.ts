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
 */

/** gRPC status codes, as Firestore reports them per write. */
export const CODES = Object.freeze({
  DEADLINE_EXCEEDED: 4,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  UNAVAILABLE: 14,
});

/**
 * Per-write failures tried again by the writer, at most `maxWriteAttempts` times in all.
 * ABORTED (contention) and UNAVAILABLE are transient. Both are safe for a claim's create: if
 * an earlier try did land, the retry comes back ALREADY_EXISTS, the claim reads the record,
 * finds its own live `sending` claim and answers busy, and the push is retried once the claim
 * expires (as a claim whose outcome is unknown: the channel is checked before posting). Not
 * retried here: RESOURCE_EXHAUSTED (the writer backs it off by 60 s, past the push deadline;
 * Pub/Sub's redelivery is the better back-off) and DEADLINE_EXCEEDED (the RPC already waited
 * its full timeout). The RPC as a whole is retried by the client itself, as for any write.
 * A retry waits out its back-off in the writer's next batch, and the fresh writes that join
 * that batch wait with it: rare, and bounded by the same 1 to 1.5 s.
 */
const RETRIED_WRITE_CODES: ReadonlySet<number> = new Set([CODES.ABORTED, CODES.UNAVAILABLE]);

export interface CoalescerOptions {
  /** The most documents one `getAll()` asks for (default 100). */
  maxReadBatch?: number;
  /** Tries of one write, the first included (default 3). Retries wait 1 s, then 1.5 s (the writer's back-off). */
  maxWriteAttempts?: number;
}

export class FirestoreCoalescer {
  private readonly reads: DataLoader<DocumentReference, DocumentSnapshot>;
  private readonly maxWriteAttempts: number;
  /** Made on the first write, so a store that only reads holds no writer open. */
  private writer: BulkWriter | null = null;
  private flushScheduled = false;
  private closed: Promise<void> | null = null;

  constructor(
    private readonly db: Firestore,
    opts: CoalescerOptions = {},
  ) {
    this.maxWriteAttempts = Math.max(1, opts.maxWriteAttempts ?? 3);
    this.reads = new DataLoader<DocumentReference, DocumentSnapshot>(
      // getAll() answers in the order asked, one snapshot per reference (a missing document
      // included, with exists false), and asks Firestore once for a reference given twice.
      (refs) => this.db.getAll(...refs),
      {
        // No memoising: every load is a fresh read, as a single get() is.
        cache: false,
        maxBatchSize: Math.max(1, opts.maxReadBatch ?? 100),
        // At the end of the turn, after every request that arrived in it asked for its reads.
        batchScheduleFn: (dispatch) => setImmediate(dispatch),
      },
    );
  }

  /** The document, read together with the others asked for in this turn. */
  get(ref: DocumentReference): Promise<DocumentSnapshot> {
    if (this.closed) return ref.get();
    return this.reads.load(ref);
  }

  /** Creates the document; rejects with `code` 6 (ALREADY_EXISTS) when it exists. */
  create(ref: DocumentReference, data: WithFieldValue<DocumentData>): Promise<WriteResult> {
    if (this.closed) return ref.create(data);
    const op = this.bulkWriter().create(ref, data);
    this.scheduleFlush();
    return op;
  }

  /** Updates the document; rejects with `code` 5 (NOT_FOUND) when it does not exist. */
  update(ref: DocumentReference, data: UpdateData<DocumentData>): Promise<WriteResult> {
    if (this.closed) return ref.update(data);
    const op = this.bulkWriter().update(ref, data);
    this.scheduleFlush();
    return op;
  }

  /**
   * Sends what is queued and waits for every write to settle. Afterwards calls go to
   * Firestore one by one, so a push still running at shutdown is not refused by a closed writer.
   */
  close(): Promise<void> {
    if (!this.closed) this.closed = this.writer ? this.writer.close() : Promise.resolve();
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
      // A retried write joins the writer's next batch: make sure that batch is sent.
      if (retry) this.scheduleFlush();
      return retry;
    });
    this.writer = writer;
    return writer;
  }

  /**
   * One flush per turn: the writer otherwise holds a batch until it has 20 writes. flush()
   * sends the current batch; its promise settles with the writes, which report on their own.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.writer && !this.closed) void this.writer.flush();
    });
  }
}
