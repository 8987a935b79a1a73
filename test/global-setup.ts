import { type Emulators, startEmulators } from '../dev/emulators';
import { type Reaper, startReaper } from '../dev/processes';

/**
 * Starts the Pub/Sub and Firestore emulators on free ports for the emulator tests,
 * unless PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST already point at running ones
 * (`.ci/run` and a developer's own emulators). Workers inherit the hosts through the env.
 * A watchdog (dev/processes.ts) stops them should jest die before its teardown (Ctrl-C, a kill).
 */
export default async function globalSetup(): Promise<void> {
  // No metadata server here; without this the Google clients warn on every call.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  if (process.env.PUBSUB_EMULATOR_HOST && process.env.FIRESTORE_EMULATOR_HOST) return;
  const reaper = startReaper();
  const emulators = await startEmulators({
    logDir: '.local/emulators',
    onProgress: (line) => process.stderr.write(`\n${line}\n`),
    onSpawn: (child) => reaper.watch(child),
  });
  Object.assign(process.env, emulators.env);
  (globalThis as { __EMULATORS__?: Emulators; __REAPER__?: Reaper }).__EMULATORS__ = emulators;
  (globalThis as { __REAPER__?: Reaper }).__REAPER__ = reaper;
}
