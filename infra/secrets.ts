import * as gcp from '@pulumi/gcp';
import type * as pulumi from '@pulumi/pulumi';
import type { Apis } from './apis';

export const SLACK_TOKEN_SECRET_ID = 'slack-fanout-slack-bot-token';

export interface SecretsArgs {
  project: string;
  labels: Record<string, string>;
  slackBotToken: pulumi.Output<string>;
  apis: Apis;
}

export interface Secrets {
  slackToken: gcp.secretmanager.Secret;
  slackTokenVersion: gcp.secretmanager.SecretVersion;
}

export function createSecrets(args: SecretsArgs): Secrets {
  const slackToken = new gcp.secretmanager.Secret(
    'slack-bot-token',
    {
      project: args.project,
      secretId: SLACK_TOKEN_SECRET_ID,
      replication: { auto: {} },
      labels: args.labels,
    },
    { dependsOn: [args.apis.secretmanager] },
  );
  const slackTokenVersion = new gcp.secretmanager.SecretVersion('slack-bot-token', {
    secret: slackToken.id,
    secretData: args.slackBotToken,
    // A new token replaces the version; the old one is disabled, not destroyed, so a rollback to
    // a revision pinned to it fails visibly but can be undone (re-enable the version).
    deletionPolicy: 'DISABLE',
  });
  return { slackToken, slackTokenVersion };
}
