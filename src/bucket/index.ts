import { BucketClient, type BucketClientInit } from './bucket-client.js'
import { resolveBucketConfig } from './bucket-config.js'
import { parseBucketUrl } from './store-url.js'

/**
 * Opens a client for `s3://BUCKET/PREFIX` or `gs://BUCKET/PREFIX` with the configuration the
 * environment gives; returns the prefix beside it.
 */
export async function openBucket (spec: string, env: NodeJS.ProcessEnv, init: BucketClientInit = {}): Promise<{ client: BucketClient, prefix: string }> {
  const url = parseBucketUrl(spec)
  const config = await resolveBucketConfig(url.scheme, env)
  return { client: new BucketClient(url.scheme, url.bucket, config, init), prefix: url.prefix }
}

export { BucketClient, type BucketClientInit, type ObjectHead, type ListedObject, type CompletedPart } from './bucket-client.js'
export { resolveBucketConfig, type BucketConfig, type BucketCredentials } from './bucket-config.js'
export { BucketError, type BucketErrorCode } from './errors.js'
export { parseBucketUrl, formatBucketUrl, isBucketUrl, type BucketUrl, type BucketScheme } from './store-url.js'
export { parseIni } from './ini-file.js'
