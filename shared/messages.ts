import {
  deliveryIdOf,
  documentIdProblem,
  documentIdSchema,
  excerpt,
  LONE_SURROGATE,
  lookalikeIdNote,
  quoted,
  runIdOf,
} from './model';
import { z } from './zod';

/** RFC 3339 `date-time` with a `Z` or an offset, any number of fraction digits; calendar-checked. */
const rfc3339 = z.iso.datetime({ offset: true });

/**
 * An RFC 3339 date-time in the spelling the schema and Date read, or null when it is not one:
 * upper case (RFC 3339 allows `t` and `z` in lower case, and nothing else in it has a case), a
 * `T` for a space after the date (which its section 5.6 allows, as people often type it).
 */
export function rfc3339Spelling(s: string): string | null {
  const upper = s.toUpperCase().replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T');
  return rfc3339.safeParse(upper).success ? upper : null;
}

const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * An RFC 3339 date-time (already checked as one) as milliseconds, its fraction cut to three
 * digits (V8 misreads longer fractions of years before 1970); NaN for no calendar instant.
 */
function rfc3339Millis(s: string): number {
  return Date.parse(s.replace(/\.(\d+)/, (_all, f: string) => `.${f.slice(0, 3).padEnd(3, '0')}`));
}

/**
 * The one spelling of an occurrence: `Date.prototype.toISOString()`'s (UTC, milliseconds,
 * 24 characters), which the dispatcher writes and the ledger keys (`{notificationId}:{occurrence}`)
 * and run ids (`{scheduleId}:{occurrence}`) are built from. Any RFC 3339 spelling of an instant
 * is accepted (an offset, fewer or more fraction digits), so the same instant always gives the
 * same delivery. Refused, with the reason: anything else, a year the canonical form cannot write
 * in four digits, and a fraction finer than milliseconds that is not zero: that names an instant
 * no occurrence can be, and rounding it would silently merge distinct instants under one key.
 */
export function canonicalOccurrence(s: string): { ok: true; occurrence: string } | { ok: false; problem: string } {
  // The dispatcher's own spelling, on every push: already canonical when it reads back as itself.
  if (CANONICAL.test(s)) {
    const at = Date.parse(s);
    if (Number.isFinite(at) && new Date(at).toISOString() === s) return { ok: true, occurrence: s };
  }
  // Quoted with an invisible character written as its escape: `"…:00Z\u200B"`, not a quote that
  // looks like a good date-time.
  const bad = (why: string) => ({
    ok: false as const,
    problem: `${quoted(s, 40)} ${why}`,
  });
  // As the tick's header and a typed run id take it.
  const upper = rfc3339Spelling(s);
  if (upper === null) return bad('is not an RFC 3339 date-time like 2030-01-01T09:00:00.000Z');
  const fraction = /\.(\d+)/.exec(upper)?.[1] ?? '';
  if (/[1-9]/.test(fraction.slice(3))) return bad('has sub-millisecond digits that are not zero');
  const at = rfc3339Millis(upper);
  if (!Number.isFinite(at)) return bad('is not a valid calendar date and time');
  const occurrence = new Date(at).toISOString();
  // Outside 0000–9999 the canonical form grows a sign and two digits.
  if (occurrence.length !== 24) return bad('is outside the years 0000 to 9999 in UTC');
  return { ok: true, occurrence };
}

/** The instants a Firestore timestamp holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const FIRESTORE_MIN_MS = Date.parse('0001-01-01T00:00:00.000Z');
const FIRESTORE_MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * A time Pub/Sub gives (a message's `publishTime`, a dead letter's publish-time attribute): an
 * RFC 3339 date-time (nanoseconds kept to the millisecond) that Firestore can store, else null.
 * Pub/Sub writes only such times; anything else (`"1"`, which Date reads as 2001, a year past
 * 9999, which Firestore refuses) was made by hand and is read as absent.
 */
export function pubsubTime(value: unknown): Date | null {
  if (typeof value !== 'string' || value === '') return null;
  const upper = value.toUpperCase();
  if (!rfc3339.safeParse(upper).success) return null;
  const at = rfc3339Millis(upper);
  return Number.isFinite(at) && at >= FIRESTORE_MIN_MS && at <= FIRESTORE_MAX_MS ? new Date(at) : null;
}

/**
 * A run id as an operator may type it (`{scheduleId}:{occurrence}`, the occurrence in any RFC 3339
 * spelling, `…T09:00:00Z` or `…T10:00:00+01:00`) in the one spelling runs are stored under, the
 * occurrence canonical (canonicalOccurrence). Unchanged when no date-time follows a colon.
 */
export function canonicalRunId(runId: string): string {
  const parts = runIdParts(runId);
  if (!parts) return runId;
  const occurrence = canonicalOccurrence(parts.occurrence);
  return occurrence.ok ? `${parts.scheduleId}:${occurrence.occurrence}` : runId;
}

/**
 * A typed run id's schedule id and occurrence: the occurrence is what follows the first colon
 * (or blank) that a date follows (a schedule id may hold colons), else the first colon; RFC
 * 3339 lets a space stand for the `T` (its section 5.6), as people often type it.
 */
function runIdParts(runId: string): { scheduleId: string; occurrence: string } | null {
  const dated = /^(.+?)(?::|\s+)(\d{4}-\d{2}-\d{2})[Tt ](.*)$/.exec(runId);
  if (dated?.[1] && dated[2]) return { scheduleId: dated[1], occurrence: `${dated[2]}T${dated[3] ?? ''}` };
  const colon = runId.indexOf(':');
  return colon > 0 ? { scheduleId: runId.slice(0, colon), occurrence: runId.slice(colon + 1) } : null;
}

/**
 * Why `runId`, as typed, cannot name a run (`{scheduleId}:{occurrence}`, the occurrence in any
 * RFC 3339 spelling), or null when it can: said instead of "no such run".
 */
export function runIdProblem(runId: string): string | null {
  const parts = runIdParts(runId);
  if (!parts) return 'is not {scheduleId}:{occurrence}, as the tick answers and the logs show';
  const occurrence = canonicalOccurrence(parts.occurrence);
  if (occurrence.ok) return null;
  // An id pasted with a character that does not show (a zero-width space, a blank at its end):
  // said, as a notification id's is, since the quoted id looks like a good one.
  const note = lookalikeIdNote(runId);
  return `has an occurrence that cannot be read: ${occurrence.problem}${note ? `; ${note}` : ''}`;
}

/** The payload of one dispatch message: one notification at one occurrence. */
export const dispatchMessageSchema = z
  .object({
    v: z.literal(1),
    // A document id: the notification's, and with the occurrence the delivery's.
    notificationId: documentIdSchema.max(500),
    // Any RFC 3339 spelling; normalised below to the canonical one (canonicalOccurrence).
    occurrence: z.string(),
    // A document id too, and with the occurrence the run's (checked below).
    scheduleId: documentIdSchema.max(500),
    // Kept on the delivery record: text Firestore can store (a write of a lone surrogate fails,
    // every attempt and its dead letter's record with it).
    runId: z
      .string()
      .min(1)
      .max(1100)
      .refine((id) => !LONE_SURROGATE.test(id), 'is not well-formed Unicode (a lone surrogate)'),
    /** Set by a redrive so that logs can tell the two apart. */
    redrive: z.boolean().optional(),
    /** The redrive that published it (the delivery record's redriveId), to tell its dead letter from an older one's. */
    redriveId: z.string().min(1).max(100).optional(),
  })
  .transform((m, ctx) => {
    // The ledger key is built from the occurrence: one instant, one spelling, one delivery.
    const canonical = canonicalOccurrence(m.occurrence);
    if (!canonical.ok) {
      ctx.addIssue({ code: 'custom', path: ['occurrence'], message: canonical.problem });
      return z.NEVER;
    }
    const occurrence = canonical.occurrence;
    // A run id is `{scheduleId}:{occurrence}` (runIdOf). One that ends in the occurrence as
    // written is made to end in the canonical form, so that the delivery counts in the same run
    // as the dispatcher's and a redrive, which reads the schedule id off the run id by its
    // `:{occurrence}` suffix, still finds it.
    const runId =
      occurrence !== m.occurrence && m.runId.endsWith(`:${m.occurrence}`)
        ? `${m.runId.slice(0, -m.occurrence.length)}${occurrence}`
        : m.runId;
    // Any other run id is not one a run published under: its delivery would be recorded where
    // no `run`, `deliveries` or redrive looks, and its dead letter could not be redriven.
    const own = runIdOf(m.scheduleId, occurrence);
    if (runId !== own && runId.length <= 1100) {
      ctx.addIssue({
        code: 'custom',
        path: ['runId'],
        message: `is not ${excerpt(own, 200)}, its schedule's run at its occurrence`,
      });
    }
    if (runId.length > 1100) {
      ctx.addIssue({
        code: 'custom',
        path: ['runId'],
        message: 'is longer than 1100 characters with its occurrence normalised',
      });
    }
    // The ledger key built from the two must be a document id too (a long notification id), and
    // so must the run's, which the dead-letter check reads (500 characters can be 2,000 bytes).
    const problem = documentIdProblem(deliveryIdOf(m.notificationId, occurrence));
    if (problem) ctx.addIssue({ code: 'custom', path: ['notificationId'], message: `its delivery id ${problem}` });
    const runProblem = documentIdProblem(runIdOf(m.scheduleId, occurrence));
    if (runProblem) ctx.addIssue({ code: 'custom', path: ['scheduleId'], message: `its run id ${runProblem}` });
    return { ...m, occurrence, runId };
  });
export type DispatchMessage = z.infer<typeof dispatchMessageSchema>;

/**
 * The wrapped push body Pub/Sub sends (both camelCase and snake_case copies of ids). Only
 * `message` must be there and be an object; a field of another shape than Pub/Sub's is read
 * as absent (an attribute that is not a string is dropped), so that a message whose data is
 * good is still delivered, or its failure recorded, whatever else the envelope carries.
 */
export const pushEnvelopeSchema = z.object({
  message: z.object({
    data: z.string().optional(),
    attributes: z
      .record(z.string(), z.unknown())
      .optional()
      .catch(undefined)
      .transform((a) =>
        a === undefined
          ? undefined
          : Object.fromEntries(Object.entries(a).filter((e): e is [string, string] => typeof e[1] === 'string')),
      ),
    messageId: z.string().optional().catch(undefined),
    message_id: z.string().optional().catch(undefined),
    publishTime: z.string().optional().catch(undefined),
    publish_time: z.string().optional().catch(undefined),
    orderingKey: z.string().optional().catch(undefined),
  }),
  subscription: z.string().optional().catch(undefined),
  // Pub/Sub counts attempts from 1: a 0 is not its, and is read as absent as other shapes are.
  deliveryAttempt: z.number().int().min(1).optional().catch(undefined),
});
export type PushEnvelope = z.infer<typeof pushEnvelopeSchema>;

export interface ParsedPush {
  message: DispatchMessage;
  messageId: string | null;
  publishTime: Date | null;
  deliveryAttempt: number | null;
  attributes: Record<string, string>;
}

export type ParseResult =
  | { ok: true; push: ParsedPush }
  | {
      ok: false;
      reason: string;
      /** The delivery id when the envelope carries one, so the bad input can be recorded. */
      deliveryId: string | null;
      /** The run id when the envelope carries one (the dispatcher sets it), so the record counts in its run. */
      runId: string | null;
      messageId: string | null;
      /**
       * A dispatch message as the body itself, as a push subscription set to "no wrapper" sends
       * it: good in itself, so it is not to be acked as a bad one (the subscription is at fault).
       */
      unwrapped?: DispatchMessage;
    };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** How much of a message id the log lines keep: Pub/Sub's are a few dozen digits. */
export const MESSAGE_ID_CHARS = 100;

/** Turns a push body (anything) into a dispatch message, or says why it is not one. */
export function parsePushBody(body: unknown): ParseResult {
  const env = pushEnvelopeSchema.safeParse(body);
  if (!env.success) {
    // A dispatch message as the body itself: a subscription set to push its messages unwrapped.
    // Its delivery is named, so that it is recorded: acked unrecorded, it would be lost unseen.
    const bare = dispatchMessageSchema.safeParse(body);
    if (bare.success) {
      const m = bare.data;
      return {
        ok: false,
        reason:
          'a dispatch message without its Pub/Sub envelope: the push subscription sends its messages unwrapped ("no wrapper"); set it to wrap them',
        deliveryId: idAttribute(deliveryIdOf(m.notificationId, m.occurrence)),
        runId: idAttribute(m.runId, 1100),
        messageId: null,
        unwrapped: m,
      };
    }
    // Its attributes, where they are strings, still name the delivery (a `data` of 5 or null):
    // recorded against it, as a message with bad data is.
    const attributes = looseAttributes(body);
    return {
      ok: false,
      reason: `not a Pub/Sub push envelope: ${summarise(env.error)}`,
      deliveryId: idAttribute(attributes.deliveryId),
      runId: idAttribute(attributes.runId, 1100),
      messageId: null,
    };
  }
  const m = env.data.message;
  // Pub/Sub's ids are a few dozen digits: one longer, from elsewhere, is cut for the log lines it is on.
  const id = m.messageId ?? m.message_id;
  const messageId = id === undefined ? null : excerpt(id, MESSAGE_ID_CHARS);
  const attributes = m.attributes ?? {};
  // The attributes' ids are read only for a message refused: a good one's come from its body.
  const fail = (reason: string): ParseResult => ({
    ok: false,
    reason,
    deliveryId: idAttribute(attributes.deliveryId),
    runId: idAttribute(attributes.runId, 1100),
    messageId,
  });

  if (!m.data) return fail('message.data is missing');
  if (m.data.length % 4 !== 0 || !BASE64.test(m.data)) return fail('message.data is not base64');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(m.data, 'base64').toString('utf8'));
  } catch {
    return fail('message.data is not base64-encoded JSON');
  }
  const msg = dispatchMessageSchema.safeParse(json);
  if (!msg.success) return fail(`message.data is not a dispatch message: ${summarise(msg.error)}`);

  return {
    ok: true,
    push: {
      message: msg.data,
      messageId,
      publishTime: pubsubTime(m.publishTime ?? m.publish_time),
      deliveryAttempt: env.data.deliveryAttempt ?? null,
      attributes,
    },
  };
}

/** An id the envelope's attributes name, when it can be a ledger document: another could not be recorded anyway. */
/** The `deliveryId` and `runId` attributes of a body that is not an envelope, where they are strings. */
function looseAttributes(body: unknown): { deliveryId?: string; runId?: string } {
  const message: unknown =
    body !== null && typeof body === 'object' ? (body as { message?: unknown }).message : undefined;
  const attributes: unknown =
    message !== null && typeof message === 'object' ? (message as { attributes?: unknown }).attributes : undefined;
  if (attributes === null || typeof attributes !== 'object') return {};
  const { deliveryId, runId } = attributes as Record<string, unknown>;
  return {
    ...(typeof deliveryId === 'string' ? { deliveryId } : {}),
    ...(typeof runId === 'string' ? { runId } : {}),
  };
}

function idAttribute(value: string | undefined, maxLength = Number.POSITIVE_INFINITY): string | null {
  if (value === undefined) return null;
  const id = withCanonicalOccurrence(value);
  return id.length <= maxLength && documentIdProblem(id) === null ? id : null;
}

/**
 * `{id}:{occurrence}` with its occurrence in the canonical form, when it ends in one written
 * another way: a bad message is then recorded on the same ledger document and run as the good
 * ones for that instant. Anything else is given back as it is.
 */
function withCanonicalOccurrence(id: string): string {
  let at = -1;
  for (const m of id.matchAll(/:(?=\d{4}-\d{2}-\d{2}[Tt ])/g)) at = m.index;
  if (at < 0) return id;
  const c = canonicalOccurrence(id.slice(at + 1));
  return c.ok ? `${id.slice(0, at + 1)}${c.occurrence}` : id;
}

function summarise(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Pub/Sub's limit on an attribute value, in UTF-8 bytes; the emulator does not enforce it. */
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/**
 * A dispatch message's attributes: the delivery and run it is for, which the notifier reads
 * when the data cannot be. A delivery id longer than Pub/Sub takes in an attribute (a notification
 * id saved before ids were capped to fit) is left out rather than failing the whole publish
 * request: the data names the delivery too.
 */
export function dispatchAttributes(deliveryId: string, runId: string): Record<string, string> {
  // UTF-8 holds a UTF-16 unit in at most 3 bytes: short ids need no count.
  const fits =
    deliveryId.length * 3 <= MAX_ATTRIBUTE_VALUE_BYTES ||
    Buffer.byteLength(deliveryId, 'utf8') <= MAX_ATTRIBUTE_VALUE_BYTES;
  return fits ? { deliveryId, runId } : { runId };
}

/** A dispatch message's data, as the dispatcher publishes it. */
export function dispatchMessageJson(message: DispatchMessage): string {
  return JSON.stringify(message);
}

/** Builds the body Pub/Sub would push, for tests and for the redrive path. */
export function encodeDispatchMessage(message: DispatchMessage): Buffer {
  return Buffer.from(dispatchMessageJson(message));
}
