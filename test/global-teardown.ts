import type { Emulators } from '../dev/emulators';
import type { Reaper } from '../dev/processes';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis as { __EMULATORS__?: Emulators; __REAPER__?: Reaper };
  if (state.__EMULATORS__) await state.__EMULATORS__.stop();
  state.__REAPER__?.release();
}
