import { z } from 'zod';

/**
 * zod, with its messages for text too short or too long, and a number out of its range, said
 * the way this project's own checks say a problem ("is blank", "is not well-formed Unicode"):
 * as what is wrong with the value, after the field's name; a number that is NaN or infinite is
 * named as such. zod's own words ("Too small:
 * expected string to have >=1 characters") are kept for everything else. A schema's own
 * message still comes first. Every module takes zod from here, so the messages are the same
 * whichever is loaded first.
 */
type RawIssue = { code?: string; expected?: unknown; errors?: readonly (readonly RawIssue[])[] };

/** Whether a type or union issue is about a value that should have been a number. */
function expectsNumber(issue: RawIssue): boolean {
  if (issue.code === 'invalid_type') return issue.expected === 'number';
  if (issue.code === 'invalid_union') return (issue.errors ?? []).some((branch) => branch.some(expectsNumber));
  return false;
}

/** A type's name with its article: `a string`, `an object`. */
function withArticle(type: string): string {
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** The types a union takes, each with its article, where every branch refused the value's type alone; else null. */
function unionTypes(issue: RawIssue): string[] | null {
  if (issue.code !== 'invalid_union' || !issue.errors || issue.errors.length === 0) return null;
  const types: string[] = [];
  for (const branch of issue.errors) {
    const only = branch.length === 1 ? branch[0] : undefined;
    if (only?.code !== 'invalid_type' || typeof only.expected !== 'string') return null;
    types.push(withArticle(only.expected));
  }
  return types;
}

/** What a value is, in an error about its type: `null`, `array`, `date`, a class's name, or its typeof. */
function received(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  if (input instanceof Date) return 'date';
  if (typeof input === 'object') {
    const name = (input as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' && name !== 'Object' ? name : 'object';
  }
  return typeof input;
}

z.config({
  customError: (issue) => {
    // NaN and ±Infinity are numbers to JavaScript, and Firestore stores them, but no number field
    // takes one: zod's "Invalid input" would not say why (a union of a number and a string says
    // that). Only where a number was expected: a boolean or text field keeps zod's words.
    if (typeof issue.input === 'number' && !Number.isFinite(issue.input) && expectsNumber(issue)) {
      return `is not a finite number (${issue.input})`;
    }
    // A field left out: zod says "expected string, received undefined", which reads as a type
    // gone wrong. A JSON body or file cannot hold undefined, so the field is missing.
    if (issue.code === 'invalid_type' && issue.input === undefined && typeof issue.expected === 'string') {
      return `is missing (expected ${withArticle(issue.expected)})`;
    }
    // A boolean or a number given as text ("false", "3"), as a form or a spreadsheet writes it:
    // said with the value to give, without the quotes.
    if (
      issue.code === 'invalid_type' &&
      typeof issue.input === 'string' &&
      ((issue.expected === 'boolean' && /^(true|false)$/.test(issue.input.trim())) ||
        (issue.expected === 'number' && issue.input.trim() !== '' && Number.isFinite(Number(issue.input))))
    ) {
      return `is the text ${JSON.stringify(issue.input)}: give ${issue.input.trim()}, without the quotes (expected ${withArticle(issue.expected)})`;
    }
    // A union of types refused (a number or a string given a null, a date, a list): zod says
    // "Invalid input", which names neither what it takes nor what it got.
    const expected = unionTypes(issue);
    if (expected !== null) {
      return issue.input === undefined
        ? `is missing (expected ${expected.join(' or ')})`
        : `expected ${expected.join(' or ')}, received ${received(issue.input)}`;
    }
    if (issue.origin === 'number' && issue.code === 'too_small') {
      return issue.inclusive ? `must be at least ${issue.minimum}` : `must be more than ${issue.minimum}`;
    }
    if (issue.origin === 'number' && issue.code === 'too_big') {
      return issue.inclusive ? `must be at most ${issue.maximum}` : `must be less than ${issue.maximum}`;
    }
    // zod's "Unrecognized key: "colour"" says it in its own words: named as the field it is.
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => JSON.stringify(k));
      return `unknown ${keys.length === 1 ? 'field' : 'fields'} ${keys.join(', ')}`;
    }
    if (issue.origin !== 'string') return undefined;
    if (issue.code === 'too_small') {
      return Number(issue.minimum) === 1 ? 'is empty' : `is shorter than ${issue.minimum} characters`;
    }
    if (issue.code === 'too_big') {
      const length = typeof issue.input === 'string' ? issue.input.length : null;
      return `is longer than ${issue.maximum} characters${length === null ? '' : ` (${length})`}`;
    }
    return undefined;
  },
});

export { z };
