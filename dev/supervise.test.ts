import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { howExited } from './emulators';
import type { ServiceProcess } from './processes';
import { superviseService } from './supervise';

/** A service whose child only emits what the test says: exited ones need no signal to stop. */
function fakeService(
  port: number,
): ServiceProcess & { exit(code: number | null, signal: NodeJS.Signals | null): void } {
  const child = new EventEmitter() as unknown as ChildProcess & { exitCode: number | null; signalCode: string | null };
  child.exitCode = null;
  child.signalCode = null;
  return {
    name: 'notifier',
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    exit(code, signal) {
      child.exitCode = code;
      child.signalCode = signal;
      child.emit('exit', code, signal);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('superviseService', () => {
  it('starts a service that exits unasked again, says so, and hands out the new instance', async () => {
    const started: ReturnType<typeof fakeService>[] = [];
    const lines: string[] = [];
    const gaveUp: string[] = [];
    const s = await superviseService(
      async () => {
        const next = fakeService(1000 + started.length);
        started.push(next);
        return next;
      },
      { say: (l) => lines.push(l), onGiveUp: (w) => gaveUp.push(w) },
    );
    expect(s.current().port).toBe(1000);
    started[0]?.exit(null, 'SIGKILL');
    await tick();
    expect(s.current().port).toBe(1001);
    expect(s.restarts).toBe(1);
    expect(lines).toEqual([
      'the notifier exited (SIGKILL); starting it again',
      'the notifier is up again at http://127.0.0.1:1001',
    ]);
    // Stopped on purpose: not started again when it exits.
    const last = started[1];
    if (last) {
      (last.child as { exitCode: number | null }).exitCode = 0;
      await s.stop();
      last.child.emit('exit', 0, null);
    }
    await tick();
    expect(started).toHaveLength(2);
    expect(gaveUp).toEqual([]);
  });

  it('gives up, once, on a service that keeps exiting within the window', async () => {
    let clock = 0;
    const started: ReturnType<typeof fakeService>[] = [];
    const gaveUp: string[] = [];
    await superviseService(
      async () => {
        const next = fakeService(2000 + started.length);
        started.push(next);
        return next;
      },
      { say: () => {}, onGiveUp: (w) => gaveUp.push(w), maxRestarts: 2, windowMs: 60_000, now: () => clock },
    );
    for (let i = 0; i < 3; i++) {
      clock += 1000;
      started.at(-1)?.exit(1, null);
      await tick();
    }
    expect(started).toHaveLength(3);
    expect(gaveUp).toEqual(['the notifier exited (code 1) 3 times within 60 s; giving up']);
    started.at(-1)?.exit(1, null);
    await tick();
    expect(gaveUp).toHaveLength(1);
  });

  it('exits spread wider than the window are each started again', async () => {
    let clock = 0;
    const started: ReturnType<typeof fakeService>[] = [];
    const gaveUp: string[] = [];
    await superviseService(
      async () => {
        const next = fakeService(3000 + started.length);
        started.push(next);
        return next;
      },
      { say: () => {}, onGiveUp: (w) => gaveUp.push(w), maxRestarts: 2, windowMs: 60_000, now: () => clock },
    );
    for (let i = 0; i < 5; i++) {
      clock += 40_000;
      started.at(-1)?.exit(null, 'SIGKILL');
      await tick();
    }
    expect(started).toHaveLength(6);
    expect(gaveUp).toEqual([]);
  });

  it('counts a start that fails as one more exit: tried again, and given up on past the limit', async () => {
    let starts = 0;
    let first: ReturnType<typeof fakeService> | undefined;
    const lines: string[] = [];
    const gaveUp: string[] = [];
    const s = await superviseService(
      async () => {
        starts++;
        if (!first) {
          first = fakeService(4000);
          return first;
        }
        // Killed again while it starts, twice; then it comes up.
        if (starts <= 3) throw new Error('process exited (SIGKILL) before listening on 4001');
        return fakeService(4000 + starts);
      },
      { say: (l) => lines.push(l), onGiveUp: (w) => gaveUp.push(w) },
    );
    first?.exit(null, 'SIGKILL');
    for (let i = 0; i < 6; i++) await tick();
    expect(starts).toBe(4);
    expect(s.current().port).toBe(4004);
    expect(lines).toEqual([
      'the notifier exited (SIGKILL); starting it again',
      'the notifier exited (while starting: process exited (SIGKILL) before listening on 4001); starting it again',
      'the notifier exited (while starting: process exited (SIGKILL) before listening on 4001); starting it again',
      'the notifier is up again at http://127.0.0.1:4004',
    ]);
    expect(gaveUp).toEqual([]);

    // One that never comes up again is given up on once the limit is reached.
    let never: ReturnType<typeof fakeService> | undefined;
    const gaveUpNever: string[] = [];
    await superviseService(
      async () => {
        if (never) throw new Error('the notifier did not start');
        never = fakeService(5000);
        return never;
      },
      { say: () => {}, onGiveUp: (w) => gaveUpNever.push(w), maxRestarts: 3 },
    );
    never?.exit(null, 'SIGSEGV');
    for (let i = 0; i < 10; i++) await tick();
    expect(gaveUpNever).toEqual([
      'the notifier exited (while starting: the notifier did not start) 4 times within 60 s; giving up',
    ]);
  });

  it('says how a child exited', () => {
    expect(howExited(1, null)).toBe('code 1');
    expect(howExited(null, 'SIGKILL')).toBe('SIGKILL');
  });
});
