import { InvalidArgumentError } from 'commander';

/**
 * A command-line option that takes a whole number from 1 to `max`, written in decimal:
 * `1e3`, `0x10` and `12abc` are errors that name the value, not 1000, 16 or 12.
 */
export function positiveInt(max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string): number => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? '≥ 1' : `from 1 to ${max}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}
