import { mkdtempSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEmulators } from '../dev/emulators';
import { createFirestore } from '../shared/firestore';

describe('startEmulators, when a port it picked is taken before the emulator binds it', () => {
  // The Pub/Sub emulator does not even exit when it cannot bind: only its log says so.
  it.each(['firestore', 'pubsub'] as const)(
    'does not take whatever answers there for the %s emulator: it starts again on other ports',
    async (name) => {
      // What took the port answers connections, as the other emulator's own extra port would.
      const held: Socket[] = [];
      const squatter = createServer((socket) => held.push(socket));
      const taken = await freePort();
      await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
      const lines: string[] = [];
      const free = await freePort();
      const emulators = await startEmulators({
        logDir: mkdtempSync(join(tmpdir(), 'emulators-')),
        ports: name === 'firestore' ? [free, taken] : [taken, free],
        onProgress: (line) => lines.push(line),
      }).finally(async () => {
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => squatter.close(resolve));
      });
      try {
        expect(lines.join('\n')).toMatch(
          new RegExp(
            `the ${name} emulator could not bind 127\\.0\\.0\\.1:${taken} \\(its port was taken\\).*starting again on other ports`,
          ),
        );
        expect(emulators.env.FIRESTORE_EMULATOR_HOST).not.toBe(`127.0.0.1:${taken}`);
        expect(emulators.env.PUBSUB_EMULATOR_HOST).not.toBe(`127.0.0.1:${taken}`);
        // The Firestore it hands back is one.
        const saved = process.env.FIRESTORE_EMULATOR_HOST;
        process.env.FIRESTORE_EMULATOR_HOST = emulators.env.FIRESTORE_EMULATOR_HOST;
        try {
          const fresh = createFirestore('emulators-retry');
          await fresh.collection('c').doc('d').set({ ok: true });
          expect((await fresh.collection('c').doc('d').get()).get('ok')).toBe(true);
          await fresh.terminate();
        } finally {
          process.env.FIRESTORE_EMULATOR_HOST = saved;
        }
      } finally {
        await emulators.stop();
      }
    },
    120_000,
  );
});
