import { spawn } from 'node:child_process';
import { PubSub } from '@google-cloud/pubsub';
import { freePort, waitForPort } from '../dev/emulators';
import { containerCommand, ROOT } from '../dev/processes';
import { uniqueProjectId } from '../dev/stack';
import { TOPOLOGY } from '../shared/topology';
import { emulatorServiceEnv } from './helpers';

describe("the containers' entry commands, run the way the images run them", () => {
  const projectId = uniqueProjectId('containers');

  beforeAll(async () => {
    // The dispatcher's readiness needs its topic, with a subscription to read it.
    const pubsub = new PubSub({ projectId });
    const [topic] = await pubsub.createTopic(TOPOLOGY.dispatchTopic);
    await topic.createSubscription(`${TOPOLOGY.dispatchTopic}-read`);
    await pubsub.close();
  });

  test.each(['dispatcher', 'notifier'] as const)(
    '%s: production mode serves /healthz and /readyz, refuses an unauthenticated call, and exits on SIGTERM',
    async (service) => {
      const [command, ...args] = containerCommand(service);
      expect(command).toBe('node');
      expect(args.at(-1)).toBe(`dist/${service}/index.js`);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const child = spawn(process.execPath, args, {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: emulatorServiceEnv(projectId, {
          NODE_ENV: 'production',
          PORT: String(port),
          // Verification on, as on Cloud Run.
          AUTH_AUDIENCE: url,
          TICK_INVOKER_EMAIL: 'scheduler@p.iam.gserviceaccount.com',
          PUSH_INVOKER_EMAIL: 'push@p.iam.gserviceaccount.com',
          SLACK_BOT_TOKEN: 'xoxb-container-test',
        }),
      });
      let output = '';
      child.stdout?.on('data', (d) => {
        output += String(d);
      });
      child.stderr?.on('data', (d) => {
        output += String(d);
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        await waitForPort('127.0.0.1', port, 30_000, child);
        // By both names: Cloud Run's front end may keep the ones ending in z for itself.
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        expect((await fetch(`${url}/health`)).status).toBe(200);
        // Ready once its first Firestore and Pub/Sub calls answer within the probe's 2 s: on a
        // loaded machine a cold channel's first call may not, and the probe is asked again, as
        // Cloud Run's startup probe asks until it passes (bounded here at 20 s).
        let ready = 0;
        for (const until = Date.now() + 20_000; ready !== 200 && Date.now() < until; ) {
          ready = (await fetch(`${url}/readyz`)).status;
          if (ready !== 200) await new Promise((r) => setTimeout(r, 250));
        }
        expect({ ready, output: ready === 200 ? '' : output }).toEqual({ ready: 200, output: '' });
        expect((await fetch(`${url}/ready`)).status).toBe(200);
        const path = service === 'dispatcher' ? TOPOLOGY.tickPath : TOPOLOGY.pushPath;
        const res = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        expect(res.status).toBe(401);
        // One JSON line per log entry, with a Cloud Logging severity.
        const first = JSON.parse(output.split('\n')[0] ?? '{}');
        expect(first).toMatchObject({ severity: 'INFO', service });
        const started = Date.now();
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(Date.now() - started).toBeLessThan(8000);
      } finally {
        child.kill('SIGKILL');
      }
    },
    60_000,
  );
});
