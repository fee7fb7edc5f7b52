/** What went wrong talking to a bucket; callers branch on `code`. */
export type BucketErrorCode =
  | 'BAD_STORE_URL'
  | 'CREDENTIALS_MISSING'
  | 'CREDENTIALS_REJECTED'
  | 'CREDENTIALS_EXPIRED'
  | 'ACCESS_DENIED'
  | 'BUCKET_NOT_FOUND'
  | 'KEY_NOT_FOUND'
  | 'UPLOAD_NOT_FOUND'
  | 'THROTTLED'
  | 'ENDPOINT_FAILED'
  | 'BAD_RESPONSE'

export class BucketError extends Error {
  readonly code: BucketErrorCode
  /** The HTTP status of the last answer, when there was one. */
  readonly status: number | undefined
  constructor (code: BucketErrorCode, message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options)
    this.name = 'BucketError'
    this.code = code
    this.status = options?.status
  }
}
