import type { Request, RequestHandler, Response } from 'express';
import { OAuth2Client, type TokenPayload } from 'google-auth-library';
import { type Config, ConfigError, ENV, readConfig, type ServiceName } from './config';
import { routePath } from './http';
import { quoted } from './model';

/**
 * Who may call what. Cloud Scheduler, Pub/Sub push and operators present a Google-signed
 * OIDC ID token; each route admits a token for our audience from the emails it names.
 */

/** The issuers of Google ID tokens; nothing else is accepted. */
export const GOOGLE_ISSUERS: readonly string[] = ['https://accounts.google.com', 'accounts.google.com'];

/** Checks a token's signature, expiry, issuer and audience; throws when any of them fails. */
export interface TokenVerifier {
  verify(idToken: string, audience: readonly string[]): Promise<TokenPayload>;
}

/**
 * The production verifier: `OAuth2Client.verifyIdToken`, which fetches Google's signing
 * certificates and caches them for as long as Google's Cache-Control allows.
 */
export function googleTokenVerifier(client = new OAuth2Client({ issuers: [...GOOGLE_ISSUERS] })): TokenVerifier {
  return {
    async verify(idToken, audience) {
      const ticket = await client.verifyIdToken({ idToken, audience: [...audience] });
      const payload = ticket.getPayload();
      if (!payload) throw new Error('the token has no payload');
      return payload;
    },
  };
}

export type AuthRejection =
  | 'missing_token'
  | 'malformed_authorization'
  | 'malformed_token'
  | 'unsupported_alg'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'lifetime_too_long'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'invalid_token'
  | 'email_not_verified'
  | 'wrong_caller'
  | 'certs_unavailable'
  | 'signature_removed'
  | 'admin_requires_oidc';

const FORBIDDEN = new Set<AuthRejection>(['email_not_verified', 'wrong_caller', 'admin_requires_oidc']);

export function rejectionStatus(reason: AuthRejection): 401 | 403 | 503 {
  if (reason === 'certs_unavailable') return 503;
  return FORBIDDEN.has(reason) ? 403 : 401;
}

// google-auth-library's messages quote the whole token, so only a fixed reason may reach a log.
const LIBRARY_MESSAGES: [RegExp, AuthRejection][] = [
  [/^Failed to retrieve verification certificates/, 'certs_unavailable'],
  [/^Wrong number of segments/, 'malformed_token'],
  [/^Can't parse token/, 'malformed_token'],
  [/^No (issue|expiration) time in token/, 'malformed_token'],
  [/^(iat|exp) field using invalid format/, 'malformed_token'],
  [/^No pem found for envelope/, 'unknown_key'],
  [/^Invalid token signature/, 'bad_signature'],
  [/^Expiration time too far in future/, 'lifetime_too_long'],
  [/^Token used too early/, 'not_yet_valid'],
  [/^Token used too late/, 'expired'],
  [/^Invalid issuer/, 'wrong_issuer'],
  [/^Wrong recipient/, 'wrong_audience'],
];

/** Maps what the verifier threw to a reason that is safe to log. */
export function classifyVerifyError(err: unknown): AuthRejection {
  const message = err instanceof Error ? err.message : '';
  for (const [pattern, reason] of LIBRARY_MESSAGES) if (pattern.test(message)) return reason;
  if ((err as { name?: string } | null)?.name === 'GaxiosError') return 'certs_unavailable';
  return 'invalid_token';
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// Google's ID tokens are around 1 kB; anything far bigger is not one.
const MAX_TOKEN_LENGTH = 8192;

/** Google signs ID tokens with RS256 only: `none` and every other algorithm stop here. */
function precheck(token: string): AuthRejection | null {
  if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return 'malformed_token';
  const header = jsonSegment(token, 0);
  if (!header) return 'malformed_token';
  return header.alg === 'RS256' ? null : 'unsupported_alg';
}

/** A JWT's `index`-th segment (0: the JOSE header, 1: the claims) as a JSON object; null when it is not one. */
function jsonSegment(token: string, index: number): Record<string, unknown> | null {
  const part = token.split('.')[index];
  if (part === undefined) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * What Cloud Run puts in place of a token's signature once its IAM invoker check has verified
 * the token, before the request reaches the container
 * (https://cloud.google.com/run/docs/troubleshooting#signature-removed). Cloud Scheduler and
 * Pub/Sub push send their tokens in `Authorization`, so behind that check a service never sees
 * a signature it could verify.
 */
export const SIGNATURE_REMOVED = 'SIGNATURE_REMOVED_BY_GOOGLE';

const SIGNATURE_REMOVED_HINT =
  'Cloud Run checked this token and removed its signature: set AUTH_TRUST_CLOUD_RUN_IAM=true on a service ' +
  'behind Cloud Run’s IAM invoker check';

/** A token's claims, read without checking its signature; null when they are not a JSON object. */
export function unverifiedClaims(token: string): Record<string, unknown> | null {
  return jsonSegment(token, 1);
}

/**
 * The checks google-auth-library makes of a verified token, but the signature: for a token whose
 * signature Cloud Run's IAM check removed once it had verified it. Issuer, audience, expiry and
 * issue time (each within the same clock skew), then what timingProblem adds.
 */
export function claimsProblem(
  claims: Record<string, unknown>,
  audience: readonly string[],
  nowSeconds: number,
): AuthRejection | null {
  const { iss, aud, iat, exp } = claims;
  if (typeof iat !== 'number' || typeof exp !== 'number') return 'malformed_token';
  if (typeof iss !== 'string' || !GOOGLE_ISSUERS.includes(iss)) return 'wrong_issuer';
  if (typeof aud !== 'string' || !audience.includes(aud)) return 'wrong_audience';
  if (nowSeconds > exp + CLOCK_SKEW_SECONDS) return 'expired';
  if (iat > nowSeconds + CLOCK_SKEW_SECONDS) return 'not_yet_valid';
  return timingProblem(claims, nowSeconds);
}

/** The clock skew allowed between Google and this instance, as google-auth-library allows it. */
const CLOCK_SKEW_SECONDS = 300;
/** The longest a token may be valid for, issue to expiry: Google's ID tokens live an hour. */
const MAX_TOKEN_LIFETIME_SECONDS = 86_400;

/**
 * What the library leaves unchecked of a verified token's times: its whole lifetime (it bounds
 * only how far ahead `exp` is), and `nbf`.
 */
export function timingProblem(
  payload: { iat?: unknown; exp?: unknown; nbf?: unknown },
  nowSeconds: number,
): AuthRejection | null {
  const { iat, exp, nbf } = payload;
  // google-auth-library takes numeric strings too; Google writes numbers.
  if ((iat !== undefined && typeof iat !== 'number') || (exp !== undefined && typeof exp !== 'number')) {
    return 'malformed_token';
  }
  if (typeof iat === 'number' && typeof exp === 'number' && exp - iat > MAX_TOKEN_LIFETIME_SECONDS) {
    return 'lifetime_too_long';
  }
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSeconds + CLOCK_SKEW_SECONDS)) return 'not_yet_valid';
  return null;
}

/**
 * The header holding the token to check. Behind Cloud Run's IAM check, a request that carries
 * `X-Serverless-Authorization` had that token checked, and its `Authorization` passed through
 * untouched: a token in it with its signature "removed" was written by the caller, so only the
 * checked header is read then.
 */
function authorizationHeader(req: Request, trustCloudRunIam: boolean): string | undefined | { repeated: string } {
  const pick = (name: string): string | undefined | { repeated: string } => {
    // Node keeps the first of a repeated Authorization and drops the rest: which one a proxy in
    // front checked is then a guess, so a request that sends either twice is refused.
    const sent = req.headersDistinct[name];
    if (sent !== undefined && sent.length > 1) return { repeated: name };
    return sent?.[0];
  };
  const serverless = trustCloudRunIam ? pick('x-serverless-authorization') : undefined;
  return serverless !== undefined ? serverless : pick('authorization');
}

function bearerToken(header: string | undefined | { repeated: string }): { token: string } | { reason: AuthRejection } {
  if (typeof header === 'object') return { reason: 'malformed_authorization' };
  if (header === undefined || header.trim() === '') return { reason: 'missing_token' };
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1] ? { token: match[1] } : { reason: 'malformed_authorization' };
}

export interface InvokerPolicy {
  /** Which caller the guard admits, for the logs: `tick`, `push`, `admin`. */
  role: string;
  verifier: TokenVerifier;
  audience: readonly string[];
  allowedEmails: readonly string[];
  /**
   * Admit a token whose signature Cloud Run's IAM invoker check removed, on its claims alone
   * (AUTH_TRUST_CLOUD_RUN_IAM). Refused otherwise, as `signature_removed`.
   */
  trustCloudRunIam?: boolean;
}

/** The verified caller's email, set by `requireInvoker` for the handlers after it. */
export function callerOf(res: Response): string | null {
  const caller = res.locals.caller;
  return typeof caller === 'string' ? caller : null;
}

function refuse(req: Request, res: Response, role: string, reason: AuthRejection, email?: string): void {
  const status = rejectionStatus(reason);
  // A refused caller is the caller's problem; certificates out of reach fail every request
  // until they are back, so that line is an error, for an alert on errors to see.
  const level = status === 503 ? 'error' : 'warn';
  req.log[level](
    {
      auth: { role, reason, status, ...(email ? { email } : {}) },
      ...(reason === 'signature_removed' ? { hint: SIGNATURE_REMOVED_HINT } : {}),
      path: routePath(req),
      method: req.method,
    },
    `request refused: ${reason}`,
  );
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
  // Which caller was refused stays in the log; that the service admits no one says itself.
  const error =
    reason === 'admin_requires_oidc'
      ? reason
      : status === 401
        ? 'unauthenticated'
        : status === 403
          ? 'forbidden'
          : reason;
  res.status(status).json({ error });
}

/**
 * Admits a request whose bearer token is a Google ID token for `audience`, with a verified
 * email among `allowedEmails`. Token problems answer 401, a wrong caller 403.
 */
export function requireInvoker(policy: InvokerPolicy): RequestHandler {
  const allowed = new Set(policy.allowedEmails.map((e) => e.toLowerCase()));
  return async (req, res, next) => {
    const bearer = bearerToken(authorizationHeader(req, policy.trustCloudRunIam === true));
    if ('reason' in bearer) return refuse(req, res, policy.role, bearer.reason);
    const early = precheck(bearer.token);
    if (early) return refuse(req, res, policy.role, early);
    let payload: TokenPayload;
    if (bearer.token.endsWith(`.${SIGNATURE_REMOVED}`)) {
      // Verified by Cloud Run in front of this service, which removed the signature.
      if (!policy.trustCloudRunIam) return refuse(req, res, policy.role, 'signature_removed');
      const claims = unverifiedClaims(bearer.token);
      if (!claims) return refuse(req, res, policy.role, 'malformed_token');
      const problem = claimsProblem(claims, policy.audience, Date.now() / 1000);
      if (problem) return refuse(req, res, policy.role, problem);
      payload = claims as unknown as TokenPayload;
    } else {
      try {
        payload = await policy.verifier.verify(bearer.token, policy.audience);
      } catch (err) {
        return refuse(req, res, policy.role, classifyVerifyError(err));
      }
    }
    const timing = timingProblem(payload, Date.now() / 1000);
    if (timing) return refuse(req, res, policy.role, timing);
    const email = typeof payload.email === 'string' ? payload.email.toLowerCase() : '';
    if (payload.email_verified !== true) return refuse(req, res, policy.role, 'email_not_verified', email);
    if (!allowed.has(email)) return refuse(req, res, policy.role, 'wrong_caller', email);
    res.locals.caller = email;
    next();
  };
}

/** Stands in for the admin guard when tokens are not checked: the admin API is never open. */
export function refuseAll(role: string): RequestHandler {
  return (req, res) => refuse(req, res, role, 'admin_requires_oidc');
}

export type AuthSettings =
  /** `adminOpen`: the admin API and status page open to any caller (ADMIN_OPEN_ON_LOOPBACK, loopback only). */
  | { mode: 'none'; adminOpen?: boolean }
  | { mode: 'oidc'; audience: string[]; invokerEmail: string; adminEmails: string[]; trustCloudRunIam: boolean };

/**
 * What one service needs from the auth configuration; a ConfigError naming every problem at
 * once: each missing variable, a refusal of AUTH_MODE=none on Cloud Run unless explicitly
 * allowed, and a switch set where it cannot hold.
 */
export function authSettingsFor(config: Config, service: ServiceName): AuthSettings {
  const { settings, problems } = checkAuth(config, service);
  if (!settings) throw ConfigError.of(problems);
  return settings;
}

/**
 * The auth settings of `service`, or null with every problem that keeps it from having them.
 * A variable in `refused` (by name) had a value that was refused, and stands at its default:
 * a rule that reads it is left out, its own problem having been said.
 */
function checkAuth(
  config: Config,
  service: ServiceName,
  refused: ReadonlySet<string> = new Set(),
): { settings: AuthSettings | null; problems: string[] } {
  const problems: string[] = [];
  const known = (...names: string[]) => names.every((n) => !refused.has(n));
  if (config.authTrustCloudRunIam && !config.cloudRunService) {
    problems.push(
      `${ENV.AUTH_TRUST_CLOUD_RUN_IAM}=true is refused off Cloud Run (${ENV.K_SERVICE} is not set): only Cloud ` +
        'Run’s IAM invoker check stands behind a token whose signature it removed, and without that check anyone ' +
        'could write such a token',
    );
  }
  // With AUTH_MODE refused, which variables the auth needs is not known: its problem says enough.
  if (!known(ENV.AUTH_MODE)) return { settings: null, problems };
  // The notifier serves no admin API: the setting is the dispatcher's alone.
  const adminOpen = config.adminOpenOnLoopback && service === 'dispatcher';
  if (config.authMode === 'none') {
    if (config.cloudRunService && !config.allowInsecureAuthOnCloudRun && known(ENV.ALLOW_INSECURE_AUTH_ON_CLOUD_RUN)) {
      problems.push(
        `${ENV.AUTH_MODE}=none is refused on Cloud Run (${ENV.K_SERVICE}=${config.cloudRunService}): ` +
          `it would let anyone who reaches the service call it; set ${ENV.AUTH_MODE}=oidc, ` +
          `or ${ENV.ALLOW_INSECURE_AUTH_ON_CLOUD_RUN}=true if you really mean it`,
      );
    }
    const openProblem = adminOpen && known(ENV.HOST) ? adminOpenProblem(config) : null;
    if (openProblem) problems.push(`${ENV.ADMIN_OPEN_ON_LOOPBACK}=true ${openProblem}`);
    if (problems.length > 0) return { settings: null, problems };
    return { settings: adminOpen ? { mode: 'none', adminOpen: true } : { mode: 'none' }, problems };
  }
  if (adminOpen) {
    problems.push(
      `${ENV.ADMIN_OPEN_ON_LOOPBACK}=true is for AUTH_MODE=none on this machine alone; with ${ENV.AUTH_MODE}=oidc the admin API takes ${ENV.ADMIN_EMAILS}`,
    );
  }
  const invokerVar = service === 'dispatcher' ? ENV.TICK_INVOKER_EMAIL : ENV.PUSH_INVOKER_EMAIL;
  const invokerEmail = service === 'dispatcher' ? config.tickInvokerEmail : config.pushInvokerEmail;
  if (config.authAudience.length === 0) problems.push(`${ENV.AUTH_AUDIENCE} is required when ${ENV.AUTH_MODE}=oidc`);
  if (!invokerEmail) problems.push(`${invokerVar} is required when ${ENV.AUTH_MODE}=oidc`);
  if (problems.length > 0 || !invokerEmail) return { settings: null, problems };
  return {
    settings: {
      mode: 'oidc',
      audience: config.authAudience,
      invokerEmail,
      adminEmails: config.adminEmails,
      trustCloudRunIam: config.authTrustCloudRunIam,
    },
    problems,
  };
}

/**
 * A service's configuration and auth settings from the environment, before anything listens;
 * a ConfigError naming every problem at once, of the variables and of how they go together.
 * The variables only the other service reads are left alone.
 */
export function loadServiceConfig(
  service: ServiceName,
  env: NodeJS.ProcessEnv = process.env,
): { config: Config; auth: AuthSettings } {
  const { config, problems, refused } = readConfig(env, service);
  const auth = checkAuth(config, service, refused);
  // A variable whose value was refused has said its problem; "is required" again would mislead.
  for (const problem of auth.problems) {
    if (![...refused].some((name) => problem.startsWith(`${name} `))) problems.push(problem);
  }
  if (problems.length > 0 || !auth.settings) throw ConfigError.of(problems);
  return { config, auth: auth.settings };
}

export interface ServiceGuards {
  /** Guards the service's own route (/tick, or /push and /dead-letter); absent when auth is off. */
  invoker?: RequestHandler;
  /** Guards the admin API and the status page; refuses everyone when auth is off. */
  admin: RequestHandler;
}

/**
 * Why ADMIN_OPEN_ON_LOOPBACK cannot be honoured here, or null: it opens the admin API and the
 * status page to whoever reaches the dispatcher, so the dispatcher must listen on a loopback
 * address alone (HOST), and never on Cloud Run.
 */
function adminOpenProblem(config: Config): string | null {
  if (config.cloudRunService) return `is refused on Cloud Run (${ENV.K_SERVICE}=${config.cloudRunService})`;
  if (!config.host || !LOOPBACK_HOSTS.has(config.host)) {
    return `needs ${ENV.HOST} to be a loopback address (127.0.0.1, ::1 or localhost), so that only this machine reaches the admin API; ${ENV.HOST} is ${config.host === undefined ? 'not set (every interface)' : JSON.stringify(config.host)}`;
  }
  return null;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** A Host header naming this machine, as a browser or curl writes it: a loopback name, and a port. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/** The host and port of an http origin (the default port left out), or null for any other. */
function originHost(origin: string): string | null {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' ? url.host : null;
  } catch {
    return null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Why a request to the admin API opened on loopback (ADMIN_OPEN_ON_LOOPBACK) is refused, or
 * null. Listening on loopback keeps other machines out, but not a page in this machine's
 * browser: one that rebinds its own host name to 127.0.0.1 sends its name as `Host`, and one
 * that posts a form or a `fetch` here sends `Origin` and `Sec-Fetch-Site` of another site.
 * Reads by a link followed from elsewhere stay allowed: the page that linked reads nothing back.
 */
export function crossSiteProblem(req: Pick<Request, 'method' | 'headers' | 'headersDistinct'>): string | null {
  // Node keeps the first of a repeated Host: which one a proxy read is a guess.
  if ((req.headersDistinct.host?.length ?? 0) > 1) {
    return 'the admin API opened on loopback answers no request that sends Host more than once';
  }
  const host = req.headers.host;
  if (host === undefined || !LOOPBACK_HOST.test(host)) {
    return `the admin API opened on loopback answers requests addressed to a loopback host (127.x.y.z, localhost or [::1], with or without a port) alone; Host is ${host === undefined ? 'missing' : quoted(host)}`;
  }
  if (SAFE_METHODS.has(req.method)) return null;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `the admin API opened on loopback takes no ${req.method} sent by another site's page (Sec-Fetch-Site: ${site})`;
  }
  // The page's own origin, this address and port: another loopback port is another site.
  const origin = req.headers.origin;
  if (origin !== undefined && originHost(origin) !== originHost(`http://${host}`)) {
    return `the admin API opened on loopback takes no ${req.method} sent by another site's page (Origin: ${quoted(origin)})`;
  }
  return null;
}

/** The admin guard of ADMIN_OPEN_ON_LOOPBACK: any caller on this machine, not another site's page. */
function openOnLoopback(): RequestHandler {
  return (req, res, next) => {
    const problem = crossSiteProblem(req);
    if (problem === null) return next();
    req.log.warn({ auth: { role: 'admin', reason: 'cross_site', status: 403 }, path: routePath(req) }, problem);
    res.status(403).json({ error: 'cross_site', message: problem });
  };
}

export function serviceGuards(settings: AuthSettings, role: string, verifier: () => TokenVerifier): ServiceGuards {
  if (settings.mode === 'none') {
    return { admin: settings.adminOpen ? openOnLoopback() : refuseAll('admin') };
  }
  const v = verifier();
  return {
    invoker: requireInvoker({
      role,
      verifier: v,
      audience: settings.audience,
      allowedEmails: [settings.invokerEmail],
      trustCloudRunIam: settings.trustCloudRunIam,
    }),
    admin: requireInvoker({
      role: 'admin',
      verifier: v,
      audience: settings.audience,
      allowedEmails: settings.adminEmails,
      trustCloudRunIam: settings.trustCloudRunIam,
    }),
  };
}

/** The start-up warning when tokens are not checked, loud enough to notice in a log. */
export const AUTH_OFF_WARNING =
  'WARNING: AUTH_MODE=none: requests are NOT authenticated; anyone who can reach this service can call it. ' +
  'For local runs on the emulators only.';
