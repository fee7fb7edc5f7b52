import { createHash, createHmac } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/**
 * Checks an AWS Signature Version 4 request as S3 does, written from the specification
 * ("Authenticating Requests: Using the Authorization Header", "Create a canonical request"),
 * apart from the signer under test. s3rver accepts any V4 signature, so without this a wrong
 * secret or a mis-signed path would go unnoticed. Returns an S3 error code, or undefined.
 */
export function sigV4Error (method: string, rawUrl: string, headers: IncomingHttpHeaders, body: Buffer, secrets: Record<string, string>): string | undefined {
  const auth = headers.authorization
  if (auth === undefined) return 'AccessDenied'
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth)
  if (match === null) return 'AuthorizationHeaderMalformed'
  const [, keyId, date, region, service, signedHeaders, signature] = match as unknown as string[]
  const secret = secrets[keyId!]
  if (secret === undefined) return 'InvalidAccessKeyId'
  const payloadHash = String(headers['x-amz-content-sha256'] ?? '')
  if (/^[0-9a-f]{64}$/.test(payloadHash) && createHash('sha256').update(body).digest('hex') !== payloadHash) return 'XAmzContentSHA256Mismatch'
  const url = new URL(rawUrl, 'http://host')
  const canonicalUri = url.pathname.split('/').map(segment => rfc3986(decodeURIComponent(segment))).join('/')
  const canonicalQuery = rawUrl.includes('?')
    ? rawUrl.slice(rawUrl.indexOf('?') + 1).split('&').filter(p => p !== '').map(pair => {
      const eq = pair.indexOf('=')
      const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)]
      return [rfc3986(decodeURIComponent(k.replace(/\+/g, ' '))), rfc3986(decodeURIComponent(v.replace(/\+/g, ' ')))] as const
    }).sort(([k1, v1], [k2, v2]) => k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0).map(([k, v]) => `${k}=${v}`).join('&')
    : ''
  const names = signedHeaders!.split(';')
  const canonicalHeaders = names.map(name => `${name}:${String(headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('')
  const canonicalRequest = [method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n')
  const amzDate = String(headers['x-amz-date'] ?? '')
  const scope = `${date!}/${region!}/${service!}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n')
  let key: Buffer = createHmac('sha256', 'AWS4' + secret).update(date!).digest()
  for (const part of [region!, service!, 'aws4_request']) key = createHmac('sha256', key).update(part).digest()
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature ? undefined : 'SignatureDoesNotMatch'
}

function rfc3986 (text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}
