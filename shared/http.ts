import express, {
  type ErrorRequestHandler,
  type Express,
  type NextFunction,
  type Request,
  type Response,
} from 'express';
import type { Logger } from './logger';
import { traceFields } from './logger';

declare module 'express-serve-static-core' {
  interface Request {
    log: Logger;
  }
}

/** The base every service app starts from: no x-powered-by, a per-request logger with the trace id. */
export function baseApp(log: Logger, projectId: string): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.use((req: Request, _res: Response, next: NextFunction) => {
    req.log = log.child(traceFields(req.header('x-cloud-trace-context'), projectId));
    next();
  });
  return app;
}

/** JSON bodies only, and small: a push envelope is well under this. */
export function jsonBody(limit = '256kb') {
  return express.json({ limit, type: ['application/json', 'application/*+json'] });
}

/** Answers errors without stack traces; body-parser's own errors keep their 4xx status. */
export function errorHandler(): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
    const type = typeof err?.type === 'string' ? err.type : 'internal_error';
    req.log?.warn({ status, type, path: req.path }, `request failed: ${err?.message ?? 'unknown error'}`);
    if (!res.headersSent) res.status(status).json({ error: type });
  };
}

/** Runs `check` with a deadline, for readiness probes that must not hang. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export type ReadinessCheck = () => Promise<void>;

/** `/healthz` says the process serves; `/readyz` says its dependencies answer. */
export function healthRoutes(app: Express, checks: Record<string, ReadinessCheck>, isDraining: () => boolean): void {
  app.get('/healthz', (_req, res) => {
    res.status(isDraining() ? 503 : 200).json({ ok: !isDraining() });
  });
  app.get('/readyz', async (req, res) => {
    const results: Record<string, string> = {};
    let ok = !isDraining();
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000, name);
          results[name] = 'ok';
        } catch (err) {
          ok = false;
          results[name] = (err as Error).message;
        }
      }),
    );
    if (!ok) req.log.warn({ checks: results }, 'not ready');
    res.status(ok ? 200 : 503).json({ ok, checks: results, draining: isDraining() });
  });
}
