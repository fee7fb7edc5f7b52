import { BucketError } from './errors.js'

/** S3 error codes that mean "slow down or try again": retried with backoff. */
const RETRYABLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'OperationAborted'])
const EXPIRED_CODES = new Set(['ExpiredToken', 'TokenRefreshRequired', 'ExpiredTokenException'])
const REJECTED_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'AuthorizationHeaderMalformed', 'InvalidSecurity'])

export function isRetryable (status: number, code: string | undefined): boolean {
  return status >= 500 || status === 429 || (code !== undefined && RETRYABLE_CODES.has(code))
}

export interface FailedRequest {
  /** `s3://bucket/key` (or the bucket alone) for the message. */
  where: string
  bucket: string
  endpoint: string
  what: string
  credentialSource: string
  status: number
  code: string | undefined
  message: string | undefined
  attempts: number
}

/** One message per failure, naming the bucket and key and saying what to do. */
export function bucketErrorOf (failed: FailedRequest): BucketError {
  const { where, status, code, attempts } = failed
  const said = `${code ?? `HTTP ${status}`}${failed.message !== undefined && failed.message !== '' ? `: ${failed.message}` : ''}`
  const options = { status }
  if (code === 'NoSuchBucket') return new BucketError('BUCKET_NOT_FOUND', `bucket ${failed.bucket} does not exist at ${failed.endpoint} (${failed.what} ${where}); create it or correct the store URL`, options)
  if (code === 'NoSuchUpload') return new BucketError('BUCKET_UPLOAD_NOT_FOUND', `the multipart upload to ${where} is gone (aborted or expired)`, options)
  if (code === 'NoSuchKey' || status === 404) return new BucketError('BUCKET_KEY_NOT_FOUND', `${where} does not exist (${said})`, options)
  if (code !== undefined && EXPIRED_CODES.has(code)) return new BucketError('BUCKET_CREDENTIALS_EXPIRED', `${failed.what} ${where}: the credentials from ${failed.credentialSource} have expired (${said}); get new ones and run again`, options)
  if (code !== undefined && REJECTED_CODES.has(code)) return new BucketError('BUCKET_CREDENTIALS_REJECTED', `${failed.what} ${where}: ${failed.endpoint} rejected the credentials from ${failed.credentialSource} (${said}); check the access key ID and its secret`, options)
  if (code === 'AccessDenied' || status === 403) return new BucketError('BUCKET_ACCESS_DENIED', `${failed.what} ${where}: access denied to the credentials from ${failed.credentialSource} (${said}); they need read (and for a destination, write and list) rights on the bucket`, options)
  if (status === 503 || status === 429 || code === 'SlowDown' || code === 'Throttling') return new BucketError('BUCKET_THROTTLED', `${failed.what} ${where}: ${failed.endpoint} still throttled after ${attempts} attempts (${said}); run again later, the sync resumes where it stopped`, options)
  if (status >= 500) return new BucketError('BUCKET_ENDPOINT_FAILED', `${failed.what} ${where}: ${failed.endpoint} kept failing, ${attempts} attempts (${said}); run again later, the sync resumes where it stopped`, options)
  return new BucketError('BUCKET_BAD_RESPONSE', `${failed.what} ${where}: ${failed.endpoint} answered ${said}`, options)
}
