import { dirname, join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { abandonedAtTerminate, createFirestore, FIRESTORE_TRACING_ENV } from './firestore';

/** Which of its two tracers the client chose when it was made (it keeps no public flag). */
function tracer(db: Firestore): string {
  return (db as unknown as { _traceUtil: object })._traceUtil.constructor.name;
}

describe('createFirestore', () => {
  const before = process.env[FIRESTORE_TRACING_ENV];
  afterEach(() => {
    if (before === undefined) delete process.env[FIRESTORE_TRACING_ENV];
    else process.env[FIRESTORE_TRACING_ENV] = before;
  });

  it("turns the client's spans off when FIRESTORE_ENABLE_TRACING is not set", async () => {
    delete process.env[FIRESTORE_TRACING_ENV];
    const db = createFirestore('demo-tracing');
    expect(tracer(db)).toBe('DisabledTraceUtil');
    expect(process.env[FIRESTORE_TRACING_ENV]).toBe('off');
    await db.terminate();
  });

  it.each(['on', ' ON ', 'true'])('leaves them on where FIRESTORE_ENABLE_TRACING=%j', async (value) => {
    process.env[FIRESTORE_TRACING_ENV] = value;
    const db = createFirestore('demo-tracing');
    expect(tracer(db)).toBe('EnabledTraceUtil');
    await db.terminate();
  });

  it.each(['', 'off', '0', '1', 'yes', 'disabled'])(
    'turns them off for any other value, %j included (the client would trace on a value it does not know)',
    async (value) => {
      process.env[FIRESTORE_TRACING_ENV] = value;
      const db = createFirestore('demo-tracing');
      expect(tracer(db)).toBe('DisabledTraceUtil');
      await db.terminate();
    },
  );
});

describe('abandonedAtTerminate (a call ended by the client closing, not a failure of the caller)', () => {
  it('knows the Firestore client’s own error for it, and nothing else', () => {
    // The client's message, from its pool: should the client change it, this fails first.
    const pool = join(dirname(require.resolve('@google-cloud/firestore')), 'pool.js');
    const { CLIENT_TERMINATED_ERROR_MSG } = require(pool) as {
      CLIENT_TERMINATED_ERROR_MSG: string;
    };
    expect(abandonedAtTerminate(new Error(CLIENT_TERMINATED_ERROR_MSG))).toBe(true);
    expect(abandonedAtTerminate(new Error('14 UNAVAILABLE: No connection established'))).toBe(false);
    expect(abandonedAtTerminate('The client has already been terminated')).toBe(false);
  });
});
