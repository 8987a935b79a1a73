import { InvalidArgumentError } from 'commander';

/**
 * A command-line option that takes a whole number from `min` to `max`, written in decimal:
 * `1e3`, `0x10` and `12abc` are errors that name the value, not 1000, 16 or 12.
 */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string): number => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** A whole number from 1 to `max` (see wholeNumber). */
export function positiveInt(max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return wholeNumber(1, max);
}
