import type { Emulators } from '../dev/emulators';

export default async function globalTeardown(): Promise<void> {
  const emulators = (globalThis as { __EMULATORS__?: Emulators }).__EMULATORS__;
  if (emulators) await emulators.stop();
}
