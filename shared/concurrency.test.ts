import { chunksOf, KeyedSerial, mapLimit, raceTimeout, Semaphore, unlessDrained } from './concurrency';

describe('mapLimit', () => {
  it('keeps input order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n, i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return `${i}:${n}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3', '5:0']);
    expect(peak).toBe(2);
  });

  it('handles an empty list and rejects a bad limit', async () => {
    await expect(mapLimit([], 3, async () => 1)).resolves.toEqual([]);
    await expect(mapLimit([1], 0, async () => 1)).rejects.toThrow('positive integer');
  });

  it('rejects with the first failure', async () => {
    await expect(
      mapLimit([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error('boom 2');
        return n;
      }),
    ).rejects.toThrow('boom 2');
  });
});

describe('mapLimit after a failure', () => {
  it('starts nothing more, and rejects only once the calls in flight have ended', async () => {
    const started: number[] = [];
    let slowEnded = false;
    const run = mapLimit([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      if (n === 0) {
        await new Promise((r) => setTimeout(r, 30));
        slowEnded = true;
        return n;
      }
      throw new Error(`boom ${n}`);
    });
    await expect(run).rejects.toThrow('boom 1');
    expect(started).toEqual([0, 1]);
    expect(slowEnded).toBe(true);
  });
});

describe('chunksOf', () => {
  it('slices in order, the last slice shorter', () => {
    expect(chunksOf([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunksOf([], 3)).toEqual([]);
    expect(() => chunksOf([1], 0)).toThrow('positive integer');
  });
});

describe('unlessDrained', () => {
  it('answers the value when the promise settles first, and passes its rejection on', async () => {
    expect(await unlessDrained(Promise.resolve(7), () => false, 0)).toEqual({ drained: false, value: 7 });
    await expect(unlessDrained(Promise.reject(new Error('refused')), () => false, 0)).rejects.toThrow('refused');
  });

  it('answers drained at once when already draining with no grace, and leaves the promise', async () => {
    const never = new Promise<number>(() => undefined);
    const t0 = Date.now();
    expect(await unlessDrained(never, () => true, 0, 1000)).toEqual({ drained: true });
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('waits the grace counted from when draining starts, not from the call', async () => {
    let draining = false;
    const never = new Promise<number>(() => undefined);
    const t0 = Date.now();
    setTimeout(() => {
      draining = true;
    }, 100);
    expect(await unlessDrained(never, () => draining, 150, 10)).toEqual({ drained: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
  });

  it('a promise that rejects after the drain won is not an unhandled rejection', async () => {
    let reject: (e: Error) => void = () => undefined;
    const late = new Promise<number>((_r, j) => {
      reject = j;
    });
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      expect(await unlessDrained(late, () => true, 0)).toEqual({ drained: true });
      reject(new Error('too late'));
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });
});

describe('Semaphore', () => {
  it('holds at most size at once, hands slots on in the order asked, and releases once', async () => {
    const sem = new Semaphore(2);
    const order: string[] = [];
    const a = await sem.acquire();
    const b = await sem.acquire();
    const c = sem.acquire().then((release) => {
      order.push('c');
      return release;
    });
    const d = sem.acquire().then((release) => {
      order.push('d');
      return release;
    });
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    expect(sem.queued).toBe(2);
    a();
    // A second release of the same slot frees nothing more.
    a();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['c']);
    b();
    (await c)();
    (await d)();
    expect(order).toEqual(['c', 'd']);
    expect(sem.queued).toBe(0);
    // All free again: two at once, not three.
    await sem.acquire();
    await sem.acquire();
    let third = false;
    void sem.acquire().then(() => {
      third = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new Semaphore(0)).toThrow('size must be a positive integer, got 0');
    expect(() => new Semaphore(1.5)).toThrow(RangeError);
  });
});

describe('raceTimeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('answers the promise when it settles first, and leaves no timer behind', async () => {
    await expect(raceTimeout(Promise.resolve(7), 1000, () => null)).resolves.toBe(7);
    await expect(raceTimeout(Promise.reject(new Error('boom')), 1000, () => null)).rejects.toThrow('boom');
    expect(jest.getTimerCount()).toBe(0);
  });

  it("answers onTimeout's value, or rejects with what it throws, once the time is up first", async () => {
    const never = new Promise<number>(() => undefined);
    const valued = raceTimeout(never, 1000, () => 'late' as const);
    const thrown = raceTimeout(never, 1000, (): never => {
      throw new Error('did not answer within 1000 ms');
    });
    const thrownSeen = expect(thrown).rejects.toThrow('did not answer within 1000 ms');
    jest.advanceTimersByTime(999);
    expect(jest.getTimerCount()).toBe(2);
    jest.advanceTimersByTime(1);
    await expect(valued).resolves.toBe('late');
    await thrownSeen;
  });

  it('with unref, the timer does not hold the process', () => {
    jest.useRealTimers();
    const unref = jest.spyOn(global, 'setTimeout');
    void raceTimeout(Promise.resolve(1), 1000, () => null, true);
    const timer = unref.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    unref.mockRestore();
  });
});

describe('KeyedSerial', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it("runs one key's tasks one after another, in order, and other keys side by side", async () => {
    const serial = new KeyedSerial();
    const log: string[] = [];
    let running = 0;
    let peakA = 0;
    const task = (key: string, i: number) => async () => {
      if (key === 'a') peakA = Math.max(peakA, ++running);
      log.push(`${key}${i}+`);
      await tick();
      log.push(`${key}${i}-`);
      if (key === 'a') running--;
      return `${key}${i}`;
    };
    const out = await Promise.all([
      serial.run('a', task('a', 1)),
      serial.run('a', task('a', 2)),
      serial.run('b', task('b', 1)),
      serial.run('a', task('a', 3)),
    ]);
    expect(out).toEqual(['a1', 'a2', 'b1', 'a3']);
    expect(peakA).toBe(1);
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    // b started while a1 ran.
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
  });

  it('a failed task rejects its own call only, and the next runs; keys are forgotten once done', async () => {
    const serial = new KeyedSerial();
    const failed = serial.run('a', async () => {
      await tick();
      throw new Error('boom');
    });
    const next = serial.run('a', async () => 'next');
    expect(serial.size).toBe(1);
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
    await tick();
    expect(serial.size).toBe(0);
  });
});
