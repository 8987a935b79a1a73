/**
 * Typed errors for a delivery attempt. Every failure becomes a FanoutError whose
 * `retryable` says whether Pub/Sub should redeliver; `pushStatus()` is the one place
 * that turns an outcome into an HTTP status (and so into an ack or a nack).
 */
export type FanoutErrorCode =
  // Slack told us, or the transport failed, and another attempt may succeed.
  | 'slack_retryable'
  // Slack may or may not have posted (internal_error, fatal_error, a timeout).
  | 'slack_outcome_unknown'
  // An earlier attempt's post may have landed, and the channel cannot be read to check: not
  // posted again, so as not to post twice (never counted towards pausing).
  | 'slack_outcome_unverifiable'
  // Slack refused for good: the workspace, the channel or the payload.
  | 'slack_permanent_workspace'
  | 'slack_permanent_channel'
  | 'slack_permanent_payload'
  // Our own input was bad: a malformed push, a missing or broken notification.
  | 'invalid_message'
  | 'notification_not_found'
  | 'invalid_notification'
  // This occurrence's own permanent failure paused the notification, and its failed record
  // could not be written then: recorded failed on the retry (never counted again).
  | 'paused_by_this_failure'
  // A dependency (Firestore, Pub/Sub) did not answer.
  | 'dependency_unavailable';

export interface FanoutErrorOptions extends ErrorOptions {
  slackError?: string;
  retryAfterSeconds?: number;
}

export class FanoutError extends Error {
  override readonly name: string = 'FanoutError';
  readonly code: FanoutErrorCode;
  readonly retryable: boolean;
  /** Slack's own error string, when Slack gave one. */
  readonly slackError?: string;
  readonly retryAfterSeconds?: number;

  constructor(code: FanoutErrorCode, message: string, retryable: boolean, options: FanoutErrorOptions = {}) {
    super(message, options);
    this.code = code;
    this.retryable = retryable;
    if (options.slackError !== undefined) this.slackError = options.slackError;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export class RetryableError extends FanoutError {
  override readonly name = 'RetryableError';
  constructor(
    code: Extract<FanoutErrorCode, 'slack_retryable' | 'slack_outcome_unknown' | 'dependency_unavailable'>,
    message: string,
    options: FanoutErrorOptions = {},
  ) {
    super(code, message, true, options);
  }
}

export class PermanentError extends FanoutError {
  override readonly name = 'PermanentError';
  constructor(
    code: Exclude<FanoutErrorCode, 'slack_retryable' | 'slack_outcome_unknown' | 'dependency_unavailable'>,
    message: string,
    options: FanoutErrorOptions = {},
  ) {
    super(code, message, false, options);
  }
}

/** chat.postMessage error codes by what a delivery should do (Slack's method documentation). */
export const SLACK_ERROR_GROUPS = {
  retry: [
    'ratelimited',
    'rate_limited',
    'service_unavailable',
    'request_timeout',
    'team_added_to_org',
    'org_login_required',
    'message_limit_exceeded',
    // The notifier reads its token once at start and does not refresh it: retried, then
    // dead-lettered, so that a redrive sends it once the token is replaced.
    'token_expired',
  ],
  outcome_unknown: ['internal_error', 'fatal_error'],
  permanent_workspace: [
    'invalid_auth',
    'not_authed',
    'account_inactive',
    'token_revoked',
    'missing_scope',
    'no_permission',
    'not_allowed_token_type',
    'access_denied',
    'accesslimited',
    'ekm_access_denied',
    'enterprise_is_restricted',
    'app_access_restricted',
    'two_factor_setup_required',
    'team_not_found',
  ],
  permanent_channel: [
    'channel_not_found',
    'not_in_channel',
    'is_archived',
    'restricted_action',
    'restricted_action_read_only_channel',
    'restricted_action_thread_only_channel',
    'restricted_action_non_threadable_channel',
    'messages_tab_disabled',
  ],
  permanent_payload: [
    'msg_too_long',
    'msg_blocks_too_long',
    'no_text',
    'invalid_blocks',
    'invalid_blocks_format',
    'too_many_attachments',
    'attachment_payload_limit_exceeded',
    'markdown_text_conflict',
    'invalid_metadata_format',
    'invalid_metadata_schema',
    'metadata_too_large',
    'invalid_arguments',
    'invalid_arg_name',
    'invalid_array_arg',
    'invalid_charset',
    'invalid_form_data',
    'invalid_post_type',
    'missing_post_type',
  ],
} as const;

/**
 * The permanent payload errors a report's data can cause (its size, the blocks its text makes),
 * and HTTP 413 (`http_413`), a body too big; the rest of the group (`invalid_arguments`,
 * `no_text`, the metadata's) only this code can cause.
 */
export const DATA_PAYLOAD_ERRORS: ReadonlySet<string> = new Set([
  'msg_too_long',
  'msg_blocks_too_long',
  'invalid_blocks',
  'http_413',
]);

const GROUP_OF = new Map<string, keyof typeof SLACK_ERROR_GROUPS>();
for (const [group, codes] of Object.entries(SLACK_ERROR_GROUPS)) {
  for (const code of codes) GROUP_OF.set(code, group as keyof typeof SLACK_ERROR_GROUPS);
}

/** Maps one of Slack's `error` strings (from an `ok: false` answer) to a FanoutError. */
export function classifySlackErrorCode(slackError: string, cause?: unknown): FanoutError {
  const opts: FanoutErrorOptions = { slackError, cause };
  const message = `Slack answered ${slackError}`;
  switch (GROUP_OF.get(slackError)) {
    case 'retry':
      return new RetryableError('slack_retryable', message, opts);
    case 'outcome_unknown':
      return new RetryableError('slack_outcome_unknown', message, opts);
    case 'permanent_workspace':
      return new PermanentError('slack_permanent_workspace', message, opts);
    case 'permanent_channel':
      return new PermanentError('slack_permanent_channel', message, opts);
    case 'permanent_payload':
      return new PermanentError('slack_permanent_payload', message, opts);
    default:
      // An error code Slack adds later: a retry is bounded by the dead-letter policy,
      // while calling it permanent could drop a post that would have gone through.
      return new RetryableError('slack_retryable', message, opts);
  }
}

/** Maps an HTTP status from Slack (or a proxy in front of it) to a FanoutError. */
export function classifySlackHttpStatus(status: number, retryAfterSeconds?: number, cause?: unknown): FanoutError {
  const opts: FanoutErrorOptions = { cause, slackError: `http_${status}` };
  if (retryAfterSeconds !== undefined) opts.retryAfterSeconds = retryAfterSeconds;
  // 429, 408: Slack (or the gateway in front of it) did not take the request.
  if (status === 429 || status === 408) {
    return new RetryableError('slack_retryable', `Slack answered HTTP ${status}`, opts);
  }
  // Any 5xx can come from a proxy or gateway after Slack took the request (a 502 or 504 once
  // the post went through, and a 503 too: Envoy answers 503 for a connection reset upstream
  // after it sent the request on): the next attempt looks for the post before posting again.
  if (status >= 500) {
    return new RetryableError('slack_outcome_unknown', `Slack answered HTTP ${status}`, opts);
  }
  // Any other 2xx: something took the request (Slack answers 200 alone), so the post may have
  // gone through; the next attempt looks for it before posting again.
  if (status >= 200 && status < 300) {
    return new RetryableError('slack_outcome_unknown', `Slack answered HTTP ${status}, not 200`, opts);
  }
  // 413: the request is too big, and the same request will be again.
  if (status === 413) return new PermanentError('slack_permanent_payload', `Slack answered HTTP ${status}`, opts);
  // Slack answers its own errors with HTTP 200 (`ok: false`), so any other status comes from
  // something in between (an egress proxy, a gateway, a wrong route) that did not pass the post
  // on: retried, bounded by the dead-letter policy, and redrivable once it is fixed, instead of
  // a report dropped for good by a few minutes of proxy trouble.
  return new RetryableError('slack_retryable', `Slack answered HTTP ${status}`, opts);
}

/**
 * How much of its claim an attempt must still hold to start a post: the Slack call's timeout, and
 * as long again in which a call that timed out may still land (postMayStillLand). The notifier
 * starts no post with less; CLAIM_TTL_SECONDS must exceed it (shared/config.ts).
 */
export function postWindowMs(slackTimeoutMs: number): number {
  return 2 * slackTimeoutMs;
}

/**
 * Statuses a gateway or proxy answers when it gave up on Slack, not knowing whether the post
 * landed: any 5xx (a 502, 503 or 504 most often, but a proxy may answer 500 for an upstream it
 * lost, as classifySlackHttpStatus says).
 */
const GATEWAY_GAVE_UP = /^http_5\d\d$/;

/**
 * Whether a post that failed this way may still land later: the call was cut off or timed
 * out, a gateway gave up on Slack while the request may still be on its way (a 502 or an
 * Envoy 503 for an upstream reset, a 504 for a timeout), or the failure is not one we know.
 * After any other answer the call is over, posted or not.
 */
export function postMayStillLand(err: FanoutError): boolean {
  if (err.code !== 'slack_outcome_unknown') return false;
  return (
    err.slackError === undefined ||
    err.slackError === 'request_timeout' ||
    err.slackError === 'connection_reset' ||
    GATEWAY_GAVE_UP.test(err.slackError)
  );
}

/** What a push handler answers. Pub/Sub acks only 102, 200, 201, 202 and 204. */
export type PushOutcome =
  | { kind: 'ack'; reason: string }
  | { kind: 'retry'; reason: string; retryAfterSeconds?: number };

export function outcomeOf(err: unknown): PushOutcome {
  if (err instanceof FanoutError) {
    if (err.retryable) {
      const outcome: PushOutcome = { kind: 'retry', reason: err.code };
      if (err.retryAfterSeconds !== undefined) outcome.retryAfterSeconds = err.retryAfterSeconds;
      return outcome;
    }
    return { kind: 'ack', reason: err.code };
  }
  // Anything unexpected is retried: the dead-letter policy bounds it.
  return { kind: 'retry', reason: 'unexpected_error' };
}

export function pushStatus(outcome: PushOutcome): number {
  return outcome.kind === 'ack' ? 204 : 503;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
