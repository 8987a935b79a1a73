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
z.config({
  customError: (issue) => {
    // NaN and ±Infinity are numbers to JavaScript, and Firestore stores them, but no field takes
    // one: zod's "Invalid input" would not say why (a number or a string field says it of a union).
    if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && typeof issue.input === 'number') {
      if (!Number.isFinite(issue.input)) return `is not a finite number (${issue.input})`;
    }
    if (issue.origin === 'number' && issue.code === 'too_small') {
      return issue.inclusive ? `must be at least ${issue.minimum}` : `must be more than ${issue.minimum}`;
    }
    if (issue.origin === 'number' && issue.code === 'too_big') {
      return issue.inclusive ? `must be at most ${issue.maximum}` : `must be less than ${issue.maximum}`;
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
