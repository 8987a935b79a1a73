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
