import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { DEFAULT_ADMIN_DEADLINE_SECONDS, ENV } from '../shared/config';
import { TOPOLOGY } from '../shared/topology';
import type { Apis } from './apis';
import type { InfraConfig } from './config';
import type { ServiceAccounts } from './iam';
import { seconds } from './messaging';

export const SERVICE_NAMES = Object.freeze({
  dispatcher: 'slack-fanout-dispatcher',
  notifier: 'slack-fanout-notifier',
});

/** Cloud Run sets PORT to this; PORT itself is reserved and cannot be set. */
const CONTAINER_PORT = 8080;

/**
 * The service's deterministic URL, known before the service exists. The services
 * check that OIDC tokens carry their own URL as audience, so the URL has to be in
 * their environment, which would otherwise be a cycle through the service's output.
 */
export function serviceUrl(name: string, projectNumber: pulumi.Input<string>, region: string): pulumi.Output<string> {
  return pulumi.output(projectNumber).apply((number) => {
    const host = `${name}-${number}`;
    // Cloud Run gives no deterministic URL when this label would exceed a DNS label.
    if (host.length > 63) throw new Error(`service name ${name} is too long for a deterministic URL`);
    return `https://${host}.${region}.run.app`;
  });
}

type Env = gcp.types.input.cloudrunv2.ServiceTemplateContainerEnv;

const plain = (name: string, value: pulumi.Input<string>): Env => ({ name, value });

export interface ServicesArgs {
  config: InfraConfig & { images: NonNullable<InfraConfig['images']> };
  projectNumber: pulumi.Input<string>;
  accounts: ServiceAccounts;
  dispatchTopic: gcp.pubsub.Topic;
  slackTokenSecret: gcp.secretmanager.Secret;
  slackTokenVersion: gcp.secretmanager.SecretVersion;
  apis: Apis;
  /** The runtime grants: a revision that cannot read its secret or reach Firestore fails to start. */
  dependsOn: pulumi.Resource[];
}

export interface Services {
  dispatcher: gcp.cloudrunv2.Service;
  notifier: gcp.cloudrunv2.Service;
  dispatcherUrl: pulumi.Output<string>;
  notifierUrl: pulumi.Output<string>;
}

/**
 * The admin API's deadline for a redrive or a bulk resume under a request timeout: 10 s short
 * of it, so that the caller gets the API's own 504, and at most the default (at least 5 s).
 */
export function adminDeadlineSeconds(requestTimeoutSeconds: number): number {
  return Math.max(5, Math.min(DEFAULT_ADMIN_DEADLINE_SECONDS, requestTimeoutSeconds - 10));
}

/**
 * A tick's deadline under Cloud Scheduler's attempt deadline: 15 s short of it, so that a tick
 * that stops at its deadline answers (TICK_ANSWER_GRACE_MS after it at most, 4 s) before Cloud
 * Scheduler gives up on the call and Cloud Run's request timeout cuts it, with room for the
 * call's way there (a cold start, the token's check). At least 5 s.
 */
export function tickDeadlineSeconds(attemptDeadlineSeconds: number): number {
  return Math.max(5, attemptDeadlineSeconds - 15);
}

export function createServices(args: ServicesArgs): Services {
  const { config } = args;
  const dispatcherUrl = serviceUrl(SERVICE_NAMES.dispatcher, args.projectNumber, config.region);
  const notifierUrl = serviceUrl(SERVICE_NAMES.notifier, args.projectNumber, config.region);

  const commonEnv: Env[] = [
    plain(ENV.GOOGLE_CLOUD_PROJECT, config.project),
    // Explicit, so that production never depends on a default for who may call it.
    plain(ENV.AUTH_MODE, 'oidc'),
    // Behind Cloud Run's IAM invoker check (invokerIamDisabled: false, below), which verifies
    // each token and removes its signature before the request reaches the container.
    plain(ENV.AUTH_TRUST_CLOUD_RUN_IAM, 'true'),
    ...(config.logLevel !== undefined ? [plain(ENV.LOG_LEVEL, config.logLevel)] : []),
  ];

  const dispatcherEnv: Env[] = [
    ...commonEnv,
    // The notifier publishes nothing: the topic is the dispatcher's alone.
    plain(ENV.DISPATCH_TOPIC, args.dispatchTopic.name),
    plain(ENV.AUTH_AUDIENCE, dispatcherUrl),
    plain(ENV.TICK_INVOKER_EMAIL, args.accounts.scheduler.email),
    ...(config.adminEmails.length > 0 ? [plain(ENV.ADMIN_EMAILS, config.adminEmails.join(','))] : []),
    // The admin API answers its own 504 before Cloud Run's request timeout (the tick's deadline) would.
    plain(ENV.ADMIN_DEADLINE_SECONDS, String(adminDeadlineSeconds(config.scheduler.attemptDeadlineSeconds))),
    // A tick stops its runs at their checkpoints and answers before Cloud Scheduler gives up on it.
    plain(ENV.TICK_DEADLINE_SECONDS, String(tickDeadlineSeconds(config.scheduler.attemptDeadlineSeconds))),
  ];

  const notifierEnv: Env[] = [
    ...commonEnv,
    plain(ENV.AUTH_AUDIENCE, notifierUrl),
    plain(ENV.PUSH_INVOKER_EMAIL, args.accounts.push.email),
    ...(config.slackApiUrl !== undefined ? [plain(ENV.SLACK_API_URL, config.slackApiUrl)] : []),
    {
      name: ENV.SLACK_BOT_TOKEN,
      valueSource: {
        secretKeyRef: {
          secret: args.slackTokenSecret.secretId,
          // A pinned version, so that a new token rolls out as a new revision.
          version: args.slackTokenVersion.version,
        },
      },
    },
  ];

  const service = (
    name: string,
    image: string,
    settings: InfraConfig['dispatcher'],
    timeoutSeconds: number,
    serviceAccount: gcp.serviceaccount.Account,
    envs: Env[],
  ) =>
    new gcp.cloudrunv2.Service(
      name.replace(/^slack-fanout-/, ''),
      {
        project: config.project,
        location: config.region,
        name,
        labels: config.labels,
        // IAM (run.invoker, below and in iam.ts) is the gate. Google documents internal-only
        // ingress as admitting Cloud Scheduler and Pub/Sub push from the same project, but the
        // admin API is called from outside Google Cloud, and internal ingress is not tried here.
        ingress: 'INGRESS_TRAFFIC_ALL',
        invokerIamDisabled: false,
        // Lets `pulumi destroy` remove the service; nothing in it is state.
        deletionProtection: false,
        template: {
          serviceAccount: serviceAccount.email,
          labels: config.labels,
          timeout: seconds(timeoutSeconds),
          maxInstanceRequestConcurrency: settings.concurrency,
          scaling: { minInstanceCount: 0, maxInstanceCount: settings.maxInstances },
          containers: [
            {
              image,
              ports: { containerPort: CONTAINER_PORT },
              envs,
              // cpuIdle: CPU only while a request is served (request-based billing), which
              // Cloud Run drops to instance-based once `resources` is set without it.
              resources: { limits: { cpu: '1', memory: '512Mi' }, startupCpuBoost: true, cpuIdle: true },
            },
          ],
        },
      },
      { dependsOn: [args.apis.run, ...args.dependsOn] },
    );

  return {
    // A tick streams whole schedules; it may run up to Cloud Scheduler's attempt deadline.
    dispatcher: service(
      SERVICE_NAMES.dispatcher,
      config.images.dispatcher,
      config.dispatcher,
      config.scheduler.attemptDeadlineSeconds,
      args.accounts.dispatcher,
      dispatcherEnv,
    ),
    // Pub/Sub stops waiting at the ack deadline; a request that outlives it is redelivered anyway.
    notifier: service(
      SERVICE_NAMES.notifier,
      config.images.notifier,
      config.notifier,
      TOPOLOGY.ackDeadlineSeconds,
      args.accounts.notifier,
      notifierEnv,
    ),
    dispatcherUrl,
    notifierUrl,
  };
}
