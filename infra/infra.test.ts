import * as fs from 'node:fs';
import * as path from 'node:path';
import * as gcp from '@pulumi/gcp';
import { specialSecretSig, specialSigKey } from '@pulumi/pulumi/runtime/rpc';
import { TICK_ANSWER_GRACE_MS } from '../dispatcher/app';
import { DEFAULT_CATCH_UP_WINDOW_SECONDS, ENV, loadConfig } from '../shared/config';
import { MemoryStore } from '../shared/memory-store';
import { compositeIndexes, INDEX_EXEMPTIONS, QUERIES, type QuerySpec, TTL_FIELDS } from '../shared/queries';
import { planOccurrence } from '../shared/schedule';
import { COLLECTIONS, TOPOLOGY } from '../shared/topology';
import { REQUIRED_APIS } from './apis';
import {
  CONFIG_KEYS,
  type ConfigContext,
  InfraConfigError,
  parseConfig,
  type RawConfig,
  SECRET_CONFIG_KEYS,
} from './config';
import { indexKey, uniqueIndexes } from './firestore';
import { emailMember } from './iam';
import { GCP_LIMITS } from './limits';
import { adminDeadlineSeconds, tickDeadlineSeconds } from './services';
import { longestTickGapSeconds, TICK_RETRY_BACKOFF_SECONDS, tickRetryCount, tickRetrySpanSeconds } from './tick';

// biome-ignore lint/suspicious/noExplicitAny: resource inputs reach the mocks as untyped JSON.
type Inputs = Record<string, any>;

interface Registered {
  type: string;
  name: string;
  inputs: Inputs;
  state: Inputs;
  /** What Pulumi creates before it, implicit and explicit (`dependsOn`), as `type::name`. */
  dependsOn: string[];
  /** The names it was known by before (`aliases`). */
  aliases: string[];
}

/** The `type::name` of a mock URN (`urn:pulumi:stack::project::parent$type::name`). */
function urnKey(urn: string): string {
  const parts = urn.split('::');
  return `${parts[2]?.split('$').pop()}::${parts[3]}`;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
  getAliasesList(): { getSpec(): { getName(): string } | undefined }[];
}

interface ProgramRun {
  resources: Registered[];
  outputs: Inputs;
}

const NS = 'slack-fanout';
const GCP_PROJECT = 'acme-fanout-test';
const PROJECT_NUMBER = '123456789012';
const REGION = 'europe-west1';
const FAKE_TOKEN = 'xoxb-FAKE-0000-never-in-plain-sight';
const IMAGES = {
  dispatcher: 'images.example/acme/slack-fanout/dispatcher:abc123',
  notifier: 'images.example/acme/slack-fanout/notifier:abc123',
};
const PUBSUB_AGENT = `serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com`;

const BASE_CONFIG: Record<string, string> = {
  'gcp:project': GCP_PROJECT,
  [`${NS}:region`]: REGION,
  [`${NS}:slackBotToken`]: FAKE_TOKEN,
  [`${NS}:notifierMaxInstances`]: '7',
  [`${NS}:notifierConcurrency`]: '40',
  [`${NS}:dispatcherMaxInstances`]: '3',
  [`${NS}:labels`]: JSON.stringify({ team: 'growth' }),
  [`${NS}:adminEmails`]: 'ops@acme.example,lead@acme.example',
};
const SECRET_KEYS = [`${NS}:slackBotToken`];

const FULL_CONFIG: Record<string, string> = {
  ...BASE_CONFIG,
  [`${NS}:dispatcherImage`]: IMAGES.dispatcher,
  [`${NS}:notifierImage`]: IMAGES.notifier,
};

/** What the provider would report back for the outputs the program reads. */
function mockState(type: string, name: string, inputs: Inputs): { id: string; state: Inputs } {
  const project = inputs.project ?? GCP_PROJECT;
  switch (type) {
    case 'gcp:pubsub/topic:Topic':
      return { id: `projects/${project}/topics/${inputs.name}`, state: inputs };
    case 'gcp:pubsub/subscription:Subscription':
      return { id: `projects/${project}/subscriptions/${inputs.name}`, state: inputs };
    case 'gcp:serviceaccount/account:Account': {
      const email = `${inputs.accountId}@${project}.iam.gserviceaccount.com`;
      return { id: email, state: { ...inputs, email, name: `projects/${project}/serviceAccounts/${email}` } };
    }
    case 'gcp:secretmanager/secret:Secret':
      return { id: `projects/${project}/secrets/${inputs.secretId}`, state: inputs };
    case 'gcp:secretmanager/secretVersion:SecretVersion':
      return { id: `${inputs.secret}/versions/1`, state: { ...inputs, version: '1' } };
    case 'gcp:cloudrunv2/service:Service':
      return { id: `projects/${project}/locations/${inputs.location}/services/${inputs.name}`, state: inputs };
    case 'gcp:artifactregistry/repository:Repository':
      return {
        id: inputs.repositoryId,
        state: { ...inputs, registryUri: `images.example/${project}/${inputs.repositoryId}` },
      };
    default:
      return { id: `${name}-id`, state: inputs };
  }
}

/** Runs the whole program against mocks, in a fresh module registry so that each run reads its own config. */
async function runProgram(config: Record<string, string>): Promise<ProgramRun> {
  const resources: Registered[] = [];
  const dependencies = new Map<string, string[]>();
  const aliases = new Map<string, string[]>();
  let outputs: Inputs = {};
  await jest.isolateModulesAsync(async () => {
    const pulumi = await import('@pulumi/pulumi');
    await pulumi.runtime.setMocks(
      {
        newResource(args) {
          const { id, state } = mockState(args.type, args.name, args.inputs);
          const key = `${args.type}::${args.name}`;
          const dependsOn = dependencies.get(key) ?? [];
          resources.push({
            type: args.type,
            name: args.name,
            inputs: args.inputs,
            state,
            dependsOn,
            aliases: aliases.get(key) ?? [],
          });
          return { id, state };
        },
        call(args) {
          if (args.token === 'gcp:organizations/getProject:getProject') {
            return { projectId: args.inputs.projectId, number: PROJECT_NUMBER, name: args.inputs.projectId };
          }
          throw new Error(`unexpected call ${args.token}`);
        },
      },
      NS,
      'test',
      false,
    );
    // The mocks do not pass a resource's dependencies on: read them from the request.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(req: RegisterRequest, callback: unknown): unknown;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
      const key = `${req.getType()}::${req.getName()}`;
      dependencies.set(key, req.getDependenciesList().map(urnKey));
      aliases.set(
        key,
        req.getAliasesList().flatMap((a) => a.getSpec()?.getName() ?? []),
      );
      return register(req, callback);
    };
    pulumi.runtime.setAllConfig(config, SECRET_KEYS);
    const program: Inputs = await import('./index');
    for (const [key, value] of Object.entries(program)) {
      if (key === 'default' || key === '__esModule') continue;
      outputs[key] = await new Promise((resolve) => pulumi.output(value).apply(resolve));
    }
    outputs = { ...outputs };
    // Some registrations wait on outputs no stack output depends on.
    let seen = -1;
    while (seen !== resources.length) {
      seen = resources.length;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  return { resources: resources.filter((r) => !r.type.startsWith('pulumi:providers:')), outputs };
}

const ofType = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type);
const one = (run: ProgramRun, type: string, match: (r: Registered) => boolean): Registered => {
  const found = ofType(run, type).filter(match);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0] as Registered;
};
const envOf = (r: Registered): Inputs[] => r.inputs.template.containers.flatMap((c: Inputs) => c.envs ?? []);
/** A Cloud Run service's environment variable of that name. */
const env = (r: Registered, name: string) => envOf(r).find((e) => e.name === name);
const accountEmail = (name: string) => `slack-fanout-${name}@${GCP_PROJECT}.iam.gserviceaccount.com`;
const saMember = (name: string) => `serviceAccount:${accountEmail(name)}`;

/** Whether the provider's resource class takes a `labels` input: read from the class itself, not a list. */
function acceptsLabels(type: string): boolean {
  const [, modulePath = '', className = ''] = type.split(':');
  const moduleName = modulePath.split('/')[0] ?? '';
  const cls = (gcp as unknown as Record<string, Record<string, unknown>>)[moduleName]?.[className];
  if (typeof cls !== 'function') throw new Error(`no provider class for ${type}`);
  return /resourceInputs\["labels"\]\s*=\s*args/.test(cls.toString());
}

const inRange = (value: number, [min, max]: readonly [number, number]) => {
  expect(value).toBeGreaterThanOrEqual(min);
  expect(value).toBeLessThanOrEqual(max);
};
/** Seconds of a Google duration string, `300s`. */
const secondsOf = (duration: unknown): number => {
  expect(duration).toMatch(/^\d+s$/);
  return Number.parseInt(String(duration), 10);
};
/** MiB of a Kubernetes-style memory size, `512Mi` or `1Gi`. */
const mebibytes = (size: string): number => {
  const m = /^(\d+)(Mi|Gi)$/.exec(size);
  if (!m) throw new Error(`not a memory size in Mi or Gi: ${size}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
};

jest.setTimeout(120_000);

describe('the full stack', () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(FULL_CONFIG);
  });

  const services = () => ofType(run, 'gcp:cloudrunv2/service:Service');
  const service = (name: string) => one(run, 'gcp:cloudrunv2/service:Service', (r) => r.inputs.name === name);

  it('enables every API the stack uses', () => {
    const enabled = ofType(run, 'gcp:projects/service:Service').map((r) => r.inputs.service);
    expect(enabled.sort()).toEqual(REQUIRED_APIS.map((a) => `${a}.googleapis.com`).sort());
    for (const api of ofType(run, 'gcp:projects/service:Service')) expect(api.inputs.disableOnDestroy).toBe(false);
  });

  it('exports the service URLs, topic names and scheduler job name', () => {
    expect(run.outputs.dispatcherUrl).toBe(`https://slack-fanout-dispatcher-${PROJECT_NUMBER}.${REGION}.run.app`);
    expect(run.outputs.notifierUrl).toBe(`https://slack-fanout-notifier-${PROJECT_NUMBER}.${REGION}.run.app`);
    expect(run.outputs.dispatchTopicName).toBe(TOPOLOGY.dispatchTopic);
    expect(run.outputs.deadLetterTopicName).toBe(TOPOLOGY.deadLetterTopic);
    expect(run.outputs.dispatchSubscriptionName).toBe(TOPOLOGY.dispatchSubscription);
    expect(run.outputs.deadLetterSubscriptionName).toBe(TOPOLOGY.deadLetterSubscription);
    expect(run.outputs.schedulerJobName).toBe(one(run, 'gcp:cloudscheduler/job:Job', () => true).inputs.name);
    expect(run.outputs.imageRepository).toEqual(expect.any(String));
  });

  it('names an admin by the IAM member kind of their email', () => {
    expect(emailMember('ops@my-project.iam.gserviceaccount.com')).toBe(
      'serviceAccount:ops@my-project.iam.gserviceaccount.com',
    );
    expect(emailMember('lead@acme.example')).toBe('user:lead@acme.example');
  });

  it('bills CPU only while a request is served (cpuIdle), as the cost model assumes', () => {
    for (const s of services()) {
      const resources = (s.inputs.template.containers as { resources: Record<string, unknown> }[])[0]?.resources;
      expect(resources?.cpuIdle).toBe(true);
    }
  });

  it('grants run.invoker to no public member', () => {
    const publicMembers = ['allUsers', 'allAuthenticatedUsers'];
    for (const r of run.resources) {
      const members: unknown[] = [r.inputs.member, ...(r.inputs.members ?? [])];
      for (const m of members) expect(publicMembers).not.toContain(m);
    }
  });

  it('lets exactly the scheduler account and the admins invoke the dispatcher and the push account invoke the notifier', () => {
    const invokers = run.resources
      .filter((r) => r.inputs.role === 'roles/run.invoker')
      .map((r) => ({ type: r.type, service: r.inputs.name, member: r.inputs.member }));
    expect(invokers).toHaveLength(4);
    expect(invokers).toEqual(
      expect.arrayContaining([
        {
          type: 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
          service: 'slack-fanout-dispatcher',
          member: 'user:ops@acme.example',
        },
        {
          type: 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
          service: 'slack-fanout-dispatcher',
          member: 'user:lead@acme.example',
        },
        {
          type: 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
          service: 'slack-fanout-dispatcher',
          member: saMember('scheduler'),
        },
        {
          type: 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
          service: 'slack-fanout-notifier',
          member: saMember('push'),
        },
      ]),
    );
    for (const s of services()) expect(s.inputs.invokerIamDisabled).not.toBe(true);
  });

  it('gives each runtime account only the roles it needs, each on its own target', () => {
    const grants = (member: string) =>
      run.resources
        .filter((r) => r.inputs.member === member)
        .map(
          (r) =>
            `${r.inputs.role} on ${r.inputs.topic ?? r.inputs.subscription ?? r.inputs.secretId ?? r.inputs.name ?? r.inputs.serviceAccountId ?? `project ${r.inputs.project}`}`,
        )
        .sort();
    const secret = one(run, 'gcp:secretmanager/secret:Secret', () => true);
    expect(grants(saMember('dispatcher'))).toEqual(
      [
        `roles/datastore.user on project ${GCP_PROJECT}`,
        `roles/pubsub.publisher on ${TOPOLOGY.dispatchTopic}`,
        `roles/pubsub.viewer on ${TOPOLOGY.dispatchTopic}`,
      ].sort(),
    );
    expect(grants(saMember('notifier'))).toEqual(
      [
        `roles/datastore.user on project ${GCP_PROJECT}`,
        `roles/secretmanager.secretAccessor on projects/${GCP_PROJECT}/secrets/${secret.inputs.secretId}`,
      ].sort(),
    );
    expect(grants(saMember('scheduler'))).toEqual(['roles/run.invoker on slack-fanout-dispatcher']);
    expect(grants(saMember('push'))).toEqual(['roles/run.invoker on slack-fanout-notifier']);
  });

  it('lets the Pub/Sub service agent sign push tokens, dead-letter, and ack the source subscription', () => {
    one(run, 'gcp:projects/serviceIdentity:ServiceIdentity', (r) => r.inputs.service === 'pubsub.googleapis.com');
    const agentGrants = run.resources.filter((r) => r.inputs.member === PUBSUB_AGENT);
    expect(agentGrants.map((r) => r.inputs.role).sort()).toEqual(
      ['roles/iam.serviceAccountTokenCreator', 'roles/pubsub.publisher', 'roles/pubsub.subscriber'].sort(),
    );
    one(
      run,
      'gcp:pubsub/topicIAMMember:TopicIAMMember',
      (r) =>
        r.inputs.member === PUBSUB_AGENT &&
        r.inputs.role === 'roles/pubsub.publisher' &&
        r.inputs.topic === TOPOLOGY.deadLetterTopic,
    );
    one(
      run,
      'gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember',
      (r) =>
        r.inputs.member === PUBSUB_AGENT &&
        r.inputs.role === 'roles/pubsub.subscriber' &&
        r.inputs.subscription === TOPOLOGY.dispatchSubscription,
    );
    one(
      run,
      'gcp:serviceaccount/iAMMember:IAMMember',
      (r) =>
        r.inputs.member === PUBSUB_AGENT &&
        r.inputs.role === 'roles/iam.serviceAccountTokenCreator' &&
        r.inputs.serviceAccountId === `projects/${GCP_PROJECT}/serviceAccounts/${accountEmail('push')}`,
    );
  });

  it('pushes the dispatch subscription to the notifier with OIDC, the topology retry policy and dead-lettering', () => {
    const sub = one(
      run,
      'gcp:pubsub/subscription:Subscription',
      (r) => r.inputs.name === TOPOLOGY.dispatchSubscription,
    );
    const dlq = one(run, 'gcp:pubsub/topic:Topic', (r) => r.inputs.name === TOPOLOGY.deadLetterTopic);
    const dispatch = one(run, 'gcp:pubsub/topic:Topic', (r) => r.inputs.name === TOPOLOGY.dispatchTopic);
    expect(sub.inputs.topic).toBe(`projects/${GCP_PROJECT}/topics/${dispatch.inputs.name}`);
    expect(sub.inputs.pushConfig.pushEndpoint).toBe(`${run.outputs.notifierUrl}${TOPOLOGY.pushPath}`);
    expect(sub.inputs.pushConfig.oidcToken).toEqual({
      serviceAccountEmail: accountEmail('push'),
      audience: run.outputs.notifierUrl,
    });
    expect(sub.inputs.ackDeadlineSeconds).toBe(TOPOLOGY.ackDeadlineSeconds);
    expect(sub.inputs.retryPolicy).toEqual({
      minimumBackoff: `${TOPOLOGY.retryPolicy.minimumBackoffSeconds}s`,
      maximumBackoff: `${TOPOLOGY.retryPolicy.maximumBackoffSeconds}s`,
    });
    expect(sub.inputs.deadLetterPolicy.maxDeliveryAttempts).toBe(TOPOLOGY.maxDeliveryAttempts);
    expect(sub.inputs.deadLetterPolicy.deadLetterTopic).toBe(`projects/${GCP_PROJECT}/topics/${dlq.inputs.name}`);
    expect(sub.inputs.messageRetentionDuration).toBe(`${TOPOLOGY.messageRetentionSeconds}s`);
    expect(sub.inputs.expirationPolicy).toEqual({ ttl: '' });
  });

  it('pushes the dead-letter subscription to the notifier dead-letter route with OIDC', () => {
    const sub = one(
      run,
      'gcp:pubsub/subscription:Subscription',
      (r) => r.inputs.name === TOPOLOGY.deadLetterSubscription,
    );
    expect(sub.inputs.topic).toBe(`projects/${GCP_PROJECT}/topics/${TOPOLOGY.deadLetterTopic}`);
    expect(sub.inputs.pushConfig.pushEndpoint).toBe(`${run.outputs.notifierUrl}${TOPOLOGY.deadLetterPath}`);
    expect(sub.inputs.pushConfig.oidcToken).toEqual({
      serviceAccountEmail: accountEmail('push'),
      audience: run.outputs.notifierUrl,
    });
    expect(sub.inputs.deadLetterPolicy).toBeUndefined();
    expect(ofType(run, 'gcp:pubsub/subscription:Subscription')).toHaveLength(2);
  });

  it('gives the dead-letter subscription the dispatch subscription’s deadline, backoff, retention and no expiry', () => {
    const subscription = (name: string) =>
      one(run, 'gcp:pubsub/subscription:Subscription', (r) => r.inputs.name === name).inputs;
    const dispatch = subscription(TOPOLOGY.dispatchSubscription);
    const deadLetter = subscription(TOPOLOGY.deadLetterSubscription);
    for (const field of [
      'ackDeadlineSeconds',
      'retryPolicy',
      'messageRetentionDuration',
      'expirationPolicy',
      'labels',
    ]) {
      expect({ field, value: deadLetter[field] }).toEqual({ field, value: dispatch[field] });
      expect(deadLetter[field]).toBeDefined();
    }
  });

  it('keeps every Pub/Sub setting within what Pub/Sub accepts', () => {
    const limits = GCP_LIMITS.pubsub;
    const subscriptions = ofType(run, 'gcp:pubsub/subscription:Subscription');
    expect(subscriptions).toHaveLength(2);
    for (const { inputs } of subscriptions) {
      inRange(inputs.ackDeadlineSeconds, limits.ackDeadlineSeconds);
      const minimum = secondsOf(inputs.retryPolicy.minimumBackoff);
      const maximum = secondsOf(inputs.retryPolicy.maximumBackoff);
      inRange(minimum, limits.backoffSeconds);
      inRange(maximum, limits.backoffSeconds);
      expect(minimum).toBeLessThanOrEqual(maximum);
      inRange(secondsOf(inputs.messageRetentionDuration), limits.messageRetentionSeconds);
      if (inputs.deadLetterPolicy !== undefined) {
        inRange(inputs.deadLetterPolicy.maxDeliveryAttempts, limits.maxDeliveryAttempts);
      }
    }
  });

  it('keeps the tick job within what Cloud Scheduler accepts, and its retry within the catch-up window', () => {
    const job = one(run, 'gcp:cloudscheduler/job:Job', () => true);
    const deadline = secondsOf(job.inputs.attemptDeadline);
    inRange(deadline, GCP_LIMITS.scheduler.attemptDeadlineSeconds);
    const { retryCount, minBackoffDuration, maxBackoffDuration } = job.inputs.retryConfig;
    inRange(retryCount, GCP_LIMITS.scheduler.retryCount);
    expect(secondsOf(minBackoffDuration)).toBe(TICK_RETRY_BACKOFF_SECONDS);
    expect(secondsOf(maxBackoffDuration)).toBe(TICK_RETRY_BACKOFF_SECONDS);
    // The dispatcher keeps the default window, which the retry is sized for.
    expect(env(service('slack-fanout-dispatcher'), ENV.CATCHUP_WINDOW_SECONDS)).toBeUndefined();
    expect(tickRetrySpanSeconds(deadline, retryCount)).toBeLessThanOrEqual(DEFAULT_CATCH_UP_WINDOW_SECONDS);
  });

  it('sizes each service within what Cloud Run accepts, with memory beyond its image’s heap cap', () => {
    for (const name of ['dispatcher', 'notifier'] as const) {
      const { template } = service(`slack-fanout-${name}`).inputs;
      inRange(secondsOf(template.timeout), GCP_LIMITS.run.requestTimeoutSeconds);
      inRange(template.maxInstanceRequestConcurrency, [1, GCP_LIMITS.run.concurrency]);
      inRange(template.scaling.maxInstanceCount, [1, GCP_LIMITS.run.maxInstances]);
      expect(template.scaling.minInstanceCount).toBe(0);
      const { limits } = template.containers[0].resources;
      expect(limits.cpu).toBe('1');
      const memory = mebibytes(limits.memory);
      inRange(memory, GCP_LIMITS.run.memoryMiBPerCpu);
      const dockerfile = fs.readFileSync(path.join(__dirname, '..', name, 'Dockerfile'), 'utf8');
      const heap = Number(/--max-old-space-size=(\d+)/.exec(dockerfile)?.[1]);
      expect(heap).toBeGreaterThan(0);
      // The cap bounds V8's old space alone: new space, code and native buffers (gRPC, sockets) come on top.
      expect({ name, memory, heap, twiceTheHeap: memory >= 2 * heap }).toEqual({
        name,
        memory,
        heap,
        twiceTheHeap: true,
      });
    }
  });

  it('creates each part after what it needs: the services after their grants and indexes, each caller after its invoker grant', () => {
    const key = (r: Registered) => `${r.type}::${r.name}`;
    const dependsOn = (r: Registered) => ({ resource: key(r), dependsOn: r.dependsOn });
    const needs = (r: Registered, needed: Registered[]) => {
      expect(needed.length).toBeGreaterThan(0);
      expect(dependsOn(r)).toEqual({ resource: key(r), dependsOn: expect.arrayContaining(needed.map(key)) });
    };
    const dispatcher = service('slack-fanout-dispatcher');
    const notifier = service('slack-fanout-notifier');
    const grantsTo = (...members: string[]) =>
      run.resources.filter((r) => members.includes(r.inputs.member) && r.inputs.role !== 'roles/run.invoker');
    const invoker = (svc: Registered, member: string) =>
      one(
        run,
        'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
        (r) => r.inputs.name === svc.inputs.name && r.inputs.member === member,
      );
    const state = [
      one(run, 'gcp:firestore/database:Database', () => true),
      ...ofType(run, 'gcp:firestore/index:Index'),
      // The dispatch index's exemptions: a large bucket cannot be written without them.
      ...ofType(run, 'gcp:firestore/field:Field').filter((r) => r.inputs.collection === 'members'),
      ...grantsTo(saMember('dispatcher'), saMember('notifier')),
    ];
    needs(dispatcher, state);
    needs(notifier, state);
    const subscriptions = ofType(run, 'gcp:pubsub/subscription:Subscription');
    for (const sub of subscriptions) {
      needs(sub, [notifier, invoker(notifier, saMember('push'))]);
    }
    // A tick before the subscriptions would publish to no one, and move its schedules on.
    needs(
      one(run, 'gcp:cloudscheduler/job:Job', () => true),
      [
        dispatcher,
        invoker(dispatcher, saMember('scheduler')),
        ...subscriptions,
        one(run, 'gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember', (r) => r.inputs.member === PUBSUB_AGENT),
      ],
    );
    expect(subscriptions).toHaveLength(2);
  });

  it("names each admin's invoker grant by its email, known before by its place in the list", () => {
    const admins = ofType(run, 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember').filter((r) =>
      r.inputs.member.startsWith('user:'),
    );
    expect(admins.map((r) => ({ name: r.name, member: r.inputs.member, aliases: r.aliases }))).toEqual([
      {
        name: 'admin-invokes-dispatcher-ops@acme.example',
        member: 'user:ops@acme.example',
        aliases: ['admin-1-invokes-dispatcher'],
      },
      {
        name: 'admin-invokes-dispatcher-lead@acme.example',
        member: 'user:lead@acme.example',
        aliases: ['admin-2-invokes-dispatcher'],
      },
    ]);
  });

  it('exempts the dispatch index map from single-field indexing', () => {
    const fields = ofType(run, 'gcp:firestore/field:Field');
    expect(fields).toHaveLength(INDEX_EXEMPTIONS.length + TTL_FIELDS.length);
    for (const e of INDEX_EXEMPTIONS) {
      const field = fields.find((r) => r.inputs.collection === e.collectionGroup && r.inputs.field === e.field);
      expect(field?.inputs).toMatchObject({ database: '(default)', indexConfig: {} });
      expect(field?.inputs.indexConfig?.indexes ?? []).toHaveLength(0);
    }
  });

  it('exempts no field a query reads, and every time the delivery ledger writes', async () => {
    const read = Object.values(QUERIES as Record<string, QuerySpec>).flatMap((q) =>
      q.fields.map((f) => `${q.collection}.${f.fieldPath}`),
    );
    const exempt = INDEX_EXEMPTIONS.map((e) => `${e.collectionGroup}.${e.field}`);
    expect(read.filter((f) => exempt.includes(f))).toEqual([]);
    // The ledger's records as its writes leave them (the in-memory store writes the fields
    // Firestore's does): one sent, one failed after its claim, one dead-lettered.
    const store = new MemoryStore();
    const at = new Date('2026-12-06T20:00:00Z');
    const claim = (notificationId: string) =>
      store.claim({
        deliveryId: `${notificationId}:${at.toISOString()}`,
        notificationId,
        occurrence: at.toISOString(),
        runId: 'r1',
        owner: 'notifier-1',
        ttlMs: 60_000,
        now: at,
        publishedAt: at,
        target: { channelId: 'C1', teamId: null, accountId: 'a1' },
      });
    await claim('n1');
    await store.markSent(`n1:${at.toISOString()}`, {
      slackTs: '1733515200.000100',
      channelId: 'C1',
      accountId: 'a1',
      latencyMs: 5,
      now: at,
    });
    await claim('n2');
    await store.markDead(`n2:${at.toISOString()}`, {
      attempts: 10,
      notificationId: 'n2',
      occurrence: at.toISOString(),
      runId: 'r1',
      reason: 'max_delivery_attempts',
      now: at,
    });
    const records: Record<string, unknown>[] = [
      ...store.deliveryDocs.values(),
      // A redrive writes through Firestore alone (shared/redrive.ts), and a retry its lastError.
      { lastRedriveAt: at, deadBeforeRedriveAt: at, failedBeforeRedriveAt: at, lastError: { at } },
    ];
    // Each time, or a value that only grows (Slack's ts), but the TTL field, whose own policy
    // turns its indexes off.
    const times = new Set(
      records.flatMap((record) =>
        Object.entries(record)
          .filter(
            ([k, v]) =>
              k !== 'expireAt' &&
              (v instanceof Date ||
                (typeof v === 'string' && /^(\d{4}-\d\d-\d\dT|\d{10}\.\d{6}$)/.test(v)) ||
                (typeof v === 'object' && v !== null && !Array.isArray(v) && 'at' in v)),
          )
          .map(([k]) => `${COLLECTIONS.deliveries}.${k}`),
      ),
    );
    expect(times.size).toBeGreaterThanOrEqual(10);
    expect([...times].filter((f) => !exempt.includes(f))).toEqual([]);
  });

  it('lets Firestore delete deliveries and runs past their retention (a TTL policy on expireAt)', () => {
    const fields = ofType(run, 'gcp:firestore/field:Field').filter((r) => r.inputs.ttlConfig !== undefined);
    expect(fields.map((r) => `${r.inputs.collection}.${r.inputs.field}`).sort()).toEqual([
      'deliveries.expireAt',
      'runs.expireAt',
    ]);
    for (const f of fields) expect(f.inputs).toMatchObject({ database: '(default)', ttlConfig: {}, indexConfig: {} });
  });

  it('declares one Firestore index per composite index the queries need, with the same fields', () => {
    const indexes = ofType(run, 'gcp:firestore/index:Index');
    const expected = uniqueIndexes(compositeIndexes());
    expect(expected.length).toBeGreaterThan(0);
    expect(indexes).toHaveLength(expected.length);
    const declared = indexes.map((r) => indexKey({ collection: r.inputs.collection, fields: r.inputs.fields }));
    expect(new Set(declared).size).toBe(declared.length);
    expect(new Set(declared)).toEqual(new Set(compositeIndexes().map(indexKey)));
    for (const spec of compositeIndexes()) {
      const index = indexes.find(
        (r) => indexKey({ collection: r.inputs.collection, fields: r.inputs.fields }) === indexKey(spec),
      );
      expect(index?.inputs).toMatchObject({
        collection: spec.collection,
        fields: spec.fields,
        database: '(default)',
        queryScope: 'COLLECTION',
      });
    }
    const db = one(run, 'gcp:firestore/database:Database', () => true);
    expect(db.inputs).toMatchObject({ name: '(default)', type: 'FIRESTORE_NATIVE', locationId: REGION });
  });

  it('calls the dispatcher tick route from Cloud Scheduler with OIDC, audience the dispatcher URL', () => {
    const job = one(run, 'gcp:cloudscheduler/job:Job', () => true);
    expect(job.inputs.httpTarget.uri).toBe(`${run.outputs.dispatcherUrl}${TOPOLOGY.tickPath}`);
    expect(job.inputs.httpTarget.httpMethod).toBe('POST');
    expect(job.inputs.httpTarget.oidcToken).toEqual({
      serviceAccountEmail: accountEmail('scheduler'),
      audience: run.outputs.dispatcherUrl,
    });
    expect(job.inputs.schedule).toBe('* * * * *');
    expect(job.inputs.timeZone).toBe('Etc/UTC');
    expect(job.inputs.region).toBe(REGION);
    expect(job.inputs.attemptDeadline).toMatch(/^\d+s$/);
    expect(job.inputs.retryConfig.retryCount).toBeGreaterThan(0);
  });

  it('configures the services: ingress, identity, timeout, scaling, image and caller checks', () => {
    const dispatcher = service('slack-fanout-dispatcher');
    const notifier = service('slack-fanout-notifier');
    // The topic is the dispatcher's alone: the notifier does not read it.
    expect(env(dispatcher, ENV.DISPATCH_TOPIC)?.value).toBe(TOPOLOGY.dispatchTopic);
    expect(env(notifier, ENV.DISPATCH_TOPIC)).toBeUndefined();
    for (const s of [dispatcher, notifier]) {
      expect(s.inputs.ingress).toBe('INGRESS_TRAFFIC_ALL');
      expect(s.inputs.location).toBe(REGION);
      expect(env(s, ENV.GOOGLE_CLOUD_PROJECT)?.value).toBe(GCP_PROJECT);
      expect(env(s, ENV.AUTH_MODE)?.value).toBe('oidc');
      // Tokens arrive with the signature Cloud Run's IAM check removed: trusted only behind it.
      expect(env(s, ENV.AUTH_TRUST_CLOUD_RUN_IAM)?.value).toBe('true');
      expect(s.inputs.invokerIamDisabled).toBe(false);
      expect(envOf(s).map((e) => e.name)).not.toContain(ENV.PORT);
      expect(envOf(s).map((e) => e.name)).not.toContain(ENV.ALLOW_INSECURE_AUTH_ON_CLOUD_RUN);
    }
    expect(dispatcher.inputs.template.serviceAccount).toBe(accountEmail('dispatcher'));
    expect(notifier.inputs.template.serviceAccount).toBe(accountEmail('notifier'));
    expect(dispatcher.inputs.template.containers[0].image).toBe(IMAGES.dispatcher);
    expect(notifier.inputs.template.containers[0].image).toBe(IMAGES.notifier);
    expect(notifier.inputs.template.timeout).toBe(`${TOPOLOGY.ackDeadlineSeconds}s`);
    expect(notifier.inputs.template.scaling.maxInstanceCount).toBe(7);
    expect(notifier.inputs.template.maxInstanceRequestConcurrency).toBe(40);
    expect(dispatcher.inputs.template.scaling.maxInstanceCount).toBe(3);
    const job = one(run, 'gcp:cloudscheduler/job:Job', () => true);
    expect(dispatcher.inputs.template.timeout).toBe(job.inputs.attemptDeadline);

    expect(env(dispatcher, ENV.AUTH_AUDIENCE)?.value).toBe(run.outputs.dispatcherUrl);
    expect(env(dispatcher, ENV.TICK_INVOKER_EMAIL)?.value).toBe(accountEmail('scheduler'));
    expect(env(dispatcher, ENV.ADMIN_EMAILS)?.value).toBe('ops@acme.example,lead@acme.example');
    // Under the default tick deadline (300 s), the admin API's own deadline is its default.
    expect(env(dispatcher, ENV.ADMIN_DEADLINE_SECONDS)?.value).toBe('240');
    expect(loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project' }, 'dispatcher').adminDeadlineSeconds).toBe(240);
    // A tick stops 15 s under Cloud Scheduler's attempt deadline, which is the dispatcher's default.
    expect(env(dispatcher, ENV.TICK_DEADLINE_SECONDS)?.value).toBe('285');
    expect(loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project' }, 'dispatcher').tickDeadlineSeconds).toBe(285);
    expect(env(notifier, ENV.AUTH_AUDIENCE)?.value).toBe(run.outputs.notifierUrl);
    expect(env(notifier, ENV.PUSH_INVOKER_EMAIL)?.value).toBe(accountEmail('push'));
    expect(env(dispatcher, ENV.SLACK_BOT_TOKEN)).toBeUndefined();
  });

  it('hands the Slack token to the notifier only as a Secret Manager reference', () => {
    const secret = one(run, 'gcp:secretmanager/secret:Secret', () => true);
    const version = one(run, 'gcp:secretmanager/secretVersion:SecretVersion', () => true);
    // The value reaches the provider still wrapped as a secret, so state and previews keep it encrypted.
    expect(version.inputs.secretData).toEqual({ [specialSigKey]: specialSecretSig, value: FAKE_TOKEN });
    // A rotated token's old version is disabled, not destroyed: a rollback can be undone.
    expect(version.inputs.deletionPolicy).toBe('DISABLE');
    const tokenEnv = env(service('slack-fanout-notifier'), ENV.SLACK_BOT_TOKEN);
    expect(tokenEnv?.value).toBeUndefined();
    expect(tokenEnv?.valueSource.secretKeyRef).toEqual({ secret: secret.inputs.secretId, version: '1' });

    for (const s of services()) {
      for (const e of envOf(s)) {
        expect(e.value === undefined || typeof e.value === 'string').toBe(true);
        expect(JSON.stringify(e)).not.toContain(FAKE_TOKEN);
      }
    }
    // Anywhere else in the graph, the token would be one `pulumi stack export` away from a log.
    const holders = run.resources.filter((r) => JSON.stringify(r.inputs).includes(FAKE_TOKEN));
    expect(holders.map((r) => r.type)).toEqual(['gcp:secretmanager/secretVersion:SecretVersion']);
  });

  it('labels every resource whose provider type takes labels', () => {
    const labelled = run.resources.filter((r) => acceptsLabels(r.type));
    // The detection itself must see the types known to take labels.
    expect(new Set(labelled.map((r) => r.type))).toEqual(
      new Set([
        'gcp:artifactregistry/repository:Repository',
        'gcp:secretmanager/secret:Secret',
        'gcp:pubsub/topic:Topic',
        'gcp:pubsub/subscription:Subscription',
        'gcp:cloudrunv2/service:Service',
      ]),
    );
    for (const r of labelled) {
      expect({ resource: r.name, labels: r.inputs.labels }).toEqual({
        resource: r.name,
        labels: { app: 'slack-fanout', stack: 'test', 'managed-by': 'pulumi', team: 'growth' },
      });
    }
    for (const s of services()) expect(s.inputs.template.labels).toEqual(s.inputs.labels);
  });
});

describe('the admins changed', () => {
  it("an admin removed leaves the others' grants as they were; one listed twice, in any case, is granted once", async () => {
    const run = await runProgram({
      ...FULL_CONFIG,
      [`${NS}:adminEmails`]: 'Lead@Acme.example,lead@acme.example,ops2@acme.example',
    });
    const admins = ofType(run, 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember').filter((r) =>
      r.inputs.member.startsWith('user:'),
    );
    expect(admins.map((r) => [r.name, r.inputs.member])).toEqual([
      // The same grant as when ops@ came first: not replaced, so its binding is never removed.
      ['admin-invokes-dispatcher-lead@acme.example', 'user:lead@acme.example'],
      ['admin-invokes-dispatcher-ops2@acme.example', 'user:ops2@acme.example'],
    ]);
  });
});

describe('the tick job’s retry', () => {
  it('is one retry while it ends within the catch-up window, none past it', () => {
    expect(tickRetryCount(300)).toBe(1);
    expect(tickRetrySpanSeconds(300, 1)).toBe(615);
    // 2 × 442 + 15 = 899 s; 2 × 443 + 15 = 901 s.
    expect(tickRetryCount(442)).toBe(1);
    expect(tickRetryCount(443)).toBe(0);
    expect(tickRetryCount(300, 600)).toBe(0);
    expect(tickRetrySpanSeconds(1800, 0)).toBe(1800);
  });

  it('is left out by a stack whose tick deadline leaves no room for it', async () => {
    const run = await runProgram({ ...FULL_CONFIG, [`${NS}:tickDeadlineSeconds`]: '1800' });
    const job = one(run, 'gcp:cloudscheduler/job:Job', () => true);
    expect(job.inputs.attemptDeadline).toBe('1800s');
    expect(job.inputs.retryConfig.retryCount).toBe(0);
  });
});

describe("the dispatcher's deadlines under a Scheduler attempt deadline of 60 s", () => {
  let dispatcher: Registered;
  beforeAll(async () => {
    const run = await runProgram({ ...FULL_CONFIG, [`${NS}:tickDeadlineSeconds`]: '60' });
    dispatcher = one(run, 'gcp:cloudrunv2/service:Service', (r) => r.inputs.name === 'slack-fanout-dispatcher');
  });

  it("the admin API's is 10 s short of a timeout under 250 s, so that a caller gets its 504 rather than Cloud Run's", () => {
    expect([15, 20, 100, 249, 250, 300, 1800].map(adminDeadlineSeconds)).toEqual([5, 10, 90, 239, 240, 240, 240]);
    expect(dispatcher.inputs.template.timeout).toBe('60s');
    const value = env(dispatcher, ENV.ADMIN_DEADLINE_SECONDS)?.value;
    expect(value).toBe('50');
    // The dispatcher takes what infra/ sets.
    expect(
      loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', ADMIN_DEADLINE_SECONDS: value }, 'dispatcher'),
    ).toMatchObject({
      adminDeadlineSeconds: 50,
    });
  });

  it("a tick's is 15 s short of it (at least 5 s), so that a tick stopped at it answers before Cloud Scheduler gives up", () => {
    expect([15, 20, 100, 300, 1800].map(tickDeadlineSeconds)).toEqual([5, 5, 85, 285, 1785]);
    for (const attempt of [15, 20, 100, 300, 1800]) {
      expect(tickDeadlineSeconds(attempt) + TICK_ANSWER_GRACE_MS / 1000).toBeLessThan(attempt);
    }
    const value = env(dispatcher, ENV.TICK_DEADLINE_SECONDS)?.value;
    expect(value).toBe('45');
    expect(
      loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', TICK_DEADLINE_SECONDS: value }, 'dispatcher'),
    ).toMatchObject({ tickDeadlineSeconds: 45 });
  });
});

describe('the stack before images exist', () => {
  let run: ProgramRun;
  let warnings: string[];
  beforeAll(async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      run = await runProgram(BASE_CONFIG);
      warnings = warn.mock.calls.map((args) => args.join(' '));
    } finally {
      warn.mockRestore();
    }
  });

  it('says why the services are missing', () => {
    expect(warnings.some((w) => w.includes('dispatcherImage') && w.includes('notifierImage'))).toBe(true);
  });

  it('creates the registry, state and messaging, and no service, subscription or schedule', () => {
    expect(ofType(run, 'gcp:artifactregistry/repository:Repository')).toHaveLength(1);
    expect(ofType(run, 'gcp:pubsub/topic:Topic')).toHaveLength(2);
    expect(ofType(run, 'gcp:firestore/index:Index')).toHaveLength(uniqueIndexes().length);
    expect(ofType(run, 'gcp:cloudrunv2/service:Service')).toHaveLength(0);
    expect(ofType(run, 'gcp:pubsub/subscription:Subscription')).toHaveLength(0);
    expect(ofType(run, 'gcp:cloudscheduler/job:Job')).toHaveLength(0);
    expect(run.outputs.imageRepository).toEqual(expect.any(String));
    expect(run.outputs.dispatcherUrl).toBeUndefined();
  });
});

describe('a stack without the Slack token', () => {
  it('fails naming the secret key', async () => {
    const config: Record<string, string> = { ...FULL_CONFIG };
    delete config[`${NS}:slackBotToken`];
    await expect(runProgram(config)).rejects.toThrow(/slackBotToken/);
  });

  it('fails on a token with a character beyond printable ASCII, naming it and its place, never the token', async () => {
    const token = 'xoxb-1234…';
    const failed = runProgram({ ...FULL_CONFIG, [`${NS}:slackBotToken`]: token });
    await expect(failed).rejects.toThrow(`${NS}:slackBotToken: holds U+2026 at character 10, which no Slack token has`);
    await expect(failed).rejects.not.toThrow(token);
  });

  it.each(['', '   '])('fails on a blank token (%j), naming the key, before any resource', async (token) => {
    await expect(runProgram({ ...FULL_CONFIG, [`${NS}:slackBotToken`]: token })).rejects.toThrow(
      `${NS}:slackBotToken: is blank: pulumi config set --secret slackBotToken`,
    );
  });

  it('names the missing token with every other problem at once', async () => {
    const config: Record<string, string> = { ...FULL_CONFIG, [`${NS}:notifierMaxInstances`]: '0' };
    delete config[`${NS}:slackBotToken`];
    const err = await runProgram(config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`${NS}:notifierMaxInstances: must be an integer from 1 to 1000`);
    expect((err as Error).message).toContain(`${NS}:slackBotToken: is required`);
  });

  it('names a key the program does not read, and the setting it was likely meant to be', async () => {
    const err = await runProgram({ ...FULL_CONFIG, [`${NS}:notifierMaxInstance`]: '5' }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(
      `${NS}:notifierMaxInstance: is not a setting of this program; did you mean ${NS}:notifierMaxInstances?`,
    );
  });
});

describe('parseConfig', () => {
  const ctx: ConfigContext = { namespace: NS, stack: 'dev', gcpProject: GCP_PROJECT };
  const valid: RawConfig = { region: REGION };
  const problemKeys = (raw: RawConfig, context: ConfigContext = ctx): string[] => {
    try {
      parseConfig(raw, context);
    } catch (err) {
      expect(err).toBeInstanceOf(InfraConfigError);
      return (err as InfraConfigError).problems.map((p) => p.key);
    }
    return [];
  };

  it('fills in the defaults', () => {
    const config = parseConfig(valid, ctx);
    expect(config.scheduler).toEqual({ cron: '* * * * *', timeZone: 'Etc/UTC', attemptDeadlineSeconds: 300 });
    expect(config.firestoreLocation).toBe(REGION);
    expect(config.images).toBeUndefined();
    expect(config.adminEmails).toEqual([]);
    expect(config.labels).toEqual({ app: 'slack-fanout', stack: 'dev', 'managed-by': 'pulumi' });
    expect(config.dispatcher.maxInstances).toBeGreaterThan(0);
    expect(config.notifier.maxInstances).toBeGreaterThan(0);
  });

  it('reads every setting', () => {
    const config = parseConfig(
      {
        region: 'us-central1',
        firestoreLocation: 'nam5',
        dispatcherImage: IMAGES.dispatcher,
        notifierImage: IMAGES.notifier,
        dispatcherMaxInstances: '1',
        notifierMaxInstances: '100',
        dispatcherConcurrency: '5',
        notifierConcurrency: '250',
        schedulerCron: '*/5 * * * *',
        schedulerTimezone: 'Asia/Tokyo',
        tickDeadlineSeconds: '600',
        // A number or a boolean, as `pulumi config set --path labels.<key> 1234` stores them.
        labels: '{"team":"growth","cost-center":"cc_12","ledger":1234,"pii":false}',
        adminEmails: '["a@acme.example", "b@acme.example"]',
        logLevel: 'debug',
        slackApiUrl: 'https://slack.example/api/',
      },
      { ...ctx, stack: 'Prod.EU' },
    );
    expect(config).toMatchObject({
      region: 'us-central1',
      firestoreLocation: 'nam5',
      images: IMAGES,
      dispatcher: { maxInstances: 1, concurrency: 5 },
      notifier: { maxInstances: 100, concurrency: 250 },
      scheduler: { cron: '*/5 * * * *', timeZone: 'Asia/Tokyo', attemptDeadlineSeconds: 600 },
      labels: {
        team: 'growth',
        'cost-center': 'cc_12',
        ledger: '1234',
        pii: 'false',
        app: 'slack-fanout',
        stack: 'prod-eu',
      },
      adminEmails: ['a@acme.example', 'b@acme.example'],
      logLevel: 'debug',
      slackApiUrl: 'https://slack.example/api/',
    });
  });

  it('falls back to gcp:region', () => {
    expect(parseConfig({}, { ...ctx, gcpRegion: 'asia-northeast1' }).region).toBe('asia-northeast1');
  });

  it.each(['0', '-1', '1001', '2.5', 'lots'])(
    'rejects notifierMaxInstances %j with a message naming the key',
    (value) => {
      expect(() => parseConfig({ ...valid, notifierMaxInstances: value }, ctx)).toThrow(
        `${NS}:notifierMaxInstances: must be an integer from 1 to 1000 (got ${JSON.stringify(value)})`,
      );
    },
  );

  it('treats an empty value as unset', () => {
    expect(parseConfig({ ...valid, notifierMaxInstances: ' ' }, ctx).notifier).toEqual(
      parseConfig(valid, ctx).notifier,
    );
  });

  it('names a missing region and project with the command that sets them', () => {
    expect(() => parseConfig({}, { namespace: NS, stack: 'dev' })).toThrow(InfraConfigError);
    expect(problemKeys({}, { namespace: NS, stack: 'dev' })).toEqual(['gcp:project', `${NS}:region`]);
    expect(() => parseConfig({}, ctx)).toThrow(`${NS}:region: is required: pulumi config set region`);
    expect(() => parseConfig(valid, { namespace: NS, stack: 'dev' })).toThrow(
      'gcp:project: is required: pulumi config set gcp:project',
    );
  });

  it('requires both images or neither', () => {
    expect(problemKeys({ ...valid, dispatcherImage: IMAGES.dispatcher })).toEqual([`${NS}:notifierImage`]);
    expect(problemKeys({ ...valid, notifierImage: IMAGES.notifier })).toEqual([`${NS}:dispatcherImage`]);
    expect(problemKeys({ ...valid, dispatcherImage: 'dispatcher', notifierImage: IMAGES.notifier })).toEqual([
      `${NS}:dispatcherImage`,
    ]);
  });

  it('checks the tick cron the way a notification schedule is checked, naming the key', () => {
    for (const cron of ['61 * * * *', 'every 5 minutes please ok', '* * * *', '*/5 * * * * *']) {
      expect({ cron, problems: problemKeys({ ...valid, schedulerCron: cron }) }).toEqual({
        cron,
        problems: [`${NS}:schedulerCron`],
      });
    }
    expect(problemKeys({ ...valid, schedulerCron: '*/2 * * * *' })).toEqual([]);
  });

  it('refuses a tick cron whose ticks are too far apart for the catch-up window, retried or not, or that Cloud Scheduler does not take, saying why', () => {
    const problem = (cron: string, tickDeadlineSeconds = '300') => {
      try {
        parseConfig({ ...valid, schedulerCron: cron, tickDeadlineSeconds }, ctx);
        return null;
      } catch (err) {
        return (err as InfraConfigError).problems.map((p) => `${p.key}: ${p.message}`).join('\n');
      }
    };
    // With the default deadline (300 s, retried once): up to 585 s apart, on every day.
    expect(longestTickGapSeconds(300)).toBe(900 - 300 - 15);
    for (const cron of [
      '* * * * *',
      '*/5 * * * *',
      '0,5,10,15,20,25,30,35,40,45,50,55 * * * *',
      '* * * JAN-DEC SUN-SAT',
    ]) {
      expect({ cron, problem: problem(cron) }).toEqual({ cron, problem: null });
    }
    // Both day fields restricted: either day is a tick's, so these tick every day.
    for (const cron of ['* * 1-31 * 1-5', '* * 1-15 * 0-6']) {
      expect({ cron, problem: problem(cron) }).toEqual({ cron, problem: null });
    }
    expect(problem('*/15 * * * *')).toBe(
      `${NS}:schedulerCron: ticks up to 15 minutes apart (00:00 to 00:15; got "*/15 * * * *"); the dispatcher sends an occurrence only while it is at most 15 minutes old (its catch-up window), and a tick that fails is tried again up to 315 s after its time (tickDeadlineSeconds 300 and 15 s), so ticks more than 585 s apart would pass over, for good, the reports of notifications whose cron fires between two of them: tick at least every 9 minutes, on every day (default "* * * * *"), or lower tickDeadlineSeconds`,
    );
    // A shorter deadline leaves room for ticks further apart; one not retried, for half the window.
    expect(problem('*/10 * * * *')).toContain('ticks up to 10 minutes apart');
    expect(problem('*/10 * * * *', '120')).toBeNull();
    expect(longestTickGapSeconds(600)).toBe(450);
    expect(problem('*/10 * * * *', '600')).toContain(
      'a tick that fails is not tried again (tickDeadlineSeconds 600, above 442), and the next one sends what it missed, so ticks more than 450 s apart',
    );
    expect(problem('0 * * * *')).toContain('ticks up to 60 minutes apart (00:00 to 01:00; got "0 * * * *")');
    // The gap overnight.
    expect(problem('*/5 8-18 * * *')).toContain('ticks up to 785 minutes apart (18:55 to 08:00;');
    expect(problem('* * * * 1-5')).toContain('ticks on some days only (got "* * * * 1-5")');
    expect(problem('* * 1-15 * *')).toContain('ticks on some days only');
    expect(problem('* * * JUL *')).toContain('ticks on some days only');
    // A cron a notification may have, but Cloud Scheduler's unix-cron format does not take.
    expect(problem('* * ? * *')).toBe(
      `${NS}:schedulerCron: holds ?, which Cloud Scheduler's cron format does not take (got "* * ? * *")`,
    );
    expect(problem('0 9 L * *')).toContain('holds L (a last day), which Cloud Scheduler');
    expect(problem('0 9 * * 1#2')).toContain('holds # (an nth weekday), which Cloud Scheduler');
  });

  it('takes only tick gaps the dispatcher’s catch-up policy sends across, a failed tick retried or not', () => {
    // A notification due just after one tick; the next tick fails (at its deadline), and its
    // retry arrives a deadline and the backoff late, or, not retried, the tick after it sends.
    const daily = { cron: '1 9 * * *', timezone: 'UTC' };
    const due = new Date('2030-01-01T09:01:00.000Z');
    for (const deadline of [15, 120, 300, 442, 443, 600, 1800]) {
      const gap = longestTickGapSeconds(deadline);
      const retried = tickRetryCount(deadline) > 0;
      for (const [g, sent] of [
        [gap, true],
        [gap + 60, false],
      ] as const) {
        // The first tick after the notification's instant, as late as the gap allows.
        const tick = new Date(due.getTime() - 1000 + g * 1000);
        // Retried: the same tick, arriving late. Not: the tick after it, on time.
        const sending = retried ? tick : new Date(tick.getTime() + g * 1000);
        const arrives = retried ? new Date(tick.getTime() + (deadline + TICK_RETRY_BACKOFF_SECONDS) * 1000) : sending;
        const plan = planOccurrence(daily, due, sending, DEFAULT_CATCH_UP_WINDOW_SECONDS, arrives);
        expect({ deadline, g, sent: plan.run !== null }).toEqual({ deadline, g, sent });
      }
    }
  });

  it('takes an image with a tag, a digest, or both', () => {
    const digest = `@sha256:${'a'.repeat(64)}`;
    for (const ref of ['dispatcher:v1', `dispatcher${digest}`, `dispatcher:v1${digest}`]) {
      const image = `europe-docker.pkg.dev/acme/slack-fanout/${ref}`;
      expect({
        image,
        problems: problemKeys({ ...valid, dispatcherImage: image, notifierImage: IMAGES.notifier }),
      }).toEqual({
        image,
        problems: [],
      });
    }
    expect(
      problemKeys({
        ...valid,
        dispatcherImage: 'europe-docker.pkg.dev/acme/x/dispatcher',
        notifierImage: IMAGES.notifier,
      }),
    ).toEqual([`${NS}:dispatcherImage`]);
  });

  it('reports every problem at once', () => {
    expect(
      problemKeys({
        ...valid,
        dispatcherConcurrency: '0',
        schedulerCron: 'every five minutes',
        schedulerTimezone: 'Mars/Olympus',
        tickDeadlineSeconds: '5',
        adminEmails: 'ops@acme.example, not-an-email',
        logLevel: 'loud',
        slackApiUrl: 'http://slack.example',
        region: 'Europe West',
      }),
    ).toEqual([
      `${NS}:region`,
      `${NS}:dispatcherConcurrency`,
      `${NS}:schedulerCron`,
      `${NS}:schedulerTimezone`,
      `${NS}:tickDeadlineSeconds`,
      `${NS}:adminEmails`,
      `${NS}:logLevel`,
      `${NS}:slackApiUrl`,
    ]);
  });

  it('refuses an admin email the dispatcher would refuse at start, as it reads ADMIN_EMAILS', () => {
    for (const email of ["o'brien!@example.c", 'ops@localhost', 'a b@acme.example']) {
      expect(problemKeys({ ...valid, adminEmails: email })).toEqual([`${NS}:adminEmails`]);
      expect(() => loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', ADMIN_EMAILS: email })).toThrow(/ADMIN_EMAILS/);
    }
    expect(problemKeys({ ...valid, adminEmails: 'ops+oncall@acme.example' })).toEqual([]);
  });

  it('refuses a slackApiUrl the notifier would refuse at start, as it reads SLACK_API_URL', () => {
    for (const url of [
      'https://slack.example/api/?a=1',
      'https://u:p@slack.example/api/',
      'https://slack.example/api/#x',
    ]) {
      expect(problemKeys({ ...valid, slackApiUrl: url })).toEqual([`${NS}:slackApiUrl`]);
      expect(() => loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', SLACK_API_URL: url })).toThrow(/SLACK_API_URL/);
    }
    expect(problemKeys({ ...valid, slackApiUrl: 'https://slack.example/api/' })).toEqual([]);
  });

  it('does not show back a slackApiUrl that may hold a password, as the notifier does not', () => {
    const message = (raw: RawConfig) => {
      try {
        parseConfig(raw, ctx);
      } catch (err) {
        return (err as InfraConfigError).message;
      }
      throw new Error('expected the configuration to be refused');
    };
    const withPassword = message({ ...valid, slackApiUrl: 'http://ops:hunter2@slack.example/api/' });
    expect(withPassword).toMatch(/slackApiUrl: /);
    expect(withPassword).not.toContain('hunter2');
    // One without an @ is still quoted, to find it by.
    expect(message({ ...valid, slackApiUrl: 'http://slack.example/api/' })).toContain(
      '(got "http://slack.example/api/")',
    );
  });

  it('rejects labels that Google Cloud would refuse, or that would hide the program’s own', () => {
    expect(problemKeys({ ...valid, labels: '{"Team":"x"}' })).toEqual([`${NS}:labels`]);
    expect(problemKeys({ ...valid, labels: '{"team":"Growth Team"}' })).toEqual([`${NS}:labels`]);
    expect(problemKeys({ ...valid, labels: '{"app":"other"}' })).toEqual([`${NS}:labels`]);
    expect(problemKeys({ ...valid, labels: '["team"]' })).toEqual([`${NS}:labels`]);
    // 64 on a resource, the program's 3 among them.
    const many = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, 'x'])));
    expect(problemKeys({ ...valid, labels: many(61) })).toEqual([]);
    expect(() => parseConfig({ ...valid, labels: many(62) }, ctx)).toThrow(
      `${NS}:labels: has 62 labels; at most 61 (Google Cloud takes 64 on a resource, and the program sets app, stack, managed-by)`,
    );
  });

  it('refuses a scheduler time zone in another case than the time zone database writes it', () => {
    expect(() => parseConfig({ ...valid, schedulerTimezone: 'europe/paris' }, ctx)).toThrow(
      `${NS}:schedulerTimezone: is written "Europe/Paris" in the time zone database (got "europe/paris")`,
    );
    expect(problemKeys({ ...valid, schedulerTimezone: 'utc' })).toEqual([`${NS}:schedulerTimezone`]);
    // An alias in another case, which the runtime resolves to another name.
    expect(() => parseConfig({ ...valid, schedulerTimezone: 'etc/utc' }, ctx)).toThrow(
      `${NS}:schedulerTimezone: is not written as the time zone database writes it, each part starting with a capital (got "etc/utc"; it is "UTC")`,
    );
    for (const zone of ['us/eastern', 'gmt']) {
      expect(problemKeys({ ...valid, schedulerTimezone: zone })).toEqual([`${NS}:schedulerTimezone`]);
    }
    // Aliases, in their own spelling, are the database's names too.
    for (const zone of ['Etc/UTC', 'UTC', 'Asia/Tokyo', 'Asia/Kolkata', 'Etc/GMT-14']) {
      expect(problemKeys({ ...valid, schedulerTimezone: zone })).toEqual([]);
    }
  });

  it('refuses a scheduler time zone that changes its clocks, where the hour they go back may have no tick', () => {
    expect(() => parseConfig({ ...valid, schedulerTimezone: 'Europe/Paris' }, ctx)).toThrow(
      `${NS}:schedulerTimezone: changes its clocks (got "Europe/Paris"): Cloud Scheduler may tick once, not twice, through the hour the clocks go back, and an hour without a tick passes over the reports of that hour; the tick's zone changes nothing else (each notification has its own zone): use Etc/UTC, the default`,
    );
    for (const zone of ['US/Eastern', 'America/Port-au-Prince', 'Australia/Lord_Howe', 'America/Santiago']) {
      expect({ zone, problems: problemKeys({ ...valid, schedulerTimezone: zone }) }).toEqual({
        zone,
        problems: [`${NS}:schedulerTimezone`],
      });
    }
  });
});

describe('Pulumi.example.yaml', () => {
  it('holds, uncommented, only values the program takes as they are: a copy of it passes its checks', () => {
    const example = fs.readFileSync(path.join(__dirname, 'Pulumi.example.yaml'), 'utf8');
    const raw: Record<string, string> = {};
    for (const [, key, value] of example.matchAll(/^ {2}slack-fanout:(\w+):(.*)$/gm)) {
      // A scalar, its quotes dropped; a block (labels, a secret) is left to its own test.
      const scalar = (value ?? '').trim().replace(/^"(.*)"$/, '$1');
      if (key !== undefined && scalar !== '') raw[key] = scalar;
    }
    expect(Object.keys(raw)).toContain('region');
    expect(Object.keys(raw)).not.toContain('slackBotToken');
    expect(() => parseConfig(raw, { namespace: NS, stack: 'dev', gcpProject: GCP_PROJECT })).not.toThrow();
  });

  it('documents every config key the program reads', () => {
    const example = fs.readFileSync(path.join(__dirname, 'Pulumi.example.yaml'), 'utf8');
    for (const key of [...CONFIG_KEYS, ...SECRET_CONFIG_KEYS, 'gcp:project']) {
      const qualified = key.includes(':') ? key : `${NS}:${key}`;
      expect({ key: qualified, documented: example.includes(`${qualified}:`) }).toEqual({
        key: qualified,
        documented: true,
      });
    }
  });
});
