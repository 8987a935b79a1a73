import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { Apis } from './apis';

export const ROLES = Object.freeze({
  datastoreUser: 'roles/datastore.user',
  publisher: 'roles/pubsub.publisher',
  subscriber: 'roles/pubsub.subscriber',
  viewer: 'roles/pubsub.viewer',
  secretAccessor: 'roles/secretmanager.secretAccessor',
  tokenCreator: 'roles/iam.serviceAccountTokenCreator',
  invoker: 'roles/run.invoker',
});

export interface ServiceAccounts {
  /** Runs the dispatcher. */
  dispatcher: gcp.serviceaccount.Account;
  /** Runs the notifier. */
  notifier: gcp.serviceaccount.Account;
  /** Identity in Cloud Scheduler's OIDC token; may only invoke the dispatcher. */
  scheduler: gcp.serviceaccount.Account;
  /** Identity in Pub/Sub's push OIDC token; may only invoke the notifier. */
  push: gcp.serviceaccount.Account;
}

export function createServiceAccounts(project: string, apis: Apis): ServiceAccounts {
  const account = (name: keyof ServiceAccounts, displayName: string) =>
    new gcp.serviceaccount.Account(
      `sa-${name}`,
      { project, accountId: `slack-fanout-${name}`, displayName },
      { dependsOn: [apis.iam] },
    );
  return {
    dispatcher: account('dispatcher', 'slack-fanout dispatcher runtime'),
    notifier: account('notifier', 'slack-fanout notifier runtime'),
    scheduler: account('scheduler', 'slack-fanout Cloud Scheduler invoker'),
    push: account('push', 'slack-fanout Pub/Sub push invoker'),
  };
}

export function serviceAccountMember(account: gcp.serviceaccount.Account): pulumi.Output<string> {
  return pulumi.interpolate`serviceAccount:${account.email}`;
}

/**
 * The Google-managed identity Pub/Sub acts as when it pushes and dead-letters, as an
 * IAM member. Google creates it lazily; asking for it first keeps a fresh project's
 * grants from failing on an account that does not exist yet.
 */
export function pubsubServiceAgent(
  project: string,
  projectNumber: pulumi.Input<string>,
  apis: Apis,
): pulumi.Output<string> {
  const identity = new gcp.projects.ServiceIdentity(
    'pubsub-agent',
    { project, service: 'pubsub.googleapis.com' },
    { dependsOn: [apis.pubsub] },
  );
  return pulumi
    .all([identity.id, projectNumber])
    .apply(([, number]) => `serviceAccount:service-${number}@gcp-sa-pubsub.iam.gserviceaccount.com`);
}

export interface RuntimeGrantsArgs {
  project: string;
  accounts: ServiceAccounts;
  dispatchTopic: gcp.pubsub.Topic;
  deadLetterTopic: gcp.pubsub.Topic;
  slackTokenSecret: gcp.secretmanager.Secret;
  pubsubAgent: pulumi.Output<string>;
}

/**
 * What the services and Pub/Sub need before the first request arrives: each grant
 * is scoped to the one topic or secret it concerns, except Firestore, whose data
 * roles exist only at project (or database-condition) level.
 */
export function grantRuntimeRoles(args: RuntimeGrantsArgs): pulumi.Resource[] {
  const { accounts } = args;
  const dispatcher = serviceAccountMember(accounts.dispatcher);
  const notifier = serviceAccountMember(accounts.notifier);
  return [
    new gcp.projects.IAMMember('dispatcher-datastore-user', {
      project: args.project,
      role: ROLES.datastoreUser,
      member: dispatcher,
    }),
    new gcp.projects.IAMMember('notifier-datastore-user', {
      project: args.project,
      role: ROLES.datastoreUser,
      member: notifier,
    }),
    new gcp.pubsub.TopicIAMMember('dispatcher-publishes-dispatch', {
      project: args.project,
      topic: args.dispatchTopic.name,
      role: ROLES.publisher,
      member: dispatcher,
    }),
    // The dispatcher's /readyz (and each tick) asks whether the topic exists and has a subscription
    // (pubsub.topics.get, pubsub.topics.listSubscriptions), which publishing alone may not.
    new gcp.pubsub.TopicIAMMember('dispatcher-views-dispatch', {
      project: args.project,
      topic: args.dispatchTopic.name,
      role: ROLES.viewer,
      member: dispatcher,
    }),
    new gcp.secretmanager.SecretIamMember('notifier-reads-slack-token', {
      project: args.project,
      secretId: args.slackTokenSecret.id,
      role: ROLES.secretAccessor,
      member: notifier,
    }),
    // Pub/Sub mints the push OIDC token as the push account; scoped to that account, not the project.
    new gcp.serviceaccount.IAMMember('pubsub-agent-signs-as-push', {
      serviceAccountId: accounts.push.name,
      role: ROLES.tokenCreator,
      member: args.pubsubAgent,
    }),
    new gcp.pubsub.TopicIAMMember('pubsub-agent-publishes-dead-letter', {
      project: args.project,
      topic: args.deadLetterTopic.name,
      role: ROLES.publisher,
      member: args.pubsubAgent,
    }),
  ];
}

/** Dead-lettering also needs the agent to ack the original message on the source subscription. */
export function grantDeadLetterForwarding(
  project: string,
  dispatchSubscription: gcp.pubsub.Subscription,
  pubsubAgent: pulumi.Output<string>,
): gcp.pubsub.SubscriptionIAMMember {
  return new gcp.pubsub.SubscriptionIAMMember('pubsub-agent-subscribes-dispatch', {
    project,
    subscription: dispatchSubscription.name,
    role: ROLES.subscriber,
    member: pubsubAgent,
  });
}

export interface InvokerGrantsArgs {
  project: string;
  region: string;
  accounts: ServiceAccounts;
  dispatcher: gcp.cloudrunv2.Service;
  notifier: gcp.cloudrunv2.Service;
  /** The admin API's callers (adminEmails): they reach the dispatcher through Cloud Run's IAM too. */
  adminEmails: string[];
}

/**
 * Each admin once (IAM takes an email in any case as the same member), with its place in the
 * list, from 1.
 */
function adminsOf(emails: readonly string[]): { email: string; position: number }[] {
  const seen = new Set<string>();
  return emails.flatMap((email, i) => {
    const key = email.toLowerCase();
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ email: key, position: i + 1 }];
  });
}

/**
 * An admin's grant, named by its email: by its place in the list, removing one admin would
 * hand the next one's name to another member, and Pulumi would replace that grant, deleting
 * the binding of an admin who stays (a member grant removes its member from the role, whoever
 * else granted it).
 */
export function adminGrantName(email: string): string {
  return `admin-invokes-dispatcher-${email.toLowerCase()}`;
}

/** The IAM member of an email: a service account's own prefix, a person's otherwise. */
export function emailMember(email: string): string {
  return `${email.endsWith('.gserviceaccount.com') ? 'serviceAccount' : 'user'}:${email}`;
}

/**
 * The only callers either service accepts: no allUsers, no allAuthenticatedUsers. The dispatcher
 * admits Cloud Scheduler and each admin; the notifier admits Pub/Sub push alone.
 */
export function grantInvokers(args: InvokerGrantsArgs): {
  dispatcher: gcp.cloudrunv2.ServiceIamMember;
  notifier: gcp.cloudrunv2.ServiceIamMember;
  admins: gcp.cloudrunv2.ServiceIamMember[];
} {
  return {
    admins: adminsOf(args.adminEmails).map(
      ({ email, position }) =>
        new gcp.cloudrunv2.ServiceIamMember(
          adminGrantName(email),
          {
            project: args.project,
            location: args.region,
            name: args.dispatcher.name,
            role: ROLES.invoker,
            member: emailMember(email),
          },
          // Stacks made before the grants were named by email: the grant of the same admin,
          // at the same place in the list, is this one, not a grant to remove and make again.
          { aliases: [{ name: `admin-${position}-invokes-dispatcher` }] },
        ),
    ),
    dispatcher: new gcp.cloudrunv2.ServiceIamMember('scheduler-invokes-dispatcher', {
      project: args.project,
      location: args.region,
      name: args.dispatcher.name,
      role: ROLES.invoker,
      member: serviceAccountMember(args.accounts.scheduler),
    }),
    notifier: new gcp.cloudrunv2.ServiceIamMember('push-invokes-notifier', {
      project: args.project,
      location: args.region,
      name: args.notifier.name,
      role: ROLES.invoker,
      member: serviceAccountMember(args.accounts.push),
    }),
  };
}
