import { PassThrough } from 'node:stream';
import { Firestore, Query } from '@google-cloud/firestore';
import { bucketsPerRead, FirestoreStore } from './firestore-store';

/** The index stream of a run that stops early (the query itself is faked: no emulator here). */
describe('notificationPages stopped early', () => {
  it('leaves the stream flowing to its end, not destroyed, and an error then does not escape', async () => {
    const fake = new PassThrough({ objectMode: true });
    const stream = jest.spyOn(Query.prototype, 'stream').mockReturnValue(fake as never);
    const db = new Firestore({ projectId: 'unit' });
    try {
      const bucket = (id: string, ids: string[]) => ({
        id,
        get: (field: string) => (field === 'list' ? ids : undefined),
      });
      const pages = new FirestoreStore(db).notificationPages('s_1', null, 2)[Symbol.asyncIterator]();
      fake.write(bucket('m0000', ['n-2', 'n-1']));
      // The ids in the order the bucket's list keeps them.
      expect(await pages.next()).toEqual({ done: false, value: { ids: ['n-2', 'n-1'], cursor: 'm0000' } });
      await pages.return(undefined);
      await new Promise((resolve) => setImmediate(resolve));
      // The client cannot cancel its call: the rest is read and dropped, so the call ends.
      expect(fake.destroyed).toBe(false);
      expect(fake.readableFlowing).toBe(true);
      fake.write(bucket('m0001', ['n-3']));
      await new Promise((resolve) => setImmediate(resolve));
      expect(fake.readableLength).toBe(0);
      // Firestore failing meanwhile is no one's to handle: it must not be an uncaught error.
      fake.destroy(new Error('14 UNAVAILABLE'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(fake.destroyed).toBe(true);
    } finally {
      stream.mockRestore();
      await db.terminate();
    }
  });
});

describe('bucketsPerRead (reading the index at a past time)', () => {
  it('asks for as many buckets as hold about 50,000 ids at the last read’s size, up to 256, and never none', () => {
    expect(bucketsPerRead(8, 8 * 195)).toBe(256);
    expect(bucketsPerRead(8, 8 * 1_000)).toBe(50);
    expect(bucketsPerRead(32, 32 * 5_000)).toBe(10);
    expect(bucketsPerRead(10, 10 * 20_000)).toBe(2);
    expect(bucketsPerRead(1, 80_000)).toBe(1);
    expect(bucketsPerRead(0, 0)).toBe(1);
  });
});
