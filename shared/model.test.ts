import { documentStorageSize } from './model';

describe('documentStorageSize (how Firestore counts a document against its 1 MiB)', () => {
  it('gives 147 bytes for the example of Firestore’s storage-size page', () => {
    const task = { type: 'Personal', done: false, priority: 1, description: 'Learn Cloud Firestore' };
    expect(documentStorageSize(['users', 'jeff', 'tasks', 'my_task_id'], task)).toBe(147);
  });

  it('counts a number as 8 bytes, a string and a field name as their UTF-8 and 1, maps and arrays as what they hold', () => {
    const empty = documentStorageSize(['c', 'd'], {});
    expect(empty).toBe(2 + 2 + 16 + 32);
    expect(documentStorageSize(['c', 'd'], { n: 1 }) - empty).toBe(2 + 8);
    expect(documentStorageSize(['c', 'd'], { s: 'é' }) - empty).toBe(2 + 3);
    expect(documentStorageSize(['c', 'd'], { a: [1, 'x', null, true] }) - empty).toBe(2 + 8 + 2 + 1 + 1);
    expect(documentStorageSize(['c', 'd'], { m: { k: 1 } }) - empty).toBe(2 + 2 + 8);
    expect(documentStorageSize(['c', 'd'], { gone: undefined })).toBe(empty);
  });
});
