import { type DocumentReference, FieldValue, Firestore } from '@google-cloud/firestore';
import { bucketData, bucketIds, bucketWrites, type IndexBucket, pagesOfBuckets } from './members';

async function pages(buckets: IndexBucket[], pageSize: number) {
  const out: { ids: string[]; cursor: string }[] = [];
  for await (const page of pagesOfBuckets(buckets, pageSize)) out.push(page);
  return out;
}

const bucket = (n: number, size: number): IndexBucket => ({
  id: `m${String(n).padStart(4, '0')}`,
  ids: Array.from({ length: size }, (_, i) => `b${n}-${i}`),
});

describe('pagesOfBuckets', () => {
  test('whole buckets, at most pageSize ids a page, each page as full as the next bucket allows', async () => {
    const buckets = [bucket(0, 3), bucket(1, 3), bucket(2, 3), bucket(3, 1), bucket(4, 2)];
    const out = await pages(buckets, 6);
    expect(out.map((p) => [p.ids.length, p.cursor])).toEqual([
      [6, 'm0001'],
      [6, 'm0004'],
    ]);
    expect(out.flatMap((p) => p.ids)).toEqual(buckets.flatMap((b) => b.ids));
  });

  test('a bucket larger than a page is a page alone, between the pages around it', async () => {
    const out = await pages([bucket(0, 2), bucket(1, 10), bucket(2, 2), bucket(3, 2)], 5);
    expect(out.map((p) => [p.ids.length, p.cursor])).toEqual([
      [2, 'm0000'],
      [10, 'm0001'],
      [4, 'm0003'],
    ]);
  });

  test('1,000 a page: 195-id buckets go five to a page (975), never 1,170 as two publish requests', async () => {
    const buckets = Array.from({ length: 128 }, (_, n) => bucket(n, 195));
    const out = await pages(buckets, 1000);
    expect(out.every((p) => p.ids.length <= 1000)).toBe(true);
    expect(out.slice(0, -1).every((p) => p.ids.length === 975)).toBe(true);
    expect(out.reduce((n, p) => n + p.ids.length, 0)).toBe(128 * 195);
  });

  test('empty buckets move no page boundary; nothing at all is no page', async () => {
    expect(await pages([bucket(0, 0), bucket(1, 0)], 2)).toEqual([]);
    const out = await pages([bucket(0, 1), bucket(1, 0), bucket(2, 1), bucket(3, 1)], 2);
    expect(out.map((p) => [p.ids, p.cursor])).toEqual([
      [['b0-0', 'b2-0'], 'm0002'],
      [['b3-0'], 'm0003'],
    ]);
  });

  test('a full page leaves before the next bucket is read', async () => {
    const pulled: string[] = [];
    async function* source() {
      for (const b of [bucket(0, 2), bucket(1, 1)]) {
        pulled.push(b.id);
        yield b;
      }
    }
    const it = pagesOfBuckets(source(), 2)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ ids: ['b0-0', 'b0-1'], cursor: 'm0000' });
    expect(pulled).toEqual(['m0000']);
    expect((await it.next()).value).toEqual({ ids: ['b1-0'], cursor: 'm0001' });
  });
});

describe('bucket documents', () => {
  const doc = (fields: Record<string, unknown>) => ({ get: (f: string) => fields[f] });

  test('ids are the list, then any map key set to true that the list lacks; anything else is passed over', () => {
    expect(bucketIds(doc({ list: ['a', 'b'] }))).toEqual(['a', 'b']);
    expect(bucketIds(doc({ ids: { a: true, b: true } }))).toEqual(['a', 'b']);
    expect(bucketIds(doc({ list: ['a', 7, '', null, 'c'], ids: { a: true, b: true, x: false, y: 'true' } }))).toEqual([
      'a',
      'c',
      'b',
    ]);
    expect(bucketIds(doc({ list: 'a,b', ids: [true] }))).toEqual([]);
    expect(bucketIds(doc({}))).toEqual([]);
  });

  test('a bucket that loses and gains ids is two writes, the removal first, from the list and the map', () => {
    // bucketData reads only the ids; the reference is the caller's.
    const ref = { path: 'schedules/s1/members/m0001' } as DocumentReference;
    const data = bucketData({ ref, add: ['n-in'], remove: ['n-out'] });
    expect(data).toHaveLength(2);
    const [removal, addition] = data as [Record<string, unknown>, Record<string, unknown>];
    expect((removal.list as FieldValue).isEqual(FieldValue.arrayRemove('n-out'))).toBe(true);
    expect((removal.ids as Record<string, FieldValue>)['n-out']?.isEqual(FieldValue.delete())).toBe(true);
    expect((addition.list as FieldValue).isEqual(FieldValue.arrayUnion('n-in'))).toBe(true);
    // An added id leaves the older map in the same write: moved, never held twice.
    expect(Object.keys(addition.ids as object)).toEqual(['n-in']);
    expect((addition.ids as Record<string, FieldValue>)['n-in']?.isEqual(FieldValue.delete())).toBe(true);
    // Only additions, or only removals: one write; nothing: none.
    expect(bucketData({ ref, add: ['n-in'], remove: [] })).toHaveLength(1);
    expect(bucketData({ ref, add: [], remove: ['n-out'] })).toHaveLength(1);
    expect(bucketData({ ref, add: [], remove: [] })).toEqual([]);
  });

  test('writes for one bucket gather every change to it, so a commit writes it once or twice', async () => {
    const db = new Firestore({ projectId: 'unit' });
    const writes = bucketWrites(db, [
      { id: 'n-1', from: 's1', to: 's2' },
      { id: 'n-1', from: 's2', to: 's2' },
    ]);
    expect(writes.map((w) => [w.ref.path.split('/')[1], w.add, w.remove])).toEqual([
      ['s1', [], ['n-1']],
      ['s2', ['n-1', 'n-1'], []],
    ]);
    // Nothing was sent; ended all the same, so no handle outlives the test.
    await db.terminate();
  });
});
