import * as gcp from '@pulumi/gcp';

/** The Google APIs the stack uses, by short name (`<name>.googleapis.com`). */
export const REQUIRED_APIS = [
  'run',
  'pubsub',
  'cloudscheduler',
  'firestore',
  'secretmanager',
  'artifactregistry',
  'cloudbuild',
  'iam',
  // Impersonating an operator service account for the admin API (docs/ADMIN.md).
  'iamcredentials',
] as const;

export type ApiName = (typeof REQUIRED_APIS)[number];
export type Apis = Record<ApiName, gcp.projects.Service>;

export function enableApis(project: string): Apis {
  const apis = {} as Apis;
  for (const name of REQUIRED_APIS) {
    apis[name] = new gcp.projects.Service(`api-${name}`, {
      project,
      service: `${name}.googleapis.com`,
      // Other workloads in the project may use the same API; destroying this stack must not switch it off.
      disableOnDestroy: false,
    });
  }
  return apis;
}
