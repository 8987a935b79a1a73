import { timeLeft } from './progress';

describe('timeLeft', () => {
  it('guesses nothing before the first delivery is final', () => {
    expect(timeLeft(0, 500, 0)).toBe('waiting for the first');
    expect(timeLeft(0, 500, 12_000)).toBe('waiting for the first');
  });

  it('says the rest at the rate so far, in seconds, then minutes', () => {
    // 100 of 500 in 5 s: 400 more at 20/s.
    expect(timeLeft(100, 500, 5_000)).toBe('about 20s left');
    expect(timeLeft(499, 500, 10_000)).toBe('about 1s left');
    expect(timeLeft(10, 500, 5_000)).toBe('about 4m 05s left');
  });

  it('says done once every delivery is final', () => {
    expect(timeLeft(500, 500, 9_000)).toBe('done');
  });
});
