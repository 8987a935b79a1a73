import type { Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import { documentStorageSize, MAX_DOCUMENT_BYTES } from '../shared/model';
import { COLLECTIONS } from '../shared/topology';

/** documentStorageSize against the emulator's own limit: the import check refuses what Firestore would. */
let db: Firestore;
beforeAll(() => {
  db = createFirestore(uniqueProjectId('docsize'));
});
afterAll(async () => {
  await db.terminate();
});

test('a document of exactly 1 MiB by documentStorageSize is written, and one byte more is refused', async () => {
  const base = { name: 'x', metrics: [{ label: 'a', value: 1, change: 1 }], highlights: [''] };
  const sized = (bytes: number) => {
    const pad = bytes - documentStorageSize([COLLECTIONS.accounts, 'acc'], base);
    const doc = { ...base, highlights: ['y'.repeat(pad)] };
    expect(documentStorageSize([COLLECTIONS.accounts, 'acc'], doc)).toBe(bytes);
    return doc;
  };
  const ref = db.collection(COLLECTIONS.accounts).doc('acc');
  await expect(ref.set(sized(MAX_DOCUMENT_BYTES))).resolves.toBeDefined();
  await expect(ref.set(sized(MAX_DOCUMENT_BYTES + 1))).rejects.toThrow(/maximum entity size is 1048576 bytes/);
});
