/**
 * What `npm start`'s progress line says of the time left: nothing is guessed before the first
 * delivery is final (no rate to go by yet), then the rest at the rate so far.
 */
export function timeLeft(done: number, total: number, elapsedMs: number): string {
  if (done >= total) return 'done';
  if (done <= 0 || elapsedMs <= 0) return 'waiting for the first';
  const seconds = Math.ceil(((total - done) * elapsedMs) / done / 1000);
  if (seconds < 60) return `about ${seconds}s left`;
  const minutes = Math.floor(seconds / 60);
  return `about ${minutes}m ${String(seconds % 60).padStart(2, '0')}s left`;
}
