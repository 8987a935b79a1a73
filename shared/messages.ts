import { z } from 'zod';

/** The payload of one dispatch message: one notification at one occurrence. */
export const dispatchMessageSchema = z.object({
  v: z.literal(1),
  notificationId: z.string().min(1).max(500),
  occurrence: z.iso.datetime(),
  scheduleId: z.string().min(1).max(500),
  runId: z.string().min(1).max(1100),
  /** Set by a redrive so that logs can tell the two apart. */
  redrive: z.boolean().optional(),
});
export type DispatchMessage = z.infer<typeof dispatchMessageSchema>;

/** The wrapped push body Pub/Sub sends (both camelCase and snake_case copies of ids). */
export const pushEnvelopeSchema = z.object({
  message: z.object({
    data: z.string().optional(),
    attributes: z.record(z.string(), z.string()).optional(),
    messageId: z.string().optional(),
    message_id: z.string().optional(),
    publishTime: z.string().optional(),
    publish_time: z.string().optional(),
    orderingKey: z.string().optional(),
  }),
  subscription: z.string().optional(),
  deliveryAttempt: z.number().int().min(0).optional(),
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
      messageId: null,
    };
  }
  const m = env.data.message;
  const messageId = m.messageId ?? m.message_id ?? null;
  const attributes = m.attributes ?? {};
  const deliveryId = attributes.deliveryId ?? null;
  const fail = (reason: string): ParseResult => ({ ok: false, reason, deliveryId, messageId });

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
