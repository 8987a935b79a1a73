import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type Emulator, emulatorExit, killGroup, watchExits } from './emulators';

/** A stand-in for an emulator's process: a real child, in a group of its own, as launch() starts one. */
function fakeEmulator(name: Emulator['name'], script = 'exec sleep 30'): Emulator {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  return { name, host: '127.0.0.1:1', child, logFile: '/dev/null', logStart: 0 };
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null ? null : once(child, 'exit');

describe('emulatorExit', () => {
  it('names the emulator and how it ended, and the signal behind a launcher shell’s 128 + n', () => {
    expect(emulatorExit('pubsub', null, 'SIGKILL')).toBe('the Pub/Sub emulator exited (SIGKILL)');
    expect(emulatorExit('firestore', 137, null)).toBe(
      'the Firestore emulator exited (code 137, its Java ended by SIGKILL)',
    );
    expect(emulatorExit('firestore', 1, null)).toBe('the Firestore emulator exited (code 1)');
  });
});

describe('watchExits (npm start ends the run when an emulator dies)', () => {
  const started: Emulator[] = [];
  afterEach(async () => {
    for (const e of started.splice(0)) {
      const gone = exited(e.child);
      killGroup(e.child, 'SIGKILL');
      await gone;
    }
  });
  const start = (name: Emulator['name'], script?: string) => {
    const e = fakeEmulator(name, script);
    started.push(e);
    return e;
  };

  it('tells once, with why, of the first emulator killed, not of the second', async () => {
    const pubsub = start('pubsub');
    const firestore = start('firestore');
    const told: string[] = [];
    watchExits(
      [pubsub, firestore],
      () => false,
      (why) => told.push(why),
    );
    const gone = [exited(pubsub.child), exited(firestore.child)];
    pubsub.child.kill('SIGKILL');
    await gone[0];
    firestore.child.kill('SIGKILL');
    await gone[1];
    expect(told).toEqual(['the Pub/Sub emulator exited (SIGKILL)']);
  });

  it('names the signal when the Java under a launcher shell is killed, the shell exiting 137', async () => {
    // As cloud_firestore_emulator runs Java: a child of the shell, not exec'd.
    const firestore = start('firestore', 'sleep 30 & echo $!; wait $!');
    const [pid] = (await once(firestore.child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    const told: string[] = [];
    watchExits(
      [firestore],
      () => false,
      (why) => told.push(why),
    );
    const gone = exited(firestore.child);
    process.kill(Number(pid.toString().trim()), 'SIGKILL');
    await gone;
    expect(told).toEqual(['the Firestore emulator exited (code 137, its Java ended by SIGKILL)']);
  });

  it('says nothing of an exit once the stop has begun', async () => {
    const pubsub = start('pubsub');
    const told: string[] = [];
    let stopping = false;
    watchExits(
      [pubsub],
      () => stopping,
      (why) => told.push(why),
    );
    stopping = true;
    const gone = exited(pubsub.child);
    pubsub.child.kill('SIGTERM');
    await gone;
    expect(told).toEqual([]);
  });

  it('tells at once of an emulator already gone when the watch begins', async () => {
    const pubsub = start('pubsub', 'exit 3');
    await exited(pubsub.child);
    const told: string[] = [];
    watchExits(
      [pubsub],
      () => false,
      (why) => told.push(why),
    );
    await new Promise((r) => setImmediate(r));
    expect(told).toEqual(['the Pub/Sub emulator exited (code 3)']);
  });
});
