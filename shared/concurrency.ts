/**
 * Maps `items` through `fn` with at most `limit` calls in flight, results in input order.
 * The first failure rejects the whole map once the calls already started have ended; no call
 * starts after it.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  // allSettled: the caller hears of a failure only when nothing of the map is still running.
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

/**
 * Runs the tasks given one key one after another, in the order given, and those of different
 * keys side by side. A task that fails does not hold up the next. A key is forgotten once its
 * last task has ended.
 */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** The keys with a task waiting or running. */
  get size(): number {
    return this.tails.size;
  }
}

/**
 * At most `size` holders at once: `acquire()` resolves, in the order asked, with the slot's
 * release (safe to call twice) once a slot is free.
 */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
    this.free = size;
  }

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          const next = this.waiting.shift();
          if (next) next();
          else this.free++;
        });
      };
      if (this.free > 0) {
        this.free--;
        grant();
      } else this.waiting.push(grant);
    });
  }

  /** Holders waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}

/** `items` in consecutive slices of at most `size`. */
export function chunksOf<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A promise and the function that resolves it, for a wait that something else ends. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Waits for `promise`, unless the service drains: once `isDraining()` reads true (checked now,
 * then every `pollMs`), at most `graceMs` more, then answers `{ drained: true }` and leaves the
 * promise to itself. A hold that a shutdown cuts short (grace 0), and a wait on Pub/Sub or
 * Firestore that must not outlast the shutdown grace, are both this.
 */
export async function unlessDrained<T>(
  promise: Promise<T>,
  isDraining: () => boolean,
  graceMs: number,
  pollMs = 100,
): Promise<{ drained: false; value: T } | { drained: true }> {
  let timer: NodeJS.Timeout | undefined;
  const drained = new Promise<{ drained: true }>((resolve) => {
    let since: number | null = null;
    const check = () => {
      if (!isDraining()) return;
      since ??= Date.now();
      if (Date.now() - since >= graceMs) resolve({ drained: true });
    };
    check();
    timer = setInterval(check, pollMs);
  });
  try {
    return await Promise.race([promise.then((value) => ({ drained: false as const, value })), drained]);
  } finally {
    clearInterval(timer);
  }
}

/**
 * What `promise` gives if it settles within `ms`, else null (with `ms` undefined, whenever it
 * settles); the timer does not outlive it, and with `unref` does not hold the process either.
 */
export function within<T>(promise: Promise<T>, ms: number | undefined, unref = false): Promise<T | null> {
  return ms === undefined ? promise : raceTimeout(promise, ms, () => null, unref);
}

/**
 * `promise`'s outcome, or `onTimeout()`'s (its value, or what it throws) once `ms` have passed
 * first. The timer is cleared either way; `unref` lets the process end while it runs.
 */
export async function raceTimeout<T, U>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => U,
  unref = false,
): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<U>((resolve, reject) => {
        timer = setTimeout(() => {
          try {
            resolve(onTimeout());
          } catch (err) {
            reject(err);
          }
        }, ms);
        if (unref) timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
