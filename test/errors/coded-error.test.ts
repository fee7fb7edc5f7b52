import { describe, expect, it } from 'vitest'
import { BucketError } from '../../src/bucket/index.js'
import { CodedError, describeError } from '../../src/errors/index.js'
import { BundleNotFoundError, StoreError } from '../../src/store/index.js'
import { ProtocolViolationError, SwarmError } from '../../src/swarm/index.js'
import { UpstreamError, UpstreamNotFoundError } from '../../src/upstream/index.js'

describe('CodedError, the base of the modules\' typed errors', () => {
  it('keeps a failure\'s own name, code, message and cause under its module\'s base', () => {
    const cause = new Error('bad varint')
    const err = new ProtocolViolationError('a frame does not decode', { cause })
    expect(err).toBeInstanceOf(SwarmError)
    expect(err).toBeInstanceOf(CodedError)
    expect(err).not.toBeInstanceOf(StoreError)
    expect(err.name).toBe('ProtocolViolationError')
    expect(err.code).toBe('SWARM_PROTOCOL_VIOLATION')
    expect(err.message).toBe('peer broke the protocol: a frame does not decode')
    expect(err.cause).toBe(cause)
    expect(String(err)).toBe('ProtocolViolationError: peer broke the protocol: a frame does not decode')
  })

  it('names a module\'s base when it is thrown as it is', () => {
    const err = new StoreError('OBJECT_MISSING', 'object abc is not in the store')
    expect(err.name).toBe('StoreError')
    expect(err.code).toBe('OBJECT_MISSING')
    expect(new UpstreamError('UPSTREAM_UNAVAILABLE', 'down').name).toBe('UpstreamError')
  })

  it('keeps what a module\'s base adds (a bucket answer\'s status)', () => {
    const err = new BucketError('BUCKET_THROTTLED', 'slow down', { status: 503 })
    expect(err).toBeInstanceOf(CodedError)
    expect(err.name).toBe('BucketError')
    expect(err.code).toBe('BUCKET_THROTTLED')
    expect(err.status).toBe(503)
  })

  it('turns into the catalogue\'s status and exit code at the edges', () => {
    expect(describeError(new BundleNotFoundError('app:1.0'))).toMatchObject({ code: 'BUNDLE_NOT_FOUND', status: 404, exit: 3 })
    expect(describeError(new UpstreamNotFoundError('manifest app:1.0'))).toMatchObject({ code: 'UPSTREAM_NOT_FOUND', status: 404 })
  })

  it('takes only the catalogue\'s codes (checked by the compiler)', () => {
    // @ts-expect-error: not a code of the catalogue
    const err = new StoreError('NO_SUCH_CODE', 'x')
    expect(err.code).toBe('NO_SUCH_CODE')
  })
})
