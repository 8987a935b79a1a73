import { startEmulators } from '../dev/emulators';

/**
 * Starts the Pub/Sub and Firestore emulators on free ports for the emulator tests,
 * unless PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST already point at running ones
 * (`.ci/run` and a developer's own emulators). Workers inherit the hosts through the env.
 */
export default async function globalSetup(): Promise<void> {
  // No metadata server here; without this the Google clients warn on every call.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  if (process.env.PUBSUB_EMULATOR_HOST && process.env.FIRESTORE_EMULATOR_HOST) return;
  const emulators = await startEmulators({
    logDir: '.local/emulators',
    onProgress: (line) => process.stderr.write(`\n${line}\n`),
  });
  Object.assign(process.env, emulators.env);
  (globalThis as { __EMULATORS__?: unknown }).__EMULATORS__ = emulators;
}
