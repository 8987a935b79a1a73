import type { DispatchMessage } from '../shared/messages';
import { deliveryIdOf } from '../shared/model';

/**
 * A push body shaped like the one Pub/Sub's production push sends (the same shape as
 * test/helpers.ts `pushEnvelope`, which the build does not include): base64 data, the
 * attributes the dispatcher sets, both spellings of the ids, and a deliveryAttempt.
 */
export function pushEnvelope(message: DispatchMessage, messageId: string, publishTime = new Date()) {
  const data = Buffer.from(JSON.stringify(message)).toString('base64');
  const published = publishTime.toISOString();
  return {
    deliveryAttempt: 1,
    message: {
      attributes: { deliveryId: deliveryIdOf(message.notificationId, message.occurrence), runId: message.runId },
      data,
      messageId,
      message_id: messageId,
      publishTime: published,
      publish_time: published,
    },
    subscription: 'projects/bench/subscriptions/slack-fanout-dispatch-push',
  };
}

/** The dispatch message and attributes the dispatcher publishes, for the publish ceiling. */
export function dispatchMessage(i: number, occurrence: string, scheduleId: string) {
  const notificationId = `n-${String(i + 1).padStart(7, '0')}`;
  const runId = `${scheduleId}:${occurrence}`;
  const message: DispatchMessage = { v: 1, notificationId, occurrence, scheduleId, runId };
  return { message, attributes: { deliveryId: deliveryIdOf(notificationId, occurrence), runId } };
}

/** Billable Pub/Sub size of a message: data, attribute keys and values, 20 bytes of timestamp, the id. */
export function billableMessageBytes(
  message: DispatchMessage,
  attributes: Record<string, string>,
  messageIdLength = 16,
): number {
  const data = Buffer.byteLength(JSON.stringify(message));
  const attrs = Object.entries(attributes).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  return data + attrs + 20 + messageIdLength;
}
