import { spawn } from 'node:child_process';
import { cleanupAll, guardSpawned } from './cleanup';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('guardSpawned', () => {
  it('stops a process interrupted while it was still starting, and leaves a handed-over one to its owner', async () => {
    // Two stand-ins for an emulator that has not answered yet: one is handed over, one is not.
    const starting = guardSpawned('starting');
    const handedOver = guardSpawned('handed over');
    const a = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const b = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    starting.onSpawn(a);
    handedOver.onSpawn(b);
    handedOver.release();
    const aExit = new Promise((r) => a.once('exit', r));
    try {
      await cleanupAll();
      await aExit;
      expect(a.signalCode).toBe('SIGKILL');
      expect(alive(b.pid as number)).toBe(true);
    } finally {
      b.kill('SIGKILL');
      a.kill('SIGKILL');
    }
  });
});

/**
 * The benchmark's signal handling, in a process of its own (dist/bench/cleanup.js, built by
 * `npm test`'s pretest): it registers one detached `sleep`, as the benchmark registers an emulator,
 * with a stop that takes its time, and prints the sleep's pid.
 */
describe('installSignalHandlers', () => {
  const harness = (stop: 'quick' | 'hangs') => `
    const { spawn } = require('node:child_process');
    const { installSignalHandlers, onCleanup, stoppingOnSignal } = require(${JSON.stringify(`${__dirname}/../dist/bench/cleanup.js`)});
    process.stderr.write('stopping before: ' + stoppingOnSignal() + '\\n');
    installSignalHandlers((line) => process.stderr.write(line + '\\n'));
    const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    const stop = ${stop === 'quick' ? "async () => { process.stderr.write('stopping while stopping: ' + stoppingOnSignal() + '\\n'); process.kill(-child.pid, 'SIGTERM'); }" : '() => new Promise(() => undefined)'};
    onCleanup('sleep', stop, child);
    process.stdout.write(child.pid + '\\n');
    setInterval(() => undefined, 1000);
  `;

  async function start(stop: 'quick' | 'hangs') {
    const proc = spawn(process.execPath, ['-e', harness(stop)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const pid = await new Promise<number>((resolve, reject) => {
      proc.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      proc.once('exit', (code) => reject(new Error(`harness exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    return { proc, pid, exited, stderr: () => stderr };
  }

  async function gone(pid: number, withinMs: number): Promise<boolean> {
    const until = Date.now() + withinMs;
    while (Date.now() < until) {
      if (!alive(pid)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return !alive(pid);
  }

  it('a hang-up (the terminal closed) stops what the benchmark started and exits 129', async () => {
    const h = await start('quick');
    h.proc.kill('SIGHUP');
    expect(await h.exited).toBe(129);
    expect(await gone(h.pid, 5000)).toBe(true);
    expect(h.stderr()).toContain('SIGHUP: stopping every process the benchmark started');
    expect(h.stderr()).toContain('stopped: nothing the benchmark started is left running');
    // What fails because of the stop (a service killed while starting) is told apart from a fault.
    expect(h.stderr()).toContain('stopping before: false');
    expect(h.stderr()).toContain('stopping while stopping: true');
  });

  it('the same Ctrl-C passed on again at once (npm forwards it) is the same stop, not a second one', async () => {
    const h = await start('quick');
    h.proc.kill('SIGINT');
    h.proc.kill('SIGINT');
    expect(await h.exited).toBe(130);
    expect(await gone(h.pid, 5000)).toBe(true);
    expect(h.stderr()).not.toContain('again');
    expect(h.stderr()).toContain('stopped: nothing the benchmark started is left running');
  });

  it('a second Ctrl-C while a stop is still running kills what is left at once', async () => {
    const h = await start('hangs');
    h.proc.kill('SIGINT');
    // Past the window in which a repeat of the first is taken as the same signal.
    await new Promise((r) => setTimeout(r, 1300));
    expect(alive(h.pid)).toBe(true);
    h.proc.kill('SIGINT');
    expect(await h.exited).toBe(130);
    expect(await gone(h.pid, 5000)).toBe(true);
    expect(h.stderr()).toContain('SIGINT again: killing what is left now');
  });

  it('a benchmark killed outright leaves nothing running: its watchdog stops the rest', async () => {
    const h = await start('hangs');
    h.proc.kill('SIGKILL');
    await h.exited;
    // The watchdog sends SIGTERM at once (SIGKILL after 5 s to anything still there).
    expect(await gone(h.pid, 8000)).toBe(true);
  });
});
