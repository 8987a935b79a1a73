/**
 * Slack's message limits (chat.postMessage / Block Kit), counted in UTF-16 code units
 * (`.length`): the report keeps them (report.ts), and a title is checked against its header's
 * (model.ts).
 */
export const SLACK_LIMITS = Object.freeze({
  blocksPerMessage: 50,
  sectionTextChars: 3000,
  sectionFields: 10,
  sectionFieldChars: 2000,
  headerTextChars: 150,
  contextTextChars: 3000,
  fallbackTextChars: 4000,
  /**
   * The text of all of a message's blocks together. Slack documents no such limit, but refuses
   * a message past about 12,000 characters of block text with `msg_blocks_too_long` (reported
   * from 11,300 to 13,300, depending on the blocks: slackapi/bolt-js issues 2509 and 2867):
   * the report keeps below it, with room to spare.
   */
  blocksTextChars: 10_000,
});

/** Where the Slack stand-in refuses a message's block text as too long, as Slack is seen to. */
export const SLACK_BLOCKS_TEXT_REFUSED_PAST = 12_000;

/**
 * The text of a message's blocks, all together, as it counts against
 * `SLACK_LIMITS.blocksTextChars`: every `text` string in them (a text object's, a field's, an
 * element's), whatever the blocks. The report keeps it, and the Slack stand-in refuses past it.
 */
export function blocksTextLength(value: unknown, depth = 0): number {
  if (depth > 20 || typeof value !== 'object' || value === null) return 0;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + blocksTextLength(v, depth + 1), 0);
  let length = 0;
  for (const [key, v] of Object.entries(value)) {
    length += key === 'text' && typeof v === 'string' ? v.length : blocksTextLength(v, depth + 1);
  }
  return length;
}
