import { z } from 'zod';
import { deliveryIdOf, documentIdProblem, documentIdSchema } from './model';

/** The payload of one dispatch message: one notification at one occurrence. */
export const dispatchMessageSchema = z
  .object({
    v: z.literal(1),
    // A document id: the notification's, and with the occurrence the delivery's.
    notificationId: documentIdSchema.max(500),
    occurrence: z.iso.datetime(),
    scheduleId: z.string().min(1).max(500),
    runId: z.string().min(1).max(1100),
    /** Set by a redrive so that logs can tell the two apart. */
    redrive: z.boolean().optional(),
  })
  // The ledger key built from the two must be a document id too (a long id, a long fraction).
  .superRefine((m, ctx) => {
    const problem = documentIdProblem(deliveryIdOf(m.notificationId, m.occurrence));
    if (problem) ctx.addIssue({ code: 'custom', path: ['notificationId'], message: `its delivery id ${problem}` });
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
  deliveryAttempt: z.number().int().min(0).optional().catch(undefined),
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
    };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Turns a push body (anything) into a dispatch message, or says why it is not one. */
export function parsePushBody(body: unknown): ParseResult {
  const env = pushEnvelopeSchema.safeParse(body);
  if (!env.success) {
    return {
      ok: false,
      reason: `not a Pub/Sub push envelope: ${summarise(env.error)}`,
      deliveryId: null,
      runId: null,
      messageId: null,
    };
  }
  const m = env.data.message;
  const messageId = m.messageId ?? m.message_id ?? null;
  const attributes = m.attributes ?? {};
  const deliveryId = idAttribute(attributes.deliveryId);
  const runId = idAttribute(attributes.runId, 1100);
  const fail = (reason: string): ParseResult => ({ ok: false, reason, deliveryId, runId, messageId });

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

  const published = m.publishTime ?? m.publish_time;
  const publishTime = published ? new Date(published) : null;
  return {
    ok: true,
    push: {
      message: msg.data,
      messageId,
      publishTime: publishTime && !Number.isNaN(publishTime.getTime()) ? publishTime : null,
      deliveryAttempt: env.data.deliveryAttempt ?? null,
      attributes,
    },
  };
}

/** An id the envelope's attributes name, when it can be a ledger document: another could not be recorded anyway. */
function idAttribute(value: string | undefined, maxLength = Number.POSITIVE_INFINITY): string | null {
  return value !== undefined && value.length <= maxLength && documentIdProblem(value) === null ? value : null;
}

function summarise(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Builds the body Pub/Sub would push, for tests and for the redrive path. */
export function encodeDispatchMessage(message: DispatchMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}
