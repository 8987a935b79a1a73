import * as gcp from '@pulumi/gcp';
import type { Apis } from './apis';

export const REPOSITORY_ID = 'slack-fanout';

export interface RegistryArgs {
  project: string;
  region: string;
  labels: Record<string, string>;
  apis: Apis;
}

/** The Docker repository the two service images are pushed to, next to the services that pull them. */
export function createRegistry(args: RegistryArgs): gcp.artifactregistry.Repository {
  return new gcp.artifactregistry.Repository(
    'images',
    {
      project: args.project,
      location: args.region,
      repositoryId: REPOSITORY_ID,
      format: 'DOCKER',
      description: 'slack-fanout dispatcher and notifier images',
      labels: args.labels,
      // Every deploy pushes a new tag; without a policy the repository only grows.
      cleanupPolicies: [
        { id: 'keep-recent', action: 'KEEP', mostRecentVersions: { keepCount: 10 } },
        { id: 'delete-old', action: 'DELETE', condition: { tagState: 'ANY', olderThan: `${30 * 24 * 3600}s` } },
      ],
    },
    { dependsOn: [args.apis.artifactregistry] },
  );
}
