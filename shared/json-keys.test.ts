import { keyPathText, keysGivenTwice, keysGivenTwiceIfShallow } from './json-keys';

describe('keysGivenTwice', () => {
  it('names each key written twice in one object, where the object is', () => {
    const text = JSON.stringify([{ id: 'a', accountId: 'x' }]).replace(
      '"accountId":"x"',
      '"accountId":"x","accountId":"y"',
    );
    expect(keysGivenTwice(text)).toEqual([{ path: [0], key: 'accountId' }]);
    const nested = '[{"id":"a"},{"id":"b","slack":{"channelId":"C1","teamId":"T","channelId":"C2"}}]';
    expect(keysGivenTwice(nested)).toEqual([{ path: [1, 'slack'], key: 'channelId' }]);
    expect(keysGivenTwice('{"a":1,"a":2,"a":3}')).toEqual([
      { path: [], key: 'a' },
      { path: [], key: 'a' },
    ]);
  });

  it('takes the same key in different objects, and keys that differ only in case', () => {
    expect(keysGivenTwice('[{"id":"a","x":{"id":"b"}},{"id":"c"},{"ID":"d","id":"e"}]')).toEqual([]);
    // As JSON.parse reads them: "\u0069d" is "id".
    expect(keysGivenTwice('{"id":"a","\\u0069d":"b"}')).toEqual([{ path: [], key: 'id' }]);
  });

  it('finds none in a text that is not JSON (JSON.parse says what is wrong with it)', () => {
    expect(keysGivenTwice('{"a":1 "a":2}')).toEqual([]);
    expect(keysGivenTwice('{"a":1,"a":2,}')).toEqual([]);
    expect(keysGivenTwice('{"a":1,"a":2} // note')).toEqual([]);
  });

  it('looks past a byte-order mark, as the body parser does', () => {
    expect(keysGivenTwice('\ufeff{"a":1,"a":2}')).toEqual([{ path: [], key: 'a' }]);
  });

  it('names at most `max`', () => {
    const text = `[${Array.from({ length: 50 }, () => '{"a":1,"a":2}').join(',')}]`;
    expect(keysGivenTwice(text, 3)).toHaveLength(3);
  });

  it('finds none in a text nested too deep to walk, rather than overflow the stack', () => {
    const deep = `${'['.repeat(20_000)}{"a":1,"a":2}${']'.repeat(20_000)}`;
    expect(() => keysGivenTwice(deep)).toThrow(RangeError);
    expect(keysGivenTwiceIfShallow(deep)).toEqual([]);
    expect(keysGivenTwiceIfShallow('{"a":1,"a":2}')).toEqual([{ path: [], key: 'a' }]);
  });

  it('writes a path as an error names it', () => {
    expect(keyPathText([], 'accountId')).toBe('accountId');
    expect(keyPathText([0], 'accountId')).toBe('[0].accountId');
    expect(keyPathText(['slack'], 'channelId')).toBe('slack.channelId');
    expect(keyPathText([3, 'metrics', 1], 'label')).toBe('[3].metrics[1].label');
  });
});
