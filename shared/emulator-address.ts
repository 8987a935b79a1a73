import { quoted } from './model';

/** The variables the Google Cloud clients read to reach an emulator, by the service they stand for. */
export const EMULATOR_VARIABLES = { Firestore: 'FIRESTORE_EMULATOR_HOST', 'Pub/Sub': 'PUBSUB_EMULATOR_HOST' } as const;
export type EmulatedService = keyof typeof EMULATOR_VARIABLES;

const HOST = /^[^\s:/[\]@?#]+$/;

/**
 * Host and port of an emulator address, read as the variable's own client reads it, or the
 * problem with it, naming the variable: the clients' own words do not (`Value for argument
 * "FIRESTORE_EMULATOR_HOST" is not a valid host`, or nothing at all from Pub/Sub's, which only
 * never answers).
 *
 * - Firestore's takes `host:port` or `[IPv6]:port`, nothing around it (its `validateHost`).
 * - Pub/Sub's drops a leading `http://` or `https://` and trailing slashes, then splits at
 *   `:`: so `http://localhost:8085/` is `localhost:8085`, and a bracketed IPv6 address is
 *   lost.
 *
 * A port is required: without one the clients go to port 443 (or 80), never an emulator's
 * (`gcloud beta emulators … env-init` always prints one).
 */
export function emulatorAddress(
  variable: string,
  address: string,
): { host: string; port: number; problem?: undefined } | { problem: string } {
  const pubsub = variable === EMULATOR_VARIABLES['Pub/Sub'];
  let host: string | undefined;
  let portText: string | undefined;
  if (pubsub) {
    const parts = address
      .replace(/^https?:\/\//, '')
      .replace(/(?<!\/)\/+$/, '')
      .split(':');
    if (parts.length === 2 && HOST.test(parts[0] ?? '')) [host, portText] = parts;
  } else {
    const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(address) ?? /^([^\s:/[\]@?#]+):(\d+)$/.exec(address);
    [host, portText] = [m?.[1], m?.[2]];
  }
  const port = /^\d{1,5}$/.test(portText ?? '') ? Number(portText) : 0;
  if (host === undefined || port < 1 || port > 65535) {
    return {
      problem:
        `${variable}=${quoted(address)} is not an emulator address: expected host:port, ` +
        `the port from 1 to 65535${pubsub ? ' (an IPv6 address in brackets is not read by the Pub/Sub client)' : ''} ` +
        `(as \`gcloud beta emulators ${pubsub ? 'pubsub' : 'firestore'} env-init\` prints it, e.g. 127.0.0.1:${pubsub ? 8085 : 8080})`,
    };
  }
  return { host, port };
}
