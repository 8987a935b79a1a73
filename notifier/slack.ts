import {
  LogLevel,
  type Logger as SlackLogger,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from '@slack/web-api';
import { classifySlackErrorCode, classifySlackHttpStatus, FanoutError, RetryableError } from '../shared/errors';
import type { Block } from '../shared/report';
import { SlackBodyError, SlackRedirectError, undiciFetch } from './slack-fetch';

/** The metadata event every post carries, so a later attempt can find a post whose outcome was unknown. */
export const DELIVERY_EVENT_TYPE = 'slack_fanout_delivery';

export interface PostRequest {
  channel: string;
  text: string;
  blocks: Block[];
  deliveryId: string;
  teamId?: string;
}

export interface SlackPort {
  post(req: PostRequest): Promise<{ ts: string; channel: string }>;
  /** Looks for a post of this delivery in the channel since `since`; its ts when found. */
  findDelivery(channel: string, deliveryId: string, since: Date, teamId?: string): Promise<string | null>;
  /** Asks Slack who the token is (`auth.test`): its workspace, and its scopes when Slack says them. */
  checkToken(): Promise<TokenCheck>;
}

export interface TokenCheck {
  team: string | null;
  /** From Slack's `X-OAuth-Scopes`; null when the answer did not carry them. */
  scopes: string[] | null;
}

/**
 * What a token's scopes leave the notifier unable to do: post at all (`chat:write`), or look
 * for an earlier post after an unknown outcome (a history scope), so that such a delivery fails
 * as unverifiable instead of being sent.
 */
export function scopeProblems(scopes: readonly string[]): string[] {
  const problems: string[] = [];
  if (!scopes.includes('chat:write')) {
    problems.push('the Slack token lacks chat:write: every post will fail (missing_scope)');
  }
  if (!scopes.includes('channels:history') && !scopes.includes('groups:history')) {
    problems.push(
      'the Slack token lacks channels:history and groups:history: after a post whose outcome is unknown, the ' +
        'next attempt cannot look for it in the channel, so it does not post again and records the delivery ' +
        'failed (slack_outcome_unverifiable); once the scopes are granted, redrive --failed looks and sends it if it is not there',
    );
  }
  return problems;
}

export interface SlackOptions {
  apiUrl: string;
  timeoutMs: number;
  /** The bot token for a workspace; one token serves every workspace when it ignores teamId. */
  tokenFor: (teamId: string | undefined) => string;
  /** Pages of history a channel check reads at most (default HISTORY_MAX_PAGES). */
  historyPages?: number;
}

// The client's own logger would print to stdout in another format; errors reach our logs as FanoutErrors.
const silent: SlackLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  setLevel: () => undefined,
  getLevel: () => LogLevel.ERROR,
  setName: () => undefined,
};

/** The shape of Slack's `error` strings (`channel_not_found`, `ratelimited`). */
const SLACK_ERROR_CODE = /^[a-z0-9_.]{1,100}$/;

/**
 * How far back a channel check reads: 50 pages of 200 messages since the first attempt. A
 * channel that takes more posts than that between two attempts is not searched to its end.
 */
export const HISTORY_PAGE_SIZE = 200;
export const HISTORY_MAX_PAGES = 50;

/** @slack/web-api's message for a 429 without a Retry-After in seconds; the header's value last. */
const RETRY_HEADER_UNREADABLE = /^Retry header did not contain a valid timeout \(url: .*, retry-after header: (.*)\)$/s;

const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** A day: a date further off than that is taken as the day, not believed to the second. */
const MAX_RETRY_AFTER_SECONDS = 86_400;

/** A wait Slack asked for, from 0 (one past) to a day. */
function boundedRetryAfter(seconds: number): number {
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds));
}

/**
 * Seconds until a Retry-After in IMF-fixdate form, RFC 9110's preferred HTTP-date (0 if past, at
 * most a day), or undefined for none ("null", as the client prints a missing header) or anything
 * else, the obsolete RFC 850 and asctime date forms included.
 */
export function retryAfterOf(header: string, now = Date.now()): number | undefined {
  // The preferred form, IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), alone: Date.parse takes
  // almost anything with a letter in it (`x 1` is 2001).
  if (!IMF_FIXDATE.test(header.trim())) return undefined;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : boundedRetryAfter(Math.ceil((at - now) / 1000));
}

/** Turns whatever the Slack client threw into a FanoutError that says retry or not. */
export function classifySlackFailure(err: unknown): FanoutError {
  if (err instanceof FanoutError) return err;
  if (err instanceof WebAPIPlatformError) {
    const code: unknown = err.data.error;
    // The client reports a body it cannot read as JSON (a gateway's HTML page, a cut-off answer)
    // as `ok: false` with the whole body as the error: that is no answer from Slack, and the post
    // may have gone through, so the next attempt looks for it before posting again.
    if (typeof code !== 'string' || !SLACK_ERROR_CODE.test(code)) {
      return new RetryableError(
        'slack_outcome_unknown',
        `Slack's answer could not be read: ${JSON.stringify(String(code ?? '(no error field)').slice(0, 200))}`,
        { slackError: 'unreadable_response' },
      );
    }
    return classifySlackErrorCode(code);
  }
  if (err instanceof WebAPIRateLimitedError) {
    // The client reads the header with parseInt: `-1` and `99999999` come through as they are.
    return classifySlackHttpStatus(429, boundedRetryAfter(err.retryAfter));
  }
  if (err instanceof WebAPIHTTPError) return classifySlackHttpStatus(err.statusCode);
  if (err instanceof WebAPIRequestError) {
    const original = err.original as Error & { code?: string; cause?: { code?: string } };
    if (original instanceof SlackRedirectError) {
      // Slack's API answers every call itself: a redirect comes from something in between (an
      // http:// URL sent on to https://, a proxy), most likely a wrong SLACK_API_URL, named so it
      // can be put right. What that hop did with the post is not known, so the next attempt looks
      // before posting; it is over, so nothing is held for it.
      return new RetryableError(
        'slack_outcome_unknown',
        `Slack's API answered ${original.message}: check SLACK_API_URL (Slack's is https://slack.com/api/)`,
        { slackError: `http_${original.status}` },
      );
    }
    if (original instanceof SlackBodyError) {
      // An answer came, so the post may have been taken: looked for before posting again.
      return new RetryableError('slack_outcome_unknown', `Slack's answer could not be read: ${original.message}`, {
        slackError: 'unreadable_response',
      });
    }
    // fetch() reports a refused connection as `fetch failed` with the socket error as its cause.
    const code = original?.cause?.code ?? original?.code;
    const message = String(original?.message);
    const refused = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || /ECONNREFUSED|ENOTFOUND/.test(message);
    // Refused means nothing was sent; a timeout or a reset may have reached Slack.
    if (refused) {
      return new RetryableError('slack_retryable', 'Slack could not be reached', { slackError: 'connection_refused' });
    }
    // A connection closed or reset before the answer (undici's SocketError, "other side
    // closed"; a TCP reset), named apart from a timeout so an operator can tell the two apart.
    // The client wraps an error from another realm (a test runner's) as a plain Error with the
    // original's text and no code, so the code is looked for in the message too, as above.
    if (
      code === 'ECONNRESET' ||
      code === 'UND_ERR_SOCKET' ||
      code === 'EPIPE' ||
      original?.name === 'SocketError' ||
      /ECONNRESET|EPIPE|UND_ERR_SOCKET|other side closed/.test(message)
    ) {
      return new RetryableError(
        'slack_outcome_unknown',
        `the connection to Slack was closed before its answer (${original?.message || code})`,
        { slackError: 'connection_reset' },
      );
    }
    return new RetryableError('slack_outcome_unknown', 'the Slack call timed out or was cut off', {
      slackError: 'request_timeout',
    });
  }
  // A 429 whose Retry-After the client cannot read as seconds (none, or an HTTP date): the client
  // throws a plain Error for it. Slack did not take the call, as for any 429.
  const noRetryHeader = err instanceof Error ? RETRY_HEADER_UNREADABLE.exec(err.message) : null;
  if (noRetryHeader) return classifySlackHttpStatus(429, retryAfterOf(noRetryHeader[1] ?? 'null'));
  return new RetryableError(
    'slack_outcome_unknown',
    `unexpected Slack client failure: ${String((err as Error)?.message ?? err)}`,
  );
}

/** chat.postMessage through @slack/web-api, with a short timeout and no retries of its own (Pub/Sub retries). */
export class SlackClient implements SlackPort {
  private readonly clients = new Map<string, WebClient>();
  /** One connection pool for every workspace's client (notifier/slack-fetch.ts). */
  private readonly fetch = undiciFetch();

  constructor(private readonly opts: SlackOptions) {}

  private client(teamId: string | undefined): WebClient {
    const token = this.opts.tokenFor(teamId);
    let c = this.clients.get(token);
    if (!c) {
      c = new WebClient(token, {
        slackApiUrl: this.opts.apiUrl,
        timeout: this.opts.timeoutMs,
        retryConfig: { retries: 0 },
        // No queue of the client's own (100 calls by default): a call waiting in it has not yet
        // started its timeout, so a post could reach Slack after the claim that let it start
        // had run out, and another attempt post too. The notifier bounds its own concurrency.
        maxRequestConcurrency: Number.POSITIVE_INFINITY,
        rejectRateLimitedCalls: true,
        logger: silent,
        fetch: this.fetch,
      });
      this.clients.set(token, c);
    }
    return c;
  }

  async post(req: PostRequest): Promise<{ ts: string; channel: string }> {
    try {
      const res = await this.client(req.teamId).chat.postMessage({
        channel: req.channel,
        text: req.text,
        blocks: req.blocks,
        unfurl_links: false,
        metadata: { event_type: DELIVERY_EVENT_TYPE, event_payload: { deliveryId: req.deliveryId } },
      });
      // An answer the client did not take for an error (its `ok` is not false) that names no
      // message: said with the `ok` it had, as `{"ok":"false"}` is not an ok answer either.
      if (!res.ts) {
        const ok = res.ok === true ? 'ok' : `with ok ${JSON.stringify(res.ok)}`;
        throw new RetryableError('slack_outcome_unknown', `Slack answered ${ok} but without a ts`);
      }
      return { ts: res.ts, channel: res.channel ?? req.channel };
    } catch (err) {
      throw classifySlackFailure(err);
    }
  }

  async findDelivery(channel: string, deliveryId: string, since: Date, teamId?: string): Promise<string | null> {
    try {
      // Every message since a minute before the first attempt (clock skew), page by page: a
      // busy channel can take many other posts between two attempts.
      const oldest = String(Math.floor(since.getTime() / 1000) - 60);
      const pages = this.opts.historyPages ?? HISTORY_MAX_PAGES;
      let cursor: string | undefined;
      for (let page = 0; page < pages; page++) {
        const res = await this.client(teamId).conversations.history({
          channel,
          oldest,
          include_all_metadata: true,
          limit: HISTORY_PAGE_SIZE,
          ...(cursor ? { cursor } : {}),
        });
        for (const m of res.messages ?? []) {
          const meta = m.metadata as { event_type?: string; event_payload?: { deliveryId?: string } } | undefined;
          if (meta?.event_type === DELIVERY_EVENT_TYPE && meta.event_payload?.deliveryId === deliveryId && m.ts)
            return m.ts;
        }
        cursor = res.response_metadata?.next_cursor || undefined;
        if (!res.has_more || !cursor) return null;
      }
      throw new RetryableError(
        'slack_outcome_unknown',
        `the channel took more than ${pages * HISTORY_PAGE_SIZE} messages since the first attempt; ` +
          'could not tell whether it had posted',
        { slackError: 'history_too_long' },
      );
    } catch (err) {
      throw classifySlackFailure(err);
    }
  }

  async checkToken(): Promise<TokenCheck> {
    try {
      const res = await this.client(undefined).auth.test();
      return { team: res.team ?? null, scopes: res.response_metadata?.scopes ?? null };
    } catch (err) {
      throw classifySlackFailure(err);
    }
  }
}
