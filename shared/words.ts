/** A count and its noun, singular for 1, as the CLI and `npm start` write them: `1 message`, `2 messages`, `3 deliveries`. */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
