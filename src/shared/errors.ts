// How failures cross a boundary: the reply envelope, its error codes, and the error meant for users.

export type ApiErrorCode = 'bad-request' | 'no-project' | 'not-found' | 'forbidden' | 'user-error' | 'cancelled' | 'internal'
export type ApiError = { code: ApiErrorCode; message: string }
/** Every reply crossing a boundary is this envelope. */
export type ApiReply<T> = { ok: true; result: T } | { ok: false; error: ApiError }

/** An error whose message is meant for the user (bad file, wrong folder), not a bug. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly code: ApiErrorCode = 'user-error'
  ) {
    super(message)
    this.name = 'UserError'
  }
}
