import { CodedError } from '../errors/index.js'

/** What went wrong talking to a bucket; callers branch on `code`. */
export type BucketErrorCode =
  | 'STORE_URL_INVALID'
  | 'BUCKET_CREDENTIALS_MISSING'
  | 'BUCKET_CREDENTIALS_REJECTED'
  | 'BUCKET_CREDENTIALS_EXPIRED'
  | 'BUCKET_ACCESS_DENIED'
  | 'BUCKET_NOT_FOUND'
  | 'BUCKET_KEY_NOT_FOUND'
  | 'BUCKET_UPLOAD_NOT_FOUND'
  | 'BUCKET_THROTTLED'
  | 'BUCKET_ENDPOINT_FAILED'
  | 'BUCKET_BAD_RESPONSE'

export class BucketError extends CodedError<BucketErrorCode> {
  override name = 'BucketError'
  /** The HTTP status of the last answer, when there was one. */
  readonly status: number | undefined
  constructor (code: BucketErrorCode, message: string, options?: ErrorOptions & { status?: number }) {
    super(code, message, options)
    this.status = options?.status
  }
}
