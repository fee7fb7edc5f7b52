import { homedir } from 'node:os'
import { join } from 'node:path'
import { GCS_XML_ENDPOINT } from './constants.js'
import { BucketError } from './errors.js'
import { readIniFile } from './ini-file.js'
import type { BucketScheme } from './store-url.js'

export interface BucketCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

/** Where and how to reach a bucket's service. */
export interface BucketConfig {
  endpoint: URL
  region: string
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. */
  pathStyle: boolean
  credentials: BucketCredentials
  /** Where the credentials came from, for error messages. */
  credentialSource: string
}

const nonEmpty = (value: string | undefined): string | undefined => value !== undefined && value !== '' ? value : undefined

/**
 * Reads what the AWS CLI reads for `s3://` (SNAPDIR_S3_STORE_* first, as snapdir's s3 store
 * does), and what gsutil reads for `gs://` HMAC keys. Takes `env` so that only the caller
 * decides where configuration comes from.
 *
 * s3: endpoint from SNAPDIR_S3_STORE_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the
 * profile's `endpoint_url`; region from AWS_REGION, AWS_DEFAULT_REGION or the profile; keys
 * from SNAPDIR_S3_STORE_AWS_*, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then
 * the profile (AWS_PROFILE, default `default`) in AWS_SHARED_CREDENTIALS_FILE and
 * AWS_CONFIG_FILE (~/.aws/credentials, ~/.aws/config). Path-style addressing when the profile's
 * `s3.addressing_style` or SHOAL_S3_ADDRESSING_STYLE says `path`, or, as botocore does, when a
 * custom endpoint is set and nothing says `virtual`.
 *
 * gs: GCS's XML API (SHOAL_GS_ENDPOINT_URL, default storage.googleapis.com) with HMAC keys from
 * GS_ACCESS_KEY_ID/GS_SECRET_ACCESS_KEY or the `[Credentials]` section of BOTO_CONFIG (~/.boto).
 * AWS keys are never sent to Google, nor GS keys to AWS.
 */
export async function resolveBucketConfig (scheme: BucketScheme, env: NodeJS.ProcessEnv): Promise<BucketConfig> {
  return scheme === 's3' ? await resolveS3(env) : await resolveGs(env)
}

async function resolveS3 (env: NodeJS.ProcessEnv): Promise<BucketConfig> {
  const home = nonEmpty(env.HOME) ?? homedir()
  const profileName = nonEmpty(env.AWS_PROFILE) ?? nonEmpty(env.AWS_DEFAULT_PROFILE) ?? 'default'
  const configFile = nonEmpty(env.AWS_CONFIG_FILE) ?? join(home, '.aws', 'config')
  const credentialsFile = nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(home, '.aws', 'credentials')
  const config = await readIniFile(configFile)
  const profile = config.get(profileName === 'default' ? 'default' : `profile ${profileName}`) ?? config.get(profileName) ?? new Map<string, string>()
  const sharedCredentials = (await readIniFile(credentialsFile)).get(profileName) ?? new Map<string, string>()

  const customEndpoint = nonEmpty(env.SNAPDIR_S3_STORE_ENDPOINT_URL) ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL) ??
    nonEmpty(profile.get('s3.endpoint_url')) ?? nonEmpty(profile.get('endpoint_url'))
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? nonEmpty(profile.get('region')) ?? 'us-east-1'
  const style = nonEmpty(env.SHOAL_S3_ADDRESSING_STYLE) ?? nonEmpty(profile.get('s3.addressing_style'))
  if (style !== undefined && style !== 'path' && style !== 'virtual' && style !== 'auto') throw new BucketError('STORE_URL_INVALID', `S3 addressing style ${JSON.stringify(style)} is not path, virtual or auto`)

  let credentials: BucketCredentials | undefined
  let credentialSource = ''
  const snapdirKey = nonEmpty(env.SNAPDIR_S3_STORE_AWS_ACCESS_KEY_ID)
  const envKey = nonEmpty(env.AWS_ACCESS_KEY_ID)
  if (snapdirKey !== undefined) {
    credentials = withSecret(snapdirKey, nonEmpty(env.SNAPDIR_S3_STORE_AWS_SECRET_ACCESS_KEY) ?? nonEmpty(env.AWS_SECRET_ACCESS_KEY), undefined, 'SNAPDIR_S3_STORE_AWS_SECRET_ACCESS_KEY')
    credentialSource = 'SNAPDIR_S3_STORE_AWS_ACCESS_KEY_ID'
  } else if (envKey !== undefined) {
    credentials = withSecret(envKey, nonEmpty(env.AWS_SECRET_ACCESS_KEY), nonEmpty(env.AWS_SESSION_TOKEN), 'AWS_SECRET_ACCESS_KEY')
    credentialSource = 'AWS_ACCESS_KEY_ID'
  } else {
    for (const [section, file] of [[sharedCredentials, credentialsFile], [profile, configFile]] as const) {
      const key = nonEmpty(section.get('aws_access_key_id'))
      if (key === undefined) continue
      credentials = withSecret(key, nonEmpty(section.get('aws_secret_access_key')), nonEmpty(section.get('aws_session_token')), `aws_secret_access_key in profile ${profileName} of ${file}`)
      credentialSource = `profile ${profileName} in ${file}`
      break
    }
  }
  if (credentials === undefined) {
    throw new BucketError('BUCKET_CREDENTIALS_MISSING', `no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or aws_access_key_id in profile ${profileName} of ${credentialsFile} (\`aws configure\` writes it)`)
  }
  const endpoint = parseEndpoint(customEndpoint ?? `https://s3.${region}.amazonaws.com`)
  return { endpoint, region, pathStyle: style === 'path' || (style !== 'virtual' && customEndpoint !== undefined), credentials, credentialSource }
}

async function resolveGs (env: NodeJS.ProcessEnv): Promise<BucketConfig> {
  const home = nonEmpty(env.HOME) ?? homedir()
  const botoFile = nonEmpty(env.BOTO_CONFIG) ?? join(home, '.boto')
  let credentials: BucketCredentials | undefined
  let credentialSource = 'GS_ACCESS_KEY_ID'
  const envKey = nonEmpty(env.GS_ACCESS_KEY_ID)
  if (envKey !== undefined) {
    credentials = withSecret(envKey, nonEmpty(env.GS_SECRET_ACCESS_KEY), undefined, 'GS_SECRET_ACCESS_KEY')
  } else {
    const section = (await readIniFile(botoFile)).get('Credentials')
    const key = nonEmpty(section?.get('gs_access_key_id'))
    if (key !== undefined) {
      credentials = withSecret(key, nonEmpty(section?.get('gs_secret_access_key')), undefined, `gs_secret_access_key in ${botoFile}`)
      credentialSource = botoFile
    }
  }
  if (credentials === undefined) {
    throw new BucketError('BUCKET_CREDENTIALS_MISSING', `no Cloud Storage HMAC key: set GS_ACCESS_KEY_ID and GS_SECRET_ACCESS_KEY, or gs_access_key_id in the [Credentials] section of ${botoFile} (create one with \`gcloud storage hmac create\`)`)
  }
  // Google's XML API takes SigV4 with region "auto"; path-style works for every bucket name.
  return { endpoint: parseEndpoint(nonEmpty(env.SHOAL_GS_ENDPOINT_URL) ?? GCS_XML_ENDPOINT), region: 'auto', pathStyle: true, credentials, credentialSource }
}

function withSecret (accessKeyId: string, secretAccessKey: string | undefined, sessionToken: string | undefined, secretName: string): BucketCredentials {
  if (secretAccessKey === undefined) throw new BucketError('BUCKET_CREDENTIALS_MISSING', `an access key ID is set but not its secret; set ${secretName}`)
  return sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken }
}

function parseEndpoint (spec: string): URL {
  let url: URL
  try {
    url = new URL(spec)
  } catch {
    throw new BucketError('STORE_URL_INVALID', `endpoint ${JSON.stringify(spec)} is not a URL; write it as http(s)://HOST[:PORT]`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BucketError('STORE_URL_INVALID', `endpoint ${spec} is neither http nor https`)
  return url
}
