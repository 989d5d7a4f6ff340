/**
 * Errors a caller can handle carry a stable `code`. Bugs are assertions (see assert.ts);
 * a broken environment is a fatal exit with a message, decided by the CLI.
 */
export const ErrorCode = {
  notLeader: 'NOT_LEADER',
  timeout: 'TIMEOUT',
  leaderChanged: 'LEADER_CHANGED',
  transferInProgress: 'TRANSFER_IN_PROGRESS',
  membershipChangeInProgress: 'MEMBERSHIP_CHANGE_IN_PROGRESS',
  badRequest: 'BAD_REQUEST',
  ackUnsatisfiable: 'ACK_UNSATISFIABLE',
  staleRead: 'STALE_READ',
  staleRequest: 'STALE_REQUEST',
  tooLarge: 'TOO_LARGE',
  overloaded: 'OVERLOADED',
  corrupt: 'CORRUPT',
  unavailable: 'UNAVAILABLE',
  unauthorized: 'UNAUTHORIZED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error with a stable code, and optional details a client may act on (leader hint, index). */
export class TandemError extends Error {
  override name = 'TandemError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}
