/**
 * A local stand-in for the parts of the Slack Web API the notifier calls
 * (auth.test, chat.postMessage, conversations.history), with fault injection
 * that a test or a separate process can drive.
 *
 *   const slack = new SlackStandIn({ token: 'xoxb-test', seed: 42 });
 *   const { url } = await slack.start();
 *   const client = new WebClient('xoxb-test', { slackApiUrl: url });
 *
 * Run directly (after `npm run build`: `node dist/dev/slack-standin.js`)
 * it listens on PORT (default 3999); SLACK_STANDIN_TOKEN and SLACK_STANDIN_SEED are optional.
 *
 * Admin endpoints, outside /api/:
 *   POST   /_admin/faults   body: FaultRule[] or { rules: FaultRule[], seed?: number } (replaces the rules)
 *   GET    /_admin/faults   the rules with how often each applied
 *   DELETE /_admin/faults
 *   GET    /_admin/posts    { posts, callCount, duplicates }
 *   POST   /_admin/reset
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { methodNotAllowed, notFound } from '../shared/http';
import { quoted } from '../shared/model';
import { blocksTextLength, SLACK_BLOCKS_TEXT_REFUSED_PAST, SLACK_LIMITS } from '../shared/slack-limits';
import { z } from '../shared/zod';
import { mulberry32 } from './demo';

/** An HTTP error as a gateway in front of Slack answers it: the status, and its name in text. */
function answerStatus(res: Response, status: number): void {
  res
    .status(status)
    .type('text/plain')
    .send(http.STATUS_CODES[status] ?? 'Error');
}

export type FaultResponse =
  | { kind: 'http'; status: number; retryAfterSeconds?: number }
  | { kind: 'slack_error'; error: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'post_then_error'; error: string }
  /** Posts, then answers this HTTP status, as a gateway in front of Slack can. */
  | { kind: 'post_then_http'; status: number }
  /**
   * Answers this HTTP status at once, and lands the post `afterMs` later: a gateway that gave
   * up on Slack (a 502, a 503 for a reset upstream) while the request still went through.
   */
  | { kind: 'http_then_post'; status: number; afterMs: number };

/** Matched per chat.postMessage call; the first rule that matches applies. */
export interface FaultRule {
  channel?: string;
  channelPrefix?: string;
  /** Applies to the first N matching calls, then stops matching; omitted means forever. */
  times?: number;
  /** Chance (0..1) that a call the rule otherwise matches is hit, drawn from the seeded PRNG. */
  probability?: number;
  respond: FaultResponse;
}

export interface FaultState {
  rule: FaultRule;
  /** How many calls this rule has applied to. */
  hits: number;
}

export interface SlackMetadata {
  event_type: string;
  event_payload: Record<string, unknown>;
}

export interface RecordedPost {
  channel: string;
  text: string | null;
  blocks: unknown[] | null;
  metadata: SlackMetadata | null;
  ts: string;
  token: string;
  /** Epoch milliseconds. */
  receivedAt: number;
}

export interface SlackStandInOptions {
  /** When set, any other token is answered `invalid_auth`. */
  token?: string;
  /** Seeds the PRNG behind `probability`; a fixed default keeps unseeded runs repeatable too. */
  seed?: number;
  teamId?: string;
  userId?: string;
  botId?: string;
  teamUrl?: string;
  /** Epoch milliseconds; message ts values follow it. */
  now?: () => number;
  /**
   * The token's scopes, sent as Slack does in `X-OAuth-Scopes` on every answer (default: what
   * the notifier needs, `chat:write`, `channels:history` and `groups:history`).
   */
  scopes?: readonly string[];
}

/** The scopes the stand-in's token has unless told otherwise. */
export const STANDIN_SCOPES: readonly string[] = ['chat:write', 'channels:history', 'groups:history'];

export interface StandInEvents {
  post: [RecordedPost];
  /**
   * A post refused by a fault, with a Slack error (`slack_error`) or an HTTP status (`http`: the
   * error is `HTTP 503`, or `ratelimited (HTTP 429)`): the delivery it named, if any.
   */
  refused: [{ channel: string | undefined; error: string; deliveryId: string | null }];
}

const DEFAULT_SEED = 0x5eed;
const HISTORY_DEFAULT_LIMIT = 100;
const HISTORY_MAX_LIMIT = 999;
/** The longest a Node timer waits: a `delay` rule beyond it would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const faultResponseSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('http'),
    status: z.number().int().min(400).max(599),
    retryAfterSeconds: z.number().int().min(0).optional(),
  }),
  z.strictObject({ kind: z.literal('slack_error'), error: z.string().min(1) }),
  z.strictObject({
    kind: z.literal('delay'),
    // A timer takes at most 2^31-1 ms (about 24.8 days); Node fires a longer one at once.
    ms: z
      .number()
      .int()
      .min(0)
      .max(MAX_TIMER_MS, `is longer than a timer can wait (${MAX_TIMER_MS} ms, about 24.8 days)`),
  }),
  z.strictObject({
    kind: z.literal('post_then_error'),
    error: z.string().min(1),
  }),
  z.strictObject({ kind: z.literal('post_then_http'), status: z.number().int().min(400).max(599) }),
  z.strictObject({
    kind: z.literal('http_then_post'),
    status: z.number().int().min(400).max(599),
    afterMs: z
      .number()
      .int()
      .min(0)
      .max(MAX_TIMER_MS, `is longer than a timer can wait (${MAX_TIMER_MS} ms, about 24.8 days)`),
  }),
]);

// Strict objects, so a misspelt filter fails loudly instead of matching every call.
export const faultRuleSchema: z.ZodType<FaultRule> = z
  .strictObject({
    channel: z.string().min(1).optional(),
    channelPrefix: z.string().min(1).optional(),
    // 0 would match no call at all: a rule that does nothing is a mistake to say, not to keep.
    times: z.number().int().min(1, 'must be 1 or more (leave it out for every matching call)').optional(),
    probability: z.number().min(0).max(1).optional(),
    respond: faultResponseSchema,
  })
  .refine((r) => r.channel === undefined || r.channelPrefix === undefined, {
    message: 'give channel or channelPrefix, not both',
  });

// Told apart by the body's shape, not by a union: a union's error for a bad rule would list
// what each of its forms expected, where one error naming the rule's field is what helps.
const faultsListSchema = z.array(faultRuleSchema);
const faultsObjectSchema = z.strictObject({
  rules: z.array(faultRuleSchema),
  seed: z.number().int().optional(),
});

/** The rules (and seed) of a `POST /_admin/faults` body, or the issues that name what is wrong. */
export function parseFaultsBody(
  body: unknown,
): { ok: true; rules: FaultRule[]; seed?: number } | { ok: false; issues: z.core.$ZodIssue[] } {
  if (Array.isArray(body)) {
    const parsed = faultsListSchema.safeParse(body);
    return parsed.success ? { ok: true, rules: parsed.data } : { ok: false, issues: parsed.error.issues };
  }
  const parsed = faultsObjectSchema.safeParse(body);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues };
  const { rules, seed } = parsed.data;
  return seed === undefined ? { ok: true, rules } : { ok: true, rules, seed };
}

type Params = Record<string, unknown>;
type SlackAnswer = { ok: true; [key: string]: unknown } | { ok: false; error: string; [key: string]: unknown };

class SlackArgError extends Error {
  constructor(readonly slackError: string) {
    super(slackError);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Form fields arrive as strings, JSON fields as anything; a repeated form field keeps its first value. */
function stringParam(params: Params, name: string): string | undefined {
  const raw = Array.isArray(params[name]) ? (params[name] as unknown[])[0] : params[name];
  if (typeof raw === 'string') return raw === '' ? undefined : raw;
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  return undefined;
}

function boolParam(params: Params, name: string): boolean {
  const value = stringParam(params, name);
  return value === 'true' || value === '1';
}

/** The form encoding sends structured fields as JSON strings, a JSON body sends them as they are. */
function jsonParam(params: Params, name: string, formatError: string): unknown {
  const raw = params[name];
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    throw new SlackArgError(formatError);
  }
}

function tsToMicros(ts: string): number {
  const [seconds = '0', fraction = ''] = ts.split('.');
  return Number(seconds) * 1_000_000 + Number(fraction.padEnd(6, '0').slice(0, 6) || '0');
}

function microsToTs(micros: number): string {
  return `${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
}

function bearerToken(req: Request, params: Params): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  return match?.[1] ?? stringParam(params, 'token');
}

export class SlackStandIn extends EventEmitter<StandInEvents> {
  readonly posts: RecordedPost[] = [];
  private readonly options: SlackStandInOptions;
  private readonly now: () => number;
  private readonly calls = new Map<string, number>();
  private faultStates: FaultState[] = [];
  private random: () => number;
  private lastTsMicros = 0;
  private readonly pendingDelays = new Set<{
    timer: NodeJS.Timeout;
    resolve: (elapsed: boolean) => void;
  }>();
  private server: http.Server | undefined;
  private baseUrl: string | undefined;

  constructor(options: SlackStandInOptions = {}) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.random = mulberry32(options.seed ?? DEFAULT_SEED);
  }

  /** The base API URL (ending in /api/) once started. */
  get url(): string {
    if (this.baseUrl === undefined) throw new Error('the Slack stand-in is not started');
    return this.baseUrl;
  }

  /** Calls received per Web API method, including refused ones. */
  get callCount(): Record<string, number> {
    return Object.fromEntries(this.calls);
  }

  get faults(): FaultState[] {
    return this.faultStates.map((s) => ({ rule: s.rule, hits: s.hits }));
  }

  async start(port = 0): Promise<{ url: string }> {
    if (this.server !== undefined) throw new Error('the Slack stand-in is already started');
    const server = http.createServer(this.app());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { port: bound } = server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${bound}/api/`;
    return { url: this.baseUrl };
  }

  async stop(): Promise<void> {
    this.cancelDelays();
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.baseUrl = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Keep-alive sockets from fetch would otherwise hold close() open.
      server.closeAllConnections();
    });
  }

  /** Clears posts, counters and faults, and drops calls still waiting in a delay. */
  reset(): void {
    this.posts.length = 0;
    this.calls.clear();
    this.faultStates = [];
    this.cancelDelays();
  }

  /** Replaces the fault rules; a seed restarts the PRNG so a run can be replayed. */
  setFaults(rules: FaultRule[], options: { seed?: number } = {}): void {
    const parsed = z.array(faultRuleSchema).parse(rules);
    this.faultStates = parsed.map((rule) => ({ rule, hits: 0 }));
    if (options.seed !== undefined) this.random = mulberry32(options.seed);
  }

  addFault(rule: FaultRule): void {
    this.faultStates.push({ rule: faultRuleSchema.parse(rule), hits: 0 });
  }

  clearFaults(): void {
    this.faultStates = [];
  }

  /** Calls held by a `delay` or `http_then_post` rule, not yet landed: posts that may still land. */
  get heldCount(): number {
    return this.pendingDelays.size;
  }

  /** Accepted posts grouped by metadata.event_payload.deliveryId, where more than one landed. */
  duplicates(): { key: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const post of this.posts) {
      const key = post.metadata?.event_payload.deliveryId;
      if (typeof key === 'string') counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].filter(([, count]) => count > 1).map(([key, count]) => ({ key, count }));
  }

  private app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.use(express.urlencoded({ extended: false, limit: '1mb' }));
    app.use(express.json({ limit: '1mb' }));

    app.post('/_admin/faults', (req, res) => {
      // `curl -d '[…]'` without a Content-Type sends a form: the rules must come as JSON.
      if (!req.is('application/json')) {
        res.status(415).json({
          ok: false,
          error: 'invalid_faults',
          message: `send the rules as JSON (Content-Type: application/json): an array of rules or {"rules": […], "seed": n}; the Content-Type was ${req.get('content-type') === undefined ? 'missing' : quoted(req.get('content-type') ?? '')}`,
        });
        return;
      }
      const body = parseFaultsBody(req.body);
      if (!body.ok) {
        const [first] = body.issues;
        res.status(400).json({
          ok: false,
          error: 'invalid_faults',
          // The first problem in words, its place in the body as a path (`0.respond.ms`).
          message: first ? `${first.path.map(String).join('.') || '(body)'}: ${first.message}` : 'invalid',
          issues: body.issues,
        });
        return;
      }
      const { rules, seed } = body;
      this.setFaults(rules, seed === undefined ? {} : { seed });
      res.json({ ok: true, faults: this.faults });
    });
    app.get('/_admin/faults', (_req, res) => {
      res.json({ ok: true, faults: this.faults });
    });
    app.delete('/_admin/faults', (_req, res) => {
      this.clearFaults();
      res.json({ ok: true });
    });
    app.get('/_admin/posts', (_req, res) => {
      res.json({
        ok: true,
        posts: this.posts,
        callCount: this.callCount,
        duplicates: this.duplicates(),
      });
    });
    app.post('/_admin/reset', (_req, res) => {
      this.reset();
      res.json({ ok: true });
    });
    // The admin routes answer as an API does: a method a path does not take is a 405, a path
    // that is not one of them a 404, in JSON (Express's own answers are HTML pages).
    // Each with `ok: false`, as every other answer of the stand-in that is not a success.
    const failed = { ok: false };
    app.all('/_admin/faults', methodNotAllowed(['GET', 'POST', 'DELETE'], failed));
    app.all('/_admin/posts', methodNotAllowed(['GET'], failed));
    app.all('/_admin/reset', methodNotAllowed(['POST'], failed));
    app.all(['/_admin', '/_admin/*rest'], notFound(failed));

    // Slack takes arguments from the query string as well as the body.
    app.all('/api/:method', async (req, res) => {
      const params: Params = {
        ...(req.query as Params),
        ...(isRecord(req.body) ? req.body : {}),
      };
      await this.handle(req.params.method as string, params, req, res);
    });

    app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) {
        next(err);
        return;
      }
      const type = isRecord(err) ? err.type : undefined;
      if (type === 'entity.parse.failed') {
        // Slack answers a body it cannot read with 200 and `ok: false`; the admin routes, which
        // are the stand-in's own, with 400, so that `curl -f` sees that no rule was set.
        res.status(req.path.startsWith('/_admin/') ? 400 : 200).json({ ok: false, error: 'invalid_json' });
      } else if (type === 'entity.too.large') {
        // Slack's front end answers a body too large in text; the admin routes answer in JSON.
        if (req.path.startsWith('/_admin/')) {
          res.status(413).json({ ok: false, error: 'too_large', message: 'the body is over 1 MB' });
        } else res.status(413).type('text/plain').send('Request Entity Too Large');
      } else if (isRecord(err) && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
        // The request's own fault, as body-parser and the router say it (a charset, a body not in
        // its Content-Encoding, a path that cannot be decoded): its status, in JSON.
        res.status(err.status).json({ ok: false, error: type ?? 'bad_request', message: String(err.message) });
      } else {
        res
          .status(500)
          .type('text/plain')
          .send(err instanceof Error ? err.stack : String(err));
      }
    });
    return app;
  }

  private async handle(method: string, params: Params, req: Request, res: Response): Promise<void> {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    res.set('X-OAuth-Scopes', (this.options.scopes ?? STANDIN_SCOPES).join(','));
    if (method !== 'auth.test' && method !== 'chat.postMessage' && method !== 'conversations.history') {
      res.json({ ok: false, error: 'unknown_method', req_method: method });
      return;
    }
    const token = bearerToken(req, params);
    if (token === undefined) {
      res.json({ ok: false, error: 'not_authed' });
      return;
    }
    if (this.options.token !== undefined && token !== this.options.token) {
      res.json({ ok: false, error: 'invalid_auth' });
      return;
    }
    if (method === 'auth.test') {
      res.json(this.authTest());
    } else if (method === 'conversations.history') {
      res.json(this.history(params));
    } else {
      await this.postMessage(params, token, res);
    }
  }

  private authTest(): SlackAnswer {
    return {
      ok: true,
      url: this.options.teamUrl ?? 'https://fanout-standin.slack.com/',
      team: 'Fanout Stand-in',
      user: 'fanout-bot',
      team_id: this.options.teamId ?? 'T0STANDIN',
      user_id: this.userId(),
      bot_id: this.botId(),
      is_enterprise_install: false,
    };
  }

  /** Tells a watcher (npm start) a post was refused by a fault, and which delivery it named. */
  private emitRefused(params: Params, error: string): void {
    this.emit('refused', { channel: stringParam(params, 'channel'), error, deliveryId: this.deliveryIdOf(params) });
  }

  private async postMessage(params: Params, token: string, res: Response): Promise<void> {
    const fault = this.matchFault(stringParam(params, 'channel'));
    switch (fault?.kind) {
      case 'http':
        this.emitRefused(params, fault.status === 429 ? 'ratelimited (HTTP 429)' : `HTTP ${fault.status}`);
        if (fault.status === 429 || fault.retryAfterSeconds !== undefined) {
          res.set('Retry-After', String(fault.retryAfterSeconds ?? 1));
        }
        if (fault.status === 429) {
          res.status(429).json({ ok: false, error: 'ratelimited' });
        } else {
          answerStatus(res, fault.status);
        }
        return;
      case 'slack_error':
        // Heard by a watcher (npm start) as a post refused, beside the 'post' of one that landed.
        this.emitRefused(params, fault.error);
        res.json({ ok: false, error: fault.error });
        return;
      case 'delay':
        if (!(await this.sleep(fault.ms))) {
          // Stopped or reset mid-delay: the caller sees a dropped connection, not an answer.
          res.destroy();
          return;
        }
        res.json(this.acceptPost(params, token));
        return;
      case 'post_then_error': {
        const answer = this.acceptPost(params, token);
        res.json(answer.ok ? { ok: false, error: fault.error } : answer);
        return;
      }
      case 'post_then_http': {
        const answer = this.acceptPost(params, token);
        if (answer.ok) answerStatus(res, fault.status);
        else res.json(answer);
        return;
      }
      case 'http_then_post':
        answerStatus(res, fault.status);
        // Lands later unless the stand-in is stopped or reset first (a held call, as a delay's).
        void this.sleep(fault.afterMs).then((landed) => {
          if (landed) this.acceptPost(params, token);
        });
        return;
      case undefined:
        res.json(this.acceptPost(params, token));
        return;
    }
  }

  /** Validates like Slack, records the post and answers as chat.postMessage does. */
  private acceptPost(params: Params, token: string): SlackAnswer {
    const channel = stringParam(params, 'channel');
    if (channel === undefined) return { ok: false, error: 'channel_not_found' };
    let blocks: unknown[] | null;
    let metadata: SlackMetadata | null;
    try {
      blocks = this.parseBlocks(params);
      metadata = this.parseMetadata(params);
    } catch (err) {
      if (err instanceof SlackArgError) return { ok: false, error: err.slackError };
      throw err;
    }
    const text = stringParam(params, 'text') ?? null;
    if (text === null && blocks === null && params.attachments === undefined) return { ok: false, error: 'no_text' };

    const post: RecordedPost = {
      channel,
      text,
      blocks,
      metadata,
      ts: this.nextTs(),
      token,
      receivedAt: this.now(),
    };
    this.posts.push(post);
    this.emit('post', post);
    return {
      ok: true,
      channel,
      ts: post.ts,
      message: this.messageOf(post, true),
    };
  }

  private parseBlocks(params: Params): unknown[] | null {
    const blocks = jsonParam(params, 'blocks', 'invalid_blocks_format');
    if (blocks === undefined) return null;
    if (!Array.isArray(blocks)) throw new SlackArgError('invalid_blocks_format');
    if (!blocks.every((b) => isRecord(b) && typeof b.type === 'string')) throw new SlackArgError('invalid_blocks');
    // Slack's limits on the message as a whole: 50 blocks, and about 12,000 characters of text in them.
    if (blocks.length > SLACK_LIMITS.blocksPerMessage) throw new SlackArgError('invalid_blocks');
    if (blocksTextLength(blocks) > SLACK_BLOCKS_TEXT_REFUSED_PAST) throw new SlackArgError('msg_blocks_too_long');
    return blocks.length === 0 ? null : blocks;
  }

  /** The delivery id a post's metadata names, or null (none, or not readable). */
  private deliveryIdOf(params: Params): string | null {
    try {
      const id = this.parseMetadata(params)?.event_payload.deliveryId;
      return typeof id === 'string' ? id : null;
    } catch {
      return null;
    }
  }

  private parseMetadata(params: Params): SlackMetadata | null {
    const metadata = jsonParam(params, 'metadata', 'invalid_metadata_format');
    if (metadata === undefined) return null;
    if (!isRecord(metadata)) throw new SlackArgError('invalid_metadata_format');
    const { event_type, event_payload } = metadata;
    if (typeof event_type !== 'string' || event_type === '' || !isRecord(event_payload)) {
      throw new SlackArgError('invalid_metadata_schema');
    }
    return { event_type, event_payload };
  }

  private history(params: Params): SlackAnswer {
    const channel = stringParam(params, 'channel');
    if (channel === undefined) return { ok: false, error: 'channel_not_found' };
    const inclusive = boolParam(params, 'inclusive');
    const oldest = tsToMicros(stringParam(params, 'oldest') ?? '0');
    const latestParam = stringParam(params, 'latest');
    const latest = latestParam === undefined ? Number.POSITIVE_INFINITY : tsToMicros(latestParam);
    // The cursor is the ts of the last message handed out, so the next page starts below it.
    const cursorParam = stringParam(params, 'cursor');
    const before =
      cursorParam === undefined
        ? Number.POSITIVE_INFINITY
        : tsToMicros(Buffer.from(cursorParam, 'base64url').toString());
    const requested = Number(stringParam(params, 'limit') ?? HISTORY_DEFAULT_LIMIT);
    const limit =
      Number.isInteger(requested) && requested > 0 ? Math.min(requested, HISTORY_MAX_LIMIT) : HISTORY_DEFAULT_LIMIT;

    const matching = this.posts
      .filter((p) => {
        if (p.channel !== channel) return false;
        const t = tsToMicros(p.ts);
        const inRange = inclusive ? t >= oldest && t <= latest : t > oldest && t < latest;
        return inRange && t < before;
      })
      .sort((a, b) => tsToMicros(b.ts) - tsToMicros(a.ts));
    const page = matching.slice(0, limit);
    const hasMore = matching.length > limit;
    const last = page.at(-1);
    // Slack hands metadata back only to callers that ask for it.
    const withMetadata = boolParam(params, 'include_all_metadata');
    return {
      ok: true,
      messages: page.map((p) => this.messageOf(p, withMetadata)),
      has_more: hasMore,
      pin_count: 0,
      response_metadata: {
        next_cursor: hasMore && last ? Buffer.from(last.ts).toString('base64url') : '',
      },
    };
  }

  private messageOf(post: RecordedPost, withMetadata: boolean): Record<string, unknown> {
    const message: Record<string, unknown> = {
      type: 'message',
      user: this.userId(),
      bot_id: this.botId(),
      ts: post.ts,
      text: post.text ?? '',
    };
    if (post.blocks !== null) message.blocks = post.blocks;
    if (withMetadata && post.metadata !== null) message.metadata = post.metadata;
    return message;
  }

  private matchFault(channel: string | undefined): FaultResponse | undefined {
    for (const state of this.faultStates) {
      const { rule } = state;
      if (rule.times !== undefined && state.hits >= rule.times) continue;
      if (rule.channel !== undefined && rule.channel !== channel) continue;
      if (rule.channelPrefix !== undefined && !channel?.startsWith(rule.channelPrefix)) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      state.hits += 1;
      return rule.respond;
    }
    return undefined;
  }

  /** Resolves true when the time ran out, false when stop() or reset() cut it short. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const pending = {
        timer: setTimeout(() => {
          this.pendingDelays.delete(pending);
          resolve(true);
        }, ms),
        resolve,
      };
      this.pendingDelays.add(pending);
    });
  }

  private cancelDelays(): void {
    for (const pending of this.pendingDelays) {
      clearTimeout(pending.timer);
      pending.resolve(false);
    }
    this.pendingDelays.clear();
  }

  /** Unique and increasing even when the clock stands still or steps back. */
  private nextTs(): string {
    this.lastTsMicros = Math.max(Math.floor(this.now() * 1000), this.lastTsMicros + 100);
    return microsToTs(this.lastTsMicros);
  }

  private userId(): string {
    return this.options.userId ?? 'U0STANDIN';
  }

  private botId(): string {
    return this.options.botId ?? 'B0STANDIN';
  }
}

if (require.main === module) {
  const seed = process.env.SLACK_STANDIN_SEED;
  const standIn = new SlackStandIn({
    ...(process.env.SLACK_STANDIN_TOKEN ? { token: process.env.SLACK_STANDIN_TOKEN } : {}),
    ...(seed ? { seed: Number(seed) } : {}),
  });
  standIn.start(Number(process.env.PORT ?? 3999)).then(
    ({ url }) => console.log(`Slack stand-in listening on ${url} (admin: ${new URL('/_admin/posts', url).href})`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void standIn.stop().then(() => process.exit(0));
    });
  }
}
