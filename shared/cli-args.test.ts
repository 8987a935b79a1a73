import { InvalidArgumentError } from 'commander';
import { positiveInt } from './cli-args';

describe('positiveInt', () => {
  it.each([
    ['1', 1],
    ['200', 200],
    [' 42 ', 42],
  ])('reads %j as %i', (value, n) => {
    expect(positiveInt(1000)(value)).toBe(n);
  });

  it.each(['0', '-3', '1.5', '1e3', '0x10', '12abc', '', 'abc', '1001'])('refuses %j, naming it', (value) => {
    expect(() => positiveInt(1000)(value)).toThrow(InvalidArgumentError);
    expect(() => positiveInt(1000)(value)).toThrow(
      `expected a whole number from 1 to 1000, got ${JSON.stringify(value)}`,
    );
  });

  it('without a maximum, says ≥ 1', () => {
    expect(() => positiveInt()('0')).toThrow('expected a whole number ≥ 1, got "0"');
  });
});
