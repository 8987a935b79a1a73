import { onSignalTwice, onStopSignals, SIGNAL_REPEAT_MS, STOP_SIGNALS, signalExitCode, stopName } from './signals';

// process.emit calls the listeners as a delivered signal would, without sending one.
const signal = 'SIGUSR2';
const emit = () => process.emit(signal);

describe('onSignalTwice', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
    process.removeAllListeners(signal);
  });

  it('takes a repeat within the window for the first signal, and a later one for a second', () => {
    const first = jest.fn();
    const again = jest.fn();
    const remove = onSignalTwice(signal, first, again);
    emit();
    jest.advanceTimersByTime(SIGNAL_REPEAT_MS - 1);
    emit();
    expect(first).toHaveBeenCalledTimes(1);
    expect(again).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    emit();
    expect(again).toHaveBeenCalledTimes(1);
    remove();
    expect(process.listenerCount(signal)).toBe(0);
  });

  it('takes npm passing the same Ctrl-C on as one stop, and stops listening once removed', () => {
    const calls: string[] = [];
    const remove = onSignalTwice(
      signal,
      () => calls.push('first'),
      () => calls.push('again'),
    );
    try {
      emit();
      jest.advanceTimersByTime(50);
      emit();
      expect(calls).toEqual(['first']);
      jest.advanceTimersByTime(SIGNAL_REPEAT_MS);
      emit();
      expect(calls).toEqual(['first', 'again']);
    } finally {
      remove();
    }
    emit();
    expect(calls).toEqual(['first', 'again']);
  });

  it('removed within the window, still passes over the signal until the window ends', () => {
    const first = jest.fn();
    const again = jest.fn();
    const remove = onSignalTwice(signal, first, again);
    emit();
    jest.advanceTimersByTime(400);
    remove();
    // Something still listens, so the repeat does not end the process as the default would.
    expect(process.listenerCount(signal)).toBe(1);
    emit();
    expect(first).toHaveBeenCalledTimes(1);
    expect(again).not.toHaveBeenCalled();
    jest.advanceTimersByTime(SIGNAL_REPEAT_MS - 400);
    expect(process.listenerCount(signal)).toBe(0);
  });

  it('removed with no signal seen, or twice, leaves nothing listening', () => {
    const remove = onSignalTwice(signal, jest.fn(), jest.fn());
    remove();
    remove();
    expect(process.listenerCount(signal)).toBe(0);
  });
});

describe('onStopSignals', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('takes the first of SIGINT, SIGTERM and SIGHUP as the stop, and any later one as the second', () => {
    const before = STOP_SIGNALS.map((s) => process.listenerCount(s));
    const first = jest.fn();
    const again = jest.fn();
    const { remove } = onStopSignals(first, again);
    process.emit('SIGTERM');
    // npm's repeat of it, within the window: the same stop.
    process.emit('SIGTERM');
    expect(first.mock.calls).toEqual([['SIGTERM']]);
    expect(again).not.toHaveBeenCalled();
    // Another signal, even at once, is a second stop.
    process.emit('SIGINT');
    expect(again.mock.calls).toEqual([['SIGINT']]);
    jest.advanceTimersByTime(SIGNAL_REPEAT_MS);
    process.emit('SIGHUP');
    expect(again.mock.calls).toEqual([['SIGINT'], ['SIGHUP']]);
    expect(first).toHaveBeenCalledTimes(1);
    remove();
    jest.advanceTimersByTime(SIGNAL_REPEAT_MS);
    expect(STOP_SIGNALS.map((s) => process.listenerCount(s))).toEqual(before);
  });

  it('exits as a shell reports a process the signal ended, and names Ctrl-C as such', () => {
    expect(STOP_SIGNALS.map(signalExitCode)).toEqual([130, 143, 129]);
    expect(STOP_SIGNALS.map(stopName)).toEqual(['Ctrl-C', 'SIGTERM', 'SIGHUP']);
  });
});
