import { onSignalTwice, SIGNAL_REPEAT_MS } from './signals';

describe('onSignalTwice', () => {
  afterEach(() => jest.restoreAllMocks());

  it('takes a repeat of the first signal at once as the same one, and a later one as a second', () => {
    let now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    const calls: string[] = [];
    const remove = onSignalTwice(
      'SIGUSR2',
      () => calls.push('first'),
      () => calls.push('again'),
    );
    try {
      process.emit('SIGUSR2');
      // npm passing the same Ctrl-C on: the same stop.
      now += 50;
      process.emit('SIGUSR2');
      expect(calls).toEqual(['first']);
      now += SIGNAL_REPEAT_MS;
      process.emit('SIGUSR2');
      expect(calls).toEqual(['first', 'again']);
    } finally {
      remove();
    }
    process.emit('SIGUSR2');
    expect(calls).toEqual(['first', 'again']);
  });
});
