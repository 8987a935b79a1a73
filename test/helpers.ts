import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { Firestore } from '@google-cloud/firestore';
import type { Express } from 'express';
import { demoAccounts } from '../dev/demo';
import { SlackStandIn, type SlackStandInOptions } from '../dev/slack-standin';
import type { DispatchPublisher, TickDeps } from '../dispatcher/tick';
import { createLogger, type Logger } from '../shared/logger';
import type { DispatchMessage } from '../shared/messages';
import { endsDelivery } from '../shared/model';
import { type NewNotification, saveAccounts, saveNotifications } from '../shared/notifications';
import type { RunStore } from '../shared/ports';
import { COLLECTIONS } from '../shared/topology';

/**
 * The environment a service process needs to run as project `projectId` on this test run's
 * emulators (no metadata server asked for credentials), with `extra` on top.
 */
export function emulatorServiceEnv(projectId: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    GOOGLE_CLOUD_PROJECT: projectId,
    FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST,
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
    METADATA_SERVER_DETECTION: 'none',
    ...extra,
  };
}

/**
 * Writes `head` to a loopback port without ending the socket, and gives back all the server
 * answered by the time it closed the connection; fails if it has not closed it within `timeoutMs`.
 */
export async function answerBeforeClose(port: number, head: string, timeoutMs = 3000): Promise<string> {
  const { answer, error } = await answerWhileSending(port, head, { bytes: 0, timeoutMs });
  if (error !== undefined) throw new Error(error);
  return answer;
}

/**
 * Writes `head` to a loopback port, then `bytes` of body in chunks as fast as the socket takes
 * them, then `trailing` (with `afterAnswer`, only once the server's answer has begun to arrive, and
 * then closes its side unless `keepOpen`), and gives back what the server answered by the time
 * the connection closed, the error the socket met (a reset: `ECONNRESET`, `EPIPE`), how long
 * after connecting it closed, and how much of the body it wrote. With `halfOpen`, the client
 * goes on sending once the server has closed its side; otherwise it stops and closes its own,
 * as Node's clients do.
 */
export function answerWhileSending(
  port: number,
  head: string,
  {
    bytes,
    trailing = '',
    halfOpen = false,
    afterAnswer = false,
    keepOpen = false,
    timeoutMs = 10_000,
  }: {
    bytes: number;
    trailing?: string;
    halfOpen?: boolean;
    afterAnswer?: boolean;
    keepOpen?: boolean;
    timeoutMs?: number;
  },
): Promise<{ answer: string; error: string | undefined; ms: number; sent: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    let answer = '';
    let error: string | undefined;
    const send = () => {
      while (sent < bytes && socket.writable) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += part.length;
        if (!socket.write(part)) return void socket.once('drain', send);
      }
      if (trailing && socket.writable) socket.write(trailing);
      if (afterAnswer && !keepOpen && socket.writable) socket.end();
    };
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen }, () => {
      socket.write(head);
      if (!afterAnswer) send();
    });
    const timer = setTimeout(() => socket.destroy(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (d: Buffer) => {
      if (afterAnswer && answer === '') setImmediate(send);
      answer += d.toString('latin1');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, error, ms: Date.now() - started, sent });
    });
  });
}

/**
 * Thrown by a `waitFor` check when what it waits for can no longer happen: the wait ends at once
 * with this error, not at its timeout.
 */
export class WaitHopeless extends Error {}

/** Polls until `check` returns a value, or fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      if (err instanceof WaitHopeless) throw new Error(`gave up waiting for ${what}: ${err.message}`);
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export async function seed(
  db: Firestore,
  notifications: NewNotification[],
  accounts = 10,
  now = new Date(),
): Promise<void> {
  await saveAccounts(db, demoAccounts(accounts));
  await saveNotifications(db, notifications, { dueNow: true, now });
}

export function notification(i: number, over: Partial<NewNotification> = {}): NewNotification {
  return {
    id: `n-${String(i).padStart(5, '0')}`,
    accountId: `acct-${String((i % 10) + 1).padStart(4, '0')}`,
    channelId: `C${String(i).padStart(9, '0')}`,
    cron: '* * * * *',
    timezone: 'Europe/Paris',
    ...over,
  };
}

/**
 * A waitFor check that every one of `n` deliveries is sent; until then it fails with the counts
 * by status, so a wait that times out says where the deliveries stood.
 */
/** How long every delivery may sit settled with some not sent before `allSent` gives up. */
const SETTLED_FOR_MS = 20_000;
/** How many unsent deliveries a failure names one by one. */
export const SHOWN_UNSENT = 20;

/**
 * A `waitFor` check that every one of `n` deliveries is sent. When all `n` have settled (sent,
 * failed or dead) with some not sent, and stayed so for 20 s, it gives up at once, naming each
 * delivery not sent with its attempts and last error, rather than waiting out the timeout.
 */
export function allSent(db: Firestore, n: number): () => Promise<true> {
  let settledSince: number | undefined;
  return async () => {
    const snap = await db.collection(COLLECTIONS.deliveries).get();
    const statuses: Record<string, number> = {};
    const unsent: string[] = [];
    // Settled: a record a push that claims it keeps (endsDelivery), not one a good message may still replace.
    let settled = 0;
    for (const d of snap.docs) {
      const s = String(d.get('status'));
      statuses[s] = (statuses[s] ?? 0) + 1;
      if (endsDelivery(d.data())) settled += 1;
      if (s !== 'sent') unsent.push(unsentLine(d.id, d.data()));
    }
    if (statuses.sent === n) return true;
    const said = `${n} expected, by status: ${JSON.stringify(statuses)}${unsentList(unsent)}`;
    if (settled < n || snap.size !== n) {
      settledSince = undefined;
      throw new Error(said);
    }
    settledSince ??= Date.now();
    if (Date.now() - settledSince >= SETTLED_FOR_MS) throw new WaitHopeless(`all settled, not all sent: ${said}`);
    throw new Error(said);
  };
}

/** The first `SHOWN_UNSENT` lines, one a line, and how many more there are. */
export function unsentList(lines: string[]): string {
  const shown = lines.slice(0, SHOWN_UNSENT).map((l) => `\n  ${l}`);
  if (lines.length > SHOWN_UNSENT) shown.push(`\n  and ${lines.length - SHOWN_UNSENT} more`);
  return shown.join('');
}

/** One delivery that did not end sent: its status, attempts, and the last error or dead letter's reason. */
export function unsentLine(id: string, d: Record<string, unknown>): string {
  const fields = ['status', 'attempts', 'deadLetterAttempts', 'deadReason', 'outcomeUnknown', 'lastError'];
  const said = fields.filter((f) => d[f] !== undefined).map((f) => `${f}=${JSON.stringify(d[f])}`);
  return `${id}: ${said.join(' ')}`;
}

export async function deliveryStatuses(db: Firestore): Promise<Record<string, number>> {
  const snap = await db.collection(COLLECTIONS.deliveries).get();
  const counts: Record<string, number> = {};
  for (const d of snap.docs) {
    const s = String(d.get('status'));
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return counts;
}

/** A push body the way Pub/Sub's production push sends it. */
export function pushEnvelope(message: DispatchMessage, extra: { deliveryAttempt?: number; messageId?: string } = {}) {
  const data = Buffer.from(JSON.stringify(message)).toString('base64');
  const id = extra.messageId ?? String(Math.floor(Math.random() * 1e15));
  return {
    ...(extra.deliveryAttempt !== undefined ? { deliveryAttempt: extra.deliveryAttempt } : {}),
    message: {
      attributes: { deliveryId: `${message.notificationId}:${message.occurrence}` },
      data,
      messageId: id,
      message_id: id,
      publishTime: new Date().toISOString(),
      publish_time: new Date().toISOString(),
    },
    subscription: 'projects/test/subscriptions/slack-fanout-dispatch-push',
  };
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A Slack stand-in for the enclosing describe block: started before its tests, stopped after them. */
export function standInForFile(opts: SlackStandInOptions): SlackStandIn {
  const slack = new SlackStandIn(opts);
  beforeAll(async () => {
    await slack.start();
  });
  afterAll(async () => {
    await slack.stop();
  });
  return slack;
}

/** A tick's dependencies for the emulator suites: pages of 2, a 60 s lease, the clock held at `now`. */
export function emulatorTickDeps(runs: RunStore, publisher: DispatchPublisher, now: Date, log: Logger): TickDeps {
  return { runs, publisher, log, pageSize: 2, leaseSeconds: 60, catchUpWindowSeconds: 900, clock: () => now };
}

/** What a child process writes, gathered as it comes, and its exit code once its output has ended. */
export function collectOutput(child: ChildProcess): {
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
} {
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out.stderr += d.toString();
  });
  return { out, exited: new Promise((resolve) => child.once('close', (code) => resolve(code))) };
}

/** A logger whose lines are kept, parsed, for a test to read. */
/** Serves `app` on a free loopback port, once it listens. */
export async function listening(app: Express): Promise<{ server: Server; url: string; port: number }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, port };
}

export function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: 'test',
    level: 'info',
    destination: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  });
  return { log, lines };
}
