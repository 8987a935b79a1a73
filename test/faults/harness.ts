import type { Firestore } from '@google-cloud/firestore';
import type { SlackStandIn } from '../../dev/slack-standin';
import { COLLECTIONS } from '../../shared/topology';
import { unsentLine, unsentList } from '../helpers';

/** `npm run test:faults` runs each scenario at a size that fits CI; `npm run test:faults:full` at full size. */
export const FULL = process.env.FAULT_SCALE === 'full';
export const size = (ci: number, full: number): number => (FULL ? full : ci);

export interface Verdict {
  scenario: string;
  expected: number;
  sent: number;
  failed: number;
  dead: number;
  duplicates: number;
  lost: number;
  stuck: number;
}

/**
 * Counts what Slack received (the stand-in), not what the ledger says: a duplicate is a
 * delivery id posted more than once, a loss an expected delivery id never posted.
 */
export async function verdict(
  scenario: string,
  slack: SlackStandIn,
  db: Firestore,
  expectedPosted: Iterable<string>,
): Promise<Verdict> {
  const posted = new Map<string, number>();
  for (const p of slack.posts) {
    const id = p.metadata?.event_payload?.deliveryId;
    if (typeof id === 'string') posted.set(id, (posted.get(id) ?? 0) + 1);
  }
  const expected = [...expectedPosted];
  const lost = expected.filter((id) => !posted.has(id)).length;
  const duplicates = [...posted.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
  const statuses: Record<string, number> = {};
  const snap = await db.collection(COLLECTIONS.deliveries).get();
  const unsent: string[] = [];
  for (const d of snap.docs) {
    const s = String(d.get('status'));
    statuses[s] = (statuses[s] ?? 0) + 1;
    if (s !== 'sent') unsent.push(unsentLine(d.id, d.data()));
  }
  const v: Verdict = {
    scenario,
    expected: expected.length,
    sent: statuses.sent ?? 0,
    failed: statuses.failed ?? 0,
    dead: statuses.dead ?? 0,
    duplicates,
    lost,
    stuck: (statuses.sending ?? 0) + (statuses.retrying ?? 0),
  };
  process.stdout.write(
    `scenario=${v.scenario} expected=${v.expected} sent=${v.sent} failed=${v.failed} dead=${v.dead} duplicates=${v.duplicates} lost=${v.lost}\n`,
  );
  // A rare failure explains itself: each delivery that did not end sent, with how it ended.
  if (unsent.length > 0) process.stdout.write(`${unsentList(unsent).slice(1)}\n`);
  return v;
}

/** Delivery ids for notifications `ids` at `occurrence`. */
export function deliveryIds(ids: string[], occurrence: string): string[] {
  return ids.map((id) => `${id}:${occurrence}`);
}

export function minuteOf(d: Date): string {
  return new Date(Math.floor(d.getTime() / 60_000) * 60_000).toISOString();
}
