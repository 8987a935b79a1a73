import { type JSONPath, visit } from 'jsonc-parser';

/** JSON as JSON.parse reads it, for a walk of the text: a comment or a trailing comma is a fault. */
const AS_JSON_PARSE_READS = { disallowComments: true, allowTrailingComma: false } as const;

/** A key written twice in one object of a JSON text: where the object is, and the key. */
export interface KeyGivenTwice {
  /** The object's place in the text's value: `[0, 'slack']` is the first entry's `slack`. */
  path: JSONPath;
  key: string;
}

/**
 * The keys written twice in one object of a JSON text, in the order met, at most `max`.
 * JSON.parse keeps the last of them without a word, so `{"accountId": "a", "accountId": "b"}`
 * would be read as account b: where a person wrote the text, either may have been meant.
 * None in a text that is not JSON: its fault is said by JSON.parse.
 */
export function keysGivenTwice(text: string, max = 20): KeyGivenTwice[] {
  const found: KeyGivenTwice[] = [];
  const open: Set<string>[] = [];
  let broken = false;
  visit(
    // A byte-order mark, which the body parser and an import's reading drop, is not a fault here.
    text.startsWith('\ufeff') ? text.slice(1) : text,
    {
      // Text that is not JSON is read on past its fault by the walk: what it would find is not said.
      onError: () => {
        broken = true;
      },
      onObjectBegin: () => {
        open.push(new Set());
      },
      onObjectEnd: () => {
        open.pop();
      },
      onObjectProperty: (key, _offset, _length, _line, _column, pathOf) => {
        const keys = open.at(-1);
        if (keys === undefined) return;
        if (!keys.has(key)) keys.add(key);
        else if (found.length < max) found.push({ path: pathOf(), key });
      },
    },
    AS_JSON_PARSE_READS,
  );
  return broken ? [] : found;
}

/**
 * Where the first fault of a text that is not JSON lies, read as JSON.parse reads it (a comment
 * or a trailing comma is a fault): its offset in the text, or undefined for a text without one,
 * or one nested too deep to walk. JSON.parse names a position for some faults only (not for a
 * misspelt `tru`, a comment at the start, a trailing comma, nor a text that ends too soon).
 */
export function firstFaultOffset(text: string): number | undefined {
  let offset: number | undefined;
  try {
    visit(
      text,
      {
        onError: (_error, at) => {
          offset ??= at;
        },
      },
      AS_JSON_PARSE_READS,
    );
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
  return offset;
}

/** A path and key as an error names them: `[0].slack.channelId`, or `accountId` at the top. */
export function keyPathText(path: JSONPath, key: string): string {
  return [...path, key]
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

/**
 * keysGivenTwice, or none for a text nested too deep to walk (thousands of levels: the walk
 * recurses): such a text is refused for its depth or its shape all the same, and a key given
 * twice in it is named once it is mended.
 */
export function keysGivenTwiceIfShallow(text: string, max = 10_000): KeyGivenTwice[] {
  try {
    return keysGivenTwice(text, max);
  } catch (err) {
    if (err instanceof RangeError) return [];
    throw err;
  }
}
