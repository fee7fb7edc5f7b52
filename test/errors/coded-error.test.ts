import { describe, expect, it } from 'vitest'
import { BucketError } from '../../src/bucket/index.js'
import { CodedError, describeError } from '../../src/errors/index.js'
import { BundleNotFoundError, StoreError } from '../../src/store/index.js'
import { ProtocolViolationError, SwarmError } from '../../src/swarm/index.js'
import { UpstreamError, UpstreamNotFoundError } from '../../src/upstream/index.js'
import { UsageError } from '../../src/cli/usage-error.js'
import { ConfigError } from '../../src/daemon/index.js'
import { FleetBlobRejectedError } from '../../src/daemon/fleet-blobs.js'
import { AddressError } from '../../src/http/index.js'
import { SourceIncompleteError } from '../../src/http/arriving-object.js'
import { ClientGoneError, RequestTimeoutError } from '../../src/http/errors.js'
import { LabelError, PlatformError, SelectorError } from '../../src/labels/index.js'
import { GrowingFileFailedError } from '../../src/store/index.js'

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

  it('is the base of the single-code errors too, which keep their own name, code and message', () => {
    const cause = new Error('underneath')
    const cases: Array<[CodedError, string, string, string]> = [
      [new LabelError('label a=b=c is not KEY=VALUE', { cause }), 'LabelError', 'LABEL_INVALID', 'label a=b=c is not KEY=VALUE'],
      [new SelectorError('selector x is empty'), 'SelectorError', 'SELECTOR_INVALID', 'selector x is empty'],
      [new PlatformError('platform y has no arch'), 'PlatformError', 'PLATFORM_INVALID', 'platform y has no arch'],
      [new ConfigError('setting quota is invalid', { cause }), 'ConfigError', 'CONFIG_INVALID', 'setting quota is invalid'],
      [new UsageError('--api needs a value'), 'UsageError', 'USAGE', '--api needs a value; see `shoal --help`'],
      [new GrowingFileFailedError('the writer failed', { cause }), 'GrowingFileFailedError', 'GROWING_FILE_FAILED', 'the writer failed'],
      [new FleetBlobRejectedError('hashed to sha256:00', { cause }), 'FleetBlobRejectedError', 'FLEET_BLOB_REJECTED', 'hashed to sha256:00'],
      [new AddressError('tcp:x is no address'), 'AddressError', 'ADDRESS_INVALID', 'tcp:x is no address'],
      [new ClientGoneError(), 'ClientGoneError', 'CLIENT_GONE', 'the client closed the connection'],
      [new RequestTimeoutError('the blob source', 50), 'RequestTimeoutError', 'REQUEST_TIMEOUT', 'the blob source: nothing happened for 50 ms'],
      [new SourceIncompleteError('abc'), 'SourceIncompleteError', 'SOURCE_INCOMPLETE', 'the blob source finished without object abc being complete'],
    ]
    for (const [err, name, code, message] of cases) {
      expect(err).toBeInstanceOf(CodedError)
      expect({ name: err.name, code: err.code, message: err.message }).toEqual({ name, code, message })
      expect(String(err)).toBe(`${name}: ${message}`)
    }
    expect(new LabelError('x', { cause }).cause).toBe(cause)
    expect(describeError(new UsageError('bad'))).toMatchObject({ code: 'USAGE', exit: 2 })
  })
})
