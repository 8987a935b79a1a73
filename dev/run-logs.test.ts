import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLogDir } from './run-logs';

describe("each npm start's logs", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'run-logs-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test('go to a directory of their own, named by when the run started and its process id', () => {
    const dir = runLogDir(root, new Date('2026-12-02T15:57:17.400Z'), 4242, 10, () => false);
    expect(dir).toBe(join(root, '2026-12-02T15-57-17Z-4242'));
    expect(existsSync(dir)).toBe(true);
  });

  test('two runs side by side never share one: the same second, another process', () => {
    const at = new Date('2026-12-02T15:57:17Z');
    expect(runLogDir(root, at, 1, 10, () => true)).not.toBe(runLogDir(root, at, 2, 10, () => true));
  });

  test('an older run of the same process id (a container starts each at the same pid) goes like any other', () => {
    for (let i = 0; i < 5; i++) runLogDir(root, new Date(Date.UTC(2026, 11, 1, 10, i)), 7, 10, () => true);
    const dir = runLogDir(root, new Date(Date.UTC(2026, 11, 1, 11)), 7, 2, () => true);
    expect(readdirSync(root).sort()).toEqual(['2026-12-01T10-04-00Z-7', '2026-12-01T11-00-00Z-7']);
    expect(dir).toBe(join(root, '2026-12-01T11-00-00Z-7'));
  });

  test('its own directory is kept, even when it sorts first (a clock set back)', () => {
    for (let i = 0; i < 3; i++) runLogDir(root, new Date(Date.UTC(2026, 11, 1, 10, i)), 100 + i, 10, () => false);
    const dir = runLogDir(root, new Date(Date.UTC(2026, 10, 1)), 200, 1, () => false);
    expect(existsSync(dir)).toBe(true);
  });

  test('the newest are kept; an older one goes once its run has ended, never while it runs', () => {
    for (let i = 0; i < 5; i++) {
      const dir = runLogDir(root, new Date(Date.UTC(2026, 11, 1, 10, i)), 100 + i, 10, () => true);
      writeFileSync(join(dir, 'notifier.log'), 'x');
    }
    writeFileSync(join(root, 'notifier.log'), 'an older layout, left alone');
    // Keep 2: of the 4 older, the run with pid 101 is still running.
    runLogDir(root, new Date(Date.UTC(2026, 11, 1, 11)), 200, 2, (pid) => pid === 101);
    expect(readdirSync(root).sort()).toEqual([
      '2026-12-01T10-01-00Z-101',
      '2026-12-01T10-04-00Z-104',
      '2026-12-01T11-00-00Z-200',
      'notifier.log',
    ]);
  });
});
