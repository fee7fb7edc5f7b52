import { BucketError } from './errors.js'

export type BucketScheme = 's3' | 'gs'

/** `s3://BUCKET/PREFIX` or `gs://BUCKET/PREFIX`, split as snapdir splits it. */
export interface BucketUrl {
  scheme: BucketScheme
  bucket: string
  /** Key prefix without leading or trailing slash; '' for the bucket's root. */
  prefix: string
}

export function isBucketUrl (spec: string): boolean {
  return /^(s3|gs):\/\//.test(spec)
}

/**
 * snapdir takes the bucket as the third `/`-field of the URL and the prefix as the rest, minus
 * a trailing slash (`_snapdir_export_store_vars`, `_snapdir_s3_store_get_remote_prefix`); keys
 * are `PREFIX/.objects/...`, or `.objects/...` when the prefix is empty.
 */
export function parseBucketUrl (spec: string): BucketUrl {
  const match = /^(s3|gs):\/\/([^/]*)\/?(.*)$/.exec(spec)
  if (match === null) throw new BucketError('STORE_URL_INVALID', `${JSON.stringify(spec)} is not a bucket URL; write s3://BUCKET/PREFIX or gs://BUCKET/PREFIX`)
  const [, scheme, bucket, rest] = match as unknown as [string, BucketScheme, string, string]
  // S3 bucket names: 3–63 of [a-z0-9.-]; S3-compatible servers also take upper case and '_'.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$/.test(bucket)) throw new BucketError('STORE_URL_INVALID', `${JSON.stringify(spec)} names no valid bucket (3 to 63 letters, digits, '.', '-' or '_')`)
  const prefix = rest.replace(/\/+$/, '')
  if (prefix.split('/').some(part => part === '' || part === '.' || part === '..')) {
    throw new BucketError('STORE_URL_INVALID', `${JSON.stringify(spec)} has an empty, '.' or '..' segment in its prefix; keys with those are not portable between S3 services`)
  }
  return { scheme, bucket, prefix }
}

export function formatBucketUrl (url: BucketUrl): string {
  return `${url.scheme}://${url.bucket}${url.prefix === '' ? '' : '/' + url.prefix}`
}
