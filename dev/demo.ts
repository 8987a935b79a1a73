import type { Account } from '../shared/model';
import type { NewNotification } from '../shared/notifications';
import { counted } from '../shared/words';

/** Demo data for the local run: accounts with metrics, notifications in several time zones. */

export const DEMO_TIMEZONES = [
  'Europe/Paris',
  'America/New_York',
  'Asia/Tokyo',
  'Australia/Sydney',
  'America/Sao_Paulo',
];
/** Every one has an occurrence within the last few minutes, whenever the demo runs. */
export const DEMO_CRONS = ['* * * * *', '*/2 * * * *', '*/5 * * * *'];
/** A channel the Slack stand-in is told to answer `is_archived` for: shows a permanent failure. */
export const ARCHIVED_CHANNEL = 'C0ARCHIVED0';

/** A small deterministic PRNG, so a demo is the same every time. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function demoAccounts(count: number, seed = 42): { id: string; account: Account }[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const id = `acct-${String(i + 1).padStart(4, '0')}`;
    return {
      id,
      account: {
        name: `Account ${i + 1}`,
        metrics: [
          { label: 'Active users', value: Math.round(rnd() * 10_000), change: Math.round((rnd() * 40 - 20) * 10) / 10 },
          {
            label: 'Revenue',
            value: `$${(rnd() * 100_000).toFixed(2)}`,
            change: Math.round((rnd() * 20 - 10) * 10) / 10,
          },
          { label: 'Open tickets', value: Math.round(rnd() * 200) },
        ],
        highlights: [`${Math.round(rnd() * 50)} new sign-ups`, `${Math.round(rnd() * 10)} incidents resolved`],
        dashboardUrl: `https://example.com/dashboards/${id}`,
      },
    };
  });
}

export interface DemoOptions {
  notifications: number;
  accounts: number;
  /** A real channel to post every demo notification to (with a real Slack token). */
  channel?: string;
  /** Include one notification whose channel fails permanently. */
  withBrokenChannel?: boolean;
}

export function demoNotifications(opts: DemoOptions): NewNotification[] {
  const out: NewNotification[] = [];
  for (let i = 0; i < opts.notifications; i++) {
    const account = `acct-${String((i % opts.accounts) + 1).padStart(4, '0')}`;
    out.push({
      id: `notif-${String(i + 1).padStart(6, '0')}`,
      accountId: account,
      channelId: opts.channel ?? `C${String(i + 1).padStart(9, '0')}`,
      cron: DEMO_CRONS[i % DEMO_CRONS.length] as string,
      timezone: DEMO_TIMEZONES[i % DEMO_TIMEZONES.length] as string,
    });
  }
  // Only beside another: a demo of one notification posts it.
  if (opts.withBrokenChannel && !opts.channel && out.length > 1) {
    const last = out[out.length - 1] as NewNotification;
    last.channelId = ARCHIVED_CHANNEL;
  }
  return out;
}

/** `1 notification`, `200 notifications`. */
/**
 * The line that says what was seeded. Accounts beyond the notifications' count have none
 * reporting on them (notification i reports on account i modulo the accounts): the line says
 * how many are reported on, rather than let `--accounts 100000 -n 200` sound like 100,000 reports.
 */
export function seededLine(accounts: number, notifications: readonly NewNotification[]): string {
  const reported = new Set(notifications.map((n) => n.accountId)).size;
  const zones = new Set(notifications.map((n) => n.timezone)).size;
  const some = reported < accounts ? ` (${reported} of them reported on, one per notification)` : '';
  return `seeded ${counted(accounts, 'account')}${some} and ${counted(notifications.length, 'notification')} in ${counted(zones, 'time zone')}`;
}
