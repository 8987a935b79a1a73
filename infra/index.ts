import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { enableApis } from './apis';
import { loadConfig } from './config';
import { createFirestore } from './firestore';
import {
  createServiceAccounts,
  grantDeadLetterForwarding,
  grantInvokers,
  grantRuntimeRoles,
  pubsubServiceAgent,
} from './iam';
import { createSubscriptions, createTopics } from './messaging';
import { createRegistry } from './registry';
import { createTickJob } from './scheduling';
import { createSecrets } from './secrets';
import { createServices } from './services';

const config = loadConfig();
const { project, labels } = config;

const apis = enableApis(project);
const projectNumber = gcp.organizations.getProjectOutput({ projectId: project }).apply((p) => p.number);

const registry = createRegistry({ project, region: config.region, labels, apis });
const firestore = createFirestore({ project, locationId: config.firestoreLocation, apis });
const secrets = createSecrets({ project, labels, slackBotToken: config.slackBotToken, apis });
const accounts = createServiceAccounts(project, apis);
const topics = createTopics(project, labels, apis);
const pubsubAgent = pubsubServiceAgent(project, projectNumber, apis);

const runtimeGrants = grantRuntimeRoles({
  project,
  accounts,
  dispatchTopic: topics.dispatch,
  deadLetterTopic: topics.deadLetter,
  slackTokenSecret: secrets.slackToken,
  pubsubAgent,
});

/**
 * Without images the stack holds what building them needs (APIs, the registry) and
 * the state the services will use; the services, subscriptions and schedule come
 * with the next `pulumi up` once the images are configured.
 */
function deployPipeline(images: NonNullable<typeof config.images>) {
  const services = createServices({
    config: { ...config, images },
    projectNumber,
    accounts,
    dispatchTopic: topics.dispatch,
    slackTokenSecret: secrets.slackToken,
    slackTokenVersion: secrets.slackTokenVersion,
    apis,
    // Until its indexes are built, the first tick's queries would fail; until the dispatch
    // index's exemptions hold, a large bucket's write would exceed a document's index entries.
    // Not the ledger's: turning an index off on a large collection takes long, and nothing
    // fails meanwhile.
    dependsOn: [...runtimeGrants, firestore.database, ...firestore.indexes, ...firestore.bucketExemptions],
  });
  const invokers = grantInvokers({
    project,
    region: config.region,
    accounts,
    dispatcher: services.dispatcher,
    notifier: services.notifier,
    adminEmails: config.adminEmails,
  });
  const subscriptions = createSubscriptions({
    project,
    labels,
    topics,
    notifierUrl: services.notifierUrl,
    pushAccount: accounts.push,
    dependsOn: [services.notifier, invokers.notifier],
  });
  const forwarding = grantDeadLetterForwarding(project, subscriptions.dispatch, pubsubAgent);
  const tick = createTickJob({
    project,
    region: config.region,
    scheduler: config.scheduler,
    dispatcherUrl: services.dispatcherUrl,
    schedulerAccount: accounts.scheduler,
    apis,
    // Pub/Sub gives a message only to the subscriptions there when it is published: a tick
    // before the dispatch subscription would move its schedules on with nobody to send to.
    dependsOn: [services.dispatcher, invokers.dispatcher, subscriptions.dispatch, subscriptions.deadLetter, forwarding],
  });
  return { services, subscriptions, tick };
}

if (config.images === undefined) {
  pulumi.log.warn(
    'dispatcherImage and notifierImage are not set: deploying the registry and shared state only. ' +
      'Build the images, set both keys, and run `pulumi up` again.',
  );
}
const pipeline = config.images === undefined ? undefined : deployPipeline(config.images);

export const imageRepository = registry.registryUri;
export const dispatchTopicName = topics.dispatch.name;
export const deadLetterTopicName = topics.deadLetter.name;
export const firestoreDatabase = firestore.database.name;
export const serviceAccountEmails = {
  dispatcher: accounts.dispatcher.email,
  notifier: accounts.notifier.email,
  scheduler: accounts.scheduler.email,
  push: accounts.push.email,
};
export const dispatcherUrl = pipeline?.services.dispatcherUrl;
export const notifierUrl = pipeline?.services.notifierUrl;
export const dispatchSubscriptionName = pipeline?.subscriptions.dispatch.name;
export const deadLetterSubscriptionName = pipeline?.subscriptions.deadLetter.name;
export const schedulerJobName = pipeline?.tick.name;
