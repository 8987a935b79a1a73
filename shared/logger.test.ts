import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { EXIT_FLUSH_MS, type Logger, STDOUT_BUFFER_BYTES } from './logger';
import { CLOSE_GRACE_MS, REDRIVE_PAGE_TIMEOUT_MS, SHUTDOWN_GRACE_MS, unhandledRejection } from './service';

const LOGGER = join(__dirname, '..', 'dist', 'shared', 'logger.js');

/**
 * Runs `script` in a child process with the built logger as `logger`, its stdout a pipe that
 * is read only once `readAfterMs` has passed; resolves with what it wrote and its exit code.
 */
function runChild(
  script: string,
  readAfterMs: number,
): Promise<{ stdout: string; stderr: string; code: number | null; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', `const logger = require(${JSON.stringify(LOGGER)});\n${script}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.pause();
  setTimeout(() => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stdout.resume();
  }, readAfterMs);
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(killer);
      resolve({ stdout, stderr, code, ms: Date.now() - started });
    }),
  );
}

describe('log lines on stdout', () => {
  test('a stdout not read holds at most STDOUT_BUFFER_BYTES; what is past it is dropped, counted, and said on stderr once it is read', async () => {
    // 24 lines of 1 MiB while nobody reads, then 2 s later the reader comes back.
    const { stdout, stderr, code } = await runChild(
      `const log = logger.createLogger({ service: 'drop-test' });
       const big = 'x'.repeat(2 ** 20);
       for (let i = 0; i < 24; i++) log.info({ i, big }, 'big');
       setTimeout(() => {
         log.info('after');
         // As a service exits: what is still waiting is written first.
         logger.flushStdoutLogs(20000).then(() => process.exit(0));
       }, 3000);`,
      2_000,
    );
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { i?: number; message: string });
    const kept = lines.filter((l) => l.message === 'big').map((l) => l.i);
    const dropped = 24 - kept.length;
    // The first lines are kept, in order, up to the bound; the rest of the burst is dropped.
    expect(kept).toEqual([...Array(kept.length).keys()]);
    expect(kept.length * 2 ** 20).toBeLessThanOrEqual(STDOUT_BUFFER_BYTES);
    expect(dropped).toBeGreaterThan(0);
    expect(stderr).toContain(`${dropped} log lines were dropped while stdout was not being read`);
    // Logging goes on once stdout is read again.
    expect(lines.at(-1)?.message).toBe('after');
  }, 40_000);

  test('a stdout that cannot be written any more is said once on stderr, and the process goes on', async () => {
    const { stderr, code } = await runChild(
      `const log = logger.createLogger({ service: 'full-test' });
       const fs = require('node:fs');
       // stdout replaced by a file opened read-only: every write fails (EBADF).
       fs.closeSync(1);
       fs.openSync(${JSON.stringify(__filename)}, 'r');
       for (let i = 0; i < 5; i++) log.info({ i }, 'line');
       setTimeout(() => { process.stderr.write('still running\\n'); process.exit(0); }, 500);`,
      0,
    );
    expect(code).toBe(0);
    expect(stderr.match(/stdout cannot be written/g)).toHaveLength(1);
    expect(stderr).toContain('still running');
  }, 40_000);
});

describe("a stop within Cloud Run's 10 s", () => {
  it("takes at most 9 s: the grace for requests in flight, the clients' close and the log flush, a second to spare", () => {
    expect(SHUTDOWN_GRACE_MS + CLOSE_GRACE_MS + EXIT_FLUSH_MS).toBeLessThanOrEqual(9000);
    // A redrive stopped by the shutdown puts its page back and answers within the grace.
    expect(REDRIVE_PAGE_TIMEOUT_MS).toBeLessThan(SHUTDOWN_GRACE_MS);
  });
});

describe('a promise rejected that nothing handles, in a service', () => {
  const lines = () => {
    const said: { level: string; msg: string }[] = [];
    const log = {
      info: (_: unknown, msg: string) => said.push({ level: 'info', msg }),
      fatal: (_: unknown, msg: string) => said.push({ level: 'fatal', msg }),
    } as unknown as Logger;
    return { said, log };
  };

  it('is part of the stop when the Firestore client ended the call as it closed: logged, not an exit', async () => {
    const { said, log } = lines();
    const exit = jest.fn();
    unhandledRejection(log, () => true, exit)(new Error('The client has already been terminated'));
    await new Promise((r) => setTimeout(r, 50));
    expect(exit).not.toHaveBeenCalled();
    expect(said).toEqual([{ level: 'info', msg: 'a call abandoned at the shutdown ended as its client closed' }]);
  });

  it('ends the process, exit 1, with a line naming it, otherwise: before a stop, or any other error', async () => {
    for (const [stopping, err] of [
      [false, new Error('The client has already been terminated')],
      [true, new Error('14 UNAVAILABLE')],
    ] as const) {
      const { said, log } = lines();
      const exit = jest.fn();
      unhandledRejection(log, () => stopping, exit)(err);
      await new Promise((r) => setTimeout(r, 50));
      expect(exit).toHaveBeenCalledWith(1);
      expect(said).toEqual([{ level: 'fatal', msg: 'unhandled rejection: exiting' }]);
    }
  });
});
