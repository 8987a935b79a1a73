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
});
