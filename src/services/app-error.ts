/**
 * The one domain error. Every failure a client can act on carries a stable
 * `code`; transports map it (GraphQL `extensions.code`, HTTP status + JSON body).
 * Anything that is not an AppError is a bug and is masked before it leaves the server.
 */
export type AppErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'EMAIL_TAKEN'
  | 'INVALID_CREDENTIALS'
  | 'TOO_MANY_ATTEMPTS'
  | 'CSRF_REJECTED'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_SIGNATURE'
  | 'URL_EXPIRED'
  | 'RANGE_NOT_SATISFIABLE'
  | 'DIGEST_MISMATCH'
  | 'CHUNK_DIGEST_MISMATCH'
  | 'CHUNK_LENGTH_MISMATCH'
  | 'METHOD_NOT_ALLOWED'
  | 'STORAGE_ERROR'
  | 'INTERNAL_SERVER_ERROR'
  | 'UPLOAD_EXPIRED'
  | 'UPLOAD_NOT_OPEN'
  | 'UPLOAD_DIGEST_MISMATCH'
  | 'CHUNK_OVERLAP'
  | 'CHUNK_OUT_OF_RANGE'
  | 'CHUNK_TOO_LARGE'
  | 'CHUNK_TOO_SMALL'
  | 'FILE_TOO_LARGE'
  | 'PROOF_REJECTED'
  | 'CHALLENGE_EXPIRED'
  | 'CHALLENGE_USED'
  | 'QUOTA_EXCEEDED'
  | 'BATCH_TOO_LARGE'
  | 'LENGTH_REQUIRED'
  | 'CANNOT_BEFRIEND_SELF'
  | 'ALREADY_FRIENDS'
  | 'NOT_A_FRIEND'
  | 'LIMIT_REACHED'
  | 'MEDIA_UNREADABLE'
  /** Its thumbnails and facts are still being made in the background: ask again shortly. */
  | 'MEDIA_PENDING'
  | 'SHARE_EXPIRED'
  | 'SHARE_REVOKED'
  /** The device was revoked: it cannot be given commands. */
  | 'DEVICE_REVOKED'
  /** The device has never run `pixshare agent` (or is a browser): nothing would receive a command. */
  | 'DEVICE_NOT_AGENT'
  /** The device does not offer a folder of that name. */
  | 'FOLDER_NOT_OFFERED'
  /** The command ran already, runs elsewhere, was cancelled or expired: it cannot be taken up. */
  | 'COMMAND_NOT_OPEN'
  /** The command is held back a moment while its requester hands it over directly. */
  | 'COMMAND_NOT_DUE'
  /** Another run of the agent took the command over (this one stopped reporting in time). */
  | 'COMMAND_LEASE_LOST'
  /** The direct-command credential does not check out, or has expired. */
  | 'BAD_CREDENTIAL'
  /** A change-feed cursor older than the feed keeps: list the library again. */
  | 'CURSOR_EXPIRED';

const httpStatus: Record<AppErrorCode, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  EMAIL_TAKEN: 409,
  INVALID_CREDENTIALS: 401,
  TOO_MANY_ATTEMPTS: 429,
  CSRF_REJECTED: 403,
  PAYLOAD_TOO_LARGE: 413,
  INVALID_SIGNATURE: 403,
  URL_EXPIRED: 410,
  RANGE_NOT_SATISFIABLE: 416,
  DIGEST_MISMATCH: 422,
  CHUNK_DIGEST_MISMATCH: 422,
  CHUNK_LENGTH_MISMATCH: 400,
  METHOD_NOT_ALLOWED: 405,
  STORAGE_ERROR: 502,
  INTERNAL_SERVER_ERROR: 500,
  UPLOAD_EXPIRED: 410,
  UPLOAD_NOT_OPEN: 409,
  UPLOAD_DIGEST_MISMATCH: 422,
  CHUNK_OVERLAP: 409,
  CHUNK_OUT_OF_RANGE: 416,
  CHUNK_TOO_LARGE: 413,
  CHUNK_TOO_SMALL: 400,
  FILE_TOO_LARGE: 413,
  PROOF_REJECTED: 403,
  CHALLENGE_EXPIRED: 410,
  CHALLENGE_USED: 409,
  QUOTA_EXCEEDED: 507,
  BATCH_TOO_LARGE: 413,
  LENGTH_REQUIRED: 411,
  CANNOT_BEFRIEND_SELF: 400,
  ALREADY_FRIENDS: 409,
  NOT_A_FRIEND: 400,
  LIMIT_REACHED: 409,
  MEDIA_UNREADABLE: 422,
  MEDIA_PENDING: 409,
  SHARE_EXPIRED: 410,
  SHARE_REVOKED: 410,
  DEVICE_REVOKED: 410,
  DEVICE_NOT_AGENT: 409,
  FOLDER_NOT_OFFERED: 404,
  COMMAND_NOT_OPEN: 409,
  COMMAND_NOT_DUE: 409,
  COMMAND_LEASE_LOST: 409,
  BAD_CREDENTIAL: 401,
  CURSOR_EXPIRED: 410,
};

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: AppErrorCode,
    message: string,
    /** Extra facts a client may use (limits, numbers); must never contain secrets. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  get httpStatus(): number {
    return httpStatus[this.code];
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
