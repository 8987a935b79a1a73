import { excerpt } from './model';

/** The variables the Google Cloud clients read to reach an emulator, by the service they stand for. */
export const EMULATOR_VARIABLES = { Firestore: 'FIRESTORE_EMULATOR_HOST', 'Pub/Sub': 'PUBSUB_EMULATOR_HOST' } as const;
export type EmulatedService = keyof typeof EMULATOR_VARIABLES;

/**
 * Host and port of an emulator address (`host:port`, `[::1]:port`; the port 8080 when left
 * out), or the problem with it, naming the variable: the clients' own words do not
 * (`Value for argument "FIRESTORE_EMULATOR_HOST" is not a valid host`, or nothing at all
 * from Pub/Sub's, which only never answers).
 */
export function emulatorAddress(
  variable: string,
  address: string,
): { host: string; port: number; problem?: undefined } | { problem: string } {
  const m = /^\[([^\]\s]+)\](?::(\d{1,5}))?$/.exec(address) ?? /^([^:/\s[\]]+)(?::(\d{1,5}))?$/.exec(address);
  const port = Number(m?.[2] ?? 8080);
  if (!m?.[1] || port < 1 || port > 65535) {
    const pubsub = variable.startsWith('PUBSUB');
    return {
      problem:
        `${variable}=${JSON.stringify(excerpt(address))} is not an emulator address: expected host:port, ` +
        `the port from 1 to 65535 (as \`gcloud beta emulators ${pubsub ? 'pubsub' : 'firestore'} env-init\` prints it, e.g. 127.0.0.1:${pubsub ? 8085 : 8080})`,
    };
  }
  return { host: m[1], port };
}
