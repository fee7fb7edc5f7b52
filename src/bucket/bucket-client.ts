import { createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { setTimeout as delay } from 'node:timers/promises'
import { AwsV4Signer } from 'aws4fetch'
import type { BucketConfig } from './bucket-config.js'
import { LIST_PAGE_KEYS, MAX_SOCKETS, MAX_XML_RESPONSE_BYTES, REQUEST_ATTEMPTS, REQUEST_IDLE_TIMEOUT_MS, RETRY_BASE_MS, RETRY_MAX_MS } from './constants.js'
import { BucketError } from './errors.js'
import { bucketErrorOf, isRetryable } from './http-errors.js'
import type { BucketScheme } from './store-url.js'
import { escapeXml, xmlBlocks, xmlValue } from './xml.js'

export interface BucketClientInit {
  /** Attempts per request (first try included) before an error is reported. */
  attempts?: number
  retryBaseMs?: number
  retryMaxMs?: number
  idleTimeoutMs?: number
  maxSockets?: number
}

export interface ObjectHead { size: number, etag: string, lastModified: Date }
export interface ListedObject { key: string, size: number, lastModified: Date }
export interface CompletedPart { partNumber: number, etag: string }

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE'
  key?: string
  query?: Record<string, string>
  headers?: Record<string, string>
  body?: Buffer
  /** Statuses handed to the caller rather than turned into errors. */
  accept?: number[]
  /** For messages: what was being done. */
  what: string
  signal?: AbortSignal
}

/**
 * The S3 protocol over node:http: SigV4 (aws4fetch's signer, nothing else of it), keep-alive
 * sockets, retries with jittered exponential backoff on throttling, 5xx and broken
 * connections, and errors that name the bucket and key. Bodies sent are whole buffers (parts,
 * at most a part size), so a retry re-sends the same bytes; bodies received are streams.
 */
export class BucketClient {
  readonly attempts: number
  private readonly agent: HttpAgent
  private readonly retryBaseMs: number
  private readonly retryMaxMs: number
  private readonly idleTimeoutMs: number
  private readonly signerCache = new Map<string, ArrayBuffer>()

  constructor (readonly scheme: BucketScheme, readonly bucket: string, readonly config: BucketConfig, init: BucketClientInit = {}) {
    this.attempts = init.attempts ?? REQUEST_ATTEMPTS
    this.retryBaseMs = init.retryBaseMs ?? RETRY_BASE_MS
    this.retryMaxMs = init.retryMaxMs ?? RETRY_MAX_MS
    this.idleTimeoutMs = init.idleTimeoutMs ?? REQUEST_IDLE_TIMEOUT_MS
    const agentOptions = { keepAlive: true, maxSockets: init.maxSockets ?? MAX_SOCKETS }
    this.agent = config.endpoint.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions)
  }

  /** `s3://bucket/key`, as messages name it. */
  where (key?: string): string { return `${this.scheme}://${this.bucket}${key !== undefined ? '/' + key : ''}` }

  close (): void { this.agent.destroy() }

  async head (key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectHead | undefined> {
    const response = await this.send({ method: 'HEAD', key, accept: [404], what: 'HEAD', signal: options.signal })
    response.resume()
    if (response.statusCode === 404) return undefined
    return { size: Number(response.headers['content-length']), etag: String(response.headers.etag ?? ''), lastModified: new Date(String(response.headers['last-modified'] ?? 0)) }
  }

  /**
   * Fails early and clearly on a missing bucket or bad credentials: a listing of no keys (which
   * still checks the bucket and the right to list it, without the cost of a page).
   */
  async checkBucket (prefix: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.text({ method: 'GET', query: { 'list-type': '2', 'max-keys': '0', prefix }, what: 'list', signal: options.signal })
  }

  /**
   * Streams an object. A connection that breaks mid-body is resumed with a Range request for
   * the rest (If-Match pins the same version), so a long download survives a flaky endpoint.
   */
  async * read (key: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
    let offset = 0
    let etag: string | undefined
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = {}
      if (offset > 0) headers.Range = `bytes=${offset}-`
      if (etag !== undefined) headers['If-Match'] = etag
      const response = await this.send({ method: 'GET', key, headers, what: 'GET', signal: options.signal })
      etag ??= typeof response.headers.etag === 'string' ? response.headers.etag : undefined
      try {
        for await (const chunk of response) {
          offset += (chunk as Buffer).length
          yield chunk as Buffer
        }
        return
      } catch (err) {
        options.signal?.throwIfAborted()
        if (attempt >= this.attempts) throw new BucketError('BUCKET_ENDPOINT_FAILED', `GET ${this.where(key)} broke at byte ${offset}, ${attempt} attempts (${(err as Error).message}); run again later`, { cause: err })
        await this.backoff(attempt, options.signal)
      } finally {
        response.destroy()
      }
    }
  }

  async put (key: string, body: Buffer, options: { signal?: AbortSignal } = {}): Promise<string> {
    const response = await this.send({ method: 'PUT', key, body, what: 'PUT', signal: options.signal })
    response.resume()
    return String(response.headers.etag ?? '')
  }

  async createMultipart (key: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const xml = await this.text({ method: 'POST', key, query: { uploads: '' }, what: 'start multipart upload of', signal: options.signal })
    const uploadId = xmlValue(xml, 'UploadId')
    if (uploadId === undefined || uploadId === '') throw new BucketError('BUCKET_BAD_RESPONSE', `starting a multipart upload of ${this.where(key)} gave no UploadId`)
    return uploadId
  }

  async uploadPart (key: string, uploadId: string, partNumber: number, body: Buffer, options: { signal?: AbortSignal } = {}): Promise<string> {
    const response = await this.send({ method: 'PUT', key, query: { partNumber: String(partNumber), uploadId }, body, what: `upload part ${partNumber} of`, signal: options.signal })
    response.resume()
    const etag = response.headers.etag
    if (typeof etag !== 'string' || etag === '') throw new BucketError('BUCKET_BAD_RESPONSE', `part ${partNumber} of ${this.where(key)} was taken without an ETag`)
    return etag
  }

  async completeMultipart (key: string, uploadId: string, parts: CompletedPart[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const body = Buffer.from('<CompleteMultipartUpload>' +
      parts.map(p => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`).join('') +
      '</CompleteMultipartUpload>')
    const xml = await this.text({ method: 'POST', key, query: { uploadId }, body, what: 'complete multipart upload of', signal: options.signal })
    // S3 can answer 200 and put the failure in the body (CompleteMultipartUpload's documented quirk).
    const code = xml.includes('<Error>') ? xmlValue(xml, 'Code') : undefined
    if (code !== undefined) throw this.errorOf({ method: 'POST', key, what: 'complete multipart upload of' }, 200, code, xmlValue(xml, 'Message'), 1)
  }

  async abortMultipart (key: string, uploadId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const response = await this.send({ method: 'DELETE', key, query: { uploadId }, accept: [404], what: 'abort multipart upload of', signal: options.signal })
    response.resume()
  }

  /** Every key under `prefix`, a page at a time (ListObjectsV2). */
  async * list (prefix: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<ListedObject> {
    let token: string | undefined
    do {
      const query: Record<string, string> = { 'list-type': '2', 'max-keys': String(LIST_PAGE_KEYS), prefix }
      if (token !== undefined) query['continuation-token'] = token
      const xml = await this.text({ method: 'GET', query, what: 'list', signal: options.signal })
      for (const block of xmlBlocks(xml, 'Contents')) {
        const key = xmlValue(block, 'Key')
        if (key === undefined) continue
        yield { key, size: Number(xmlValue(block, 'Size') ?? 0), lastModified: new Date(xmlValue(block, 'LastModified') ?? 0) }
      }
      token = xmlValue(xml, 'IsTruncated') === 'true' ? xmlValue(xml, 'NextContinuationToken') : undefined
    } while (token !== undefined)
  }

  private async text (spec: RequestSpec): Promise<string> {
    const response = await this.send(spec)
    return await readLimited(response, MAX_XML_RESPONSE_BYTES)
  }

  /** Sends with retries; resolves with a response whose status is 2xx or in `accept`. */
  private async send (spec: RequestSpec): Promise<IncomingMessage> {
    for (let attempt = 1; ; attempt++) {
      spec.signal?.throwIfAborted()
      let response: IncomingMessage
      try {
        response = await this.once(spec)
      } catch (err) {
        spec.signal?.throwIfAborted()
        if (attempt >= this.attempts) {
          throw new BucketError('BUCKET_ENDPOINT_FAILED', `${spec.what} ${this.where(spec.key)}: ${this.config.endpoint.origin} unreachable after ${attempt} attempts (${(err as Error).message}); check the endpoint, or run again later`, { cause: err })
        }
        await this.backoff(attempt, spec.signal)
        continue
      }
      const status = response.statusCode ?? 0
      if ((status >= 200 && status < 300) || spec.accept?.includes(status) === true) return response
      const body = spec.method === 'HEAD' ? '' : await readLimited(response, MAX_XML_RESPONSE_BYTES).catch(() => '')
      response.destroy()
      const code = xmlValue(body, 'Code') ?? headerString(response, 'x-amz-error-code')
      if (isRetryable(status, code) && attempt < this.attempts) {
        await this.backoff(attempt, spec.signal)
        continue
      }
      throw this.errorOf(spec, status, code, xmlValue(body, 'Message'), attempt)
    }
  }

  private errorOf (spec: Pick<RequestSpec, 'method' | 'key' | 'what'>, status: number, code: string | undefined, message: string | undefined, attempts: number): BucketError {
    return bucketErrorOf({ where: this.where(spec.key), bucket: this.bucket, endpoint: this.config.endpoint.origin, what: spec.what, credentialSource: this.config.credentialSource, status, code, message, attempts })
  }

  private async backoff (attempt: number, signal?: AbortSignal): Promise<void> {
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (attempt - 1))
    await delay(Math.random() * ceiling, undefined, { signal })
  }

  private async once (spec: RequestSpec): Promise<IncomingMessage> {
    const url = this.urlOf(spec.key, spec.query)
    const headers: Record<string, string> = { ...spec.headers }
    // The payload's digest is signed, so the service checks the body arrived as sent.
    headers['X-Amz-Content-Sha256'] = createHash('sha256').update(spec.body ?? Buffer.alloc(0)).digest('hex')
    const signed = await new AwsV4Signer({
      method: spec.method,
      url: url.toString(),
      headers,
      accessKeyId: this.config.credentials.accessKeyId,
      secretAccessKey: this.config.credentials.secretAccessKey,
      sessionToken: this.config.credentials.sessionToken,
      service: 's3',
      region: this.config.region,
      cache: this.signerCache,
    }).sign()
    const outgoing: OutgoingHttpHeaders = Object.fromEntries(signed.headers.entries())
    outgoing['content-length'] = spec.body?.length ?? 0
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return await new Promise<IncomingMessage>((resolve, reject) => {
      const request = send(url, { method: spec.method, headers: outgoing, agent: this.agent, signal: spec.signal }, resolve)
      request.setTimeout(this.idleTimeoutMs, () => { request.destroy(new Error(`no answer in ${this.idleTimeoutMs} ms`)) })
      request.on('error', reject)
      request.end(spec.body)
    })
  }

  private urlOf (key: string | undefined, query: Record<string, string> | undefined): URL {
    const base = this.config.endpoint
    const path = key === undefined ? '' : '/' + key.split('/').map(encodeURIComponent).join('/')
    const url = this.config.pathStyle
      ? new URL(`${base.protocol}//${base.host}${base.pathname.replace(/\/$/, '')}/${encodeURIComponent(this.bucket)}${path}`)
      : new URL(`${base.protocol}//${this.bucket}.${base.host}${base.pathname.replace(/\/$/, '')}${path === '' ? '/' : path}`)
    for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value)
    return url
  }
}

function headerString (response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name]
  return typeof value === 'string' ? value : undefined
}

async function readLimited (response: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response) {
    size += (chunk as Buffer).length
    if (size > limit) {
      response.destroy()
      throw new BucketError('BUCKET_BAD_RESPONSE', `an answer of over ${limit} bytes where S3 sends a small XML document`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
