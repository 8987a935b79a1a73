/** gRPC status codes, as the Google clients (Firestore, Pub/Sub) report them on an error's `code`. */
export const CODES = Object.freeze({
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  /** A method the server does not have: what one emulator answers for the other's calls. */
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
});

/** An error's gRPC status code, or undefined for an error that carries none. */
export function grpcCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}
