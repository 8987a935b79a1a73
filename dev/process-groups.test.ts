import { spawn } from 'node:child_process';
import { groupAlive, groupsLeft, killGroup } from './emulators';

describe('groupsLeft (what a stop of npm start can say is left running)', () => {
  it('names a group with a process in it, and none once the group is killed, its orphan included', async () => {
    // The shell leads the group; its background sleep is left an orphan when the group dies.
    const child = spawn('sh', ['-c', 'sleep 30 & sleep 30'], { detached: true, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      expect(await groupsLeft([child], 200)).toEqual([child]);
      expect(groupAlive(child)).toBe(true);
    } finally {
      killGroup(child, 'SIGKILL');
    }
    await exited;
    // An orphan killed but not yet reaped by init is a zombie: not running, so not left.
    expect(await groupsLeft([child], 5000)).toEqual([]);
    expect(groupAlive(child)).toBe(false);
  });

  it('returns at once for a child that never started', async () => {
    const child = spawn('/nonexistent/command', [], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    expect(await groupsLeft([child], 5000)).toEqual([]);
  });
});
