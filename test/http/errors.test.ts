import { describe, expect, it } from 'vitest'
import { REGISTRY_ERRORS, RegistryError, type RegistryErrorCode } from '../../src/http/index.js'
import { expectSpecErrorBody } from './helpers.js'

const codes = Object.keys(REGISTRY_ERRORS) as RegistryErrorCode[]

// distribution-spec "Error Codes" (code-1 … code-14): every one of them is in the catalogue.
const SPEC_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
]

describe('the error catalogue', () => {
  it('holds every code of the distribution spec, marked as coming from it', () => {
    for (const code of SPEC_CODES) expect(REGISTRY_ERRORS[code as RegistryErrorCode]?.source).toBe('oci')
    expect(codes.filter(c => REGISTRY_ERRORS[c].source === 'oci').sort()).toEqual([...SPEC_CODES].sort())
  })

  it('gives every code an error status and a message', () => {
    for (const code of codes) {
      const { status, message } = REGISTRY_ERRORS[code]
      expect(status, code).toBeGreaterThanOrEqual(400)
      expect(status, code).toBeLessThan(600)
      expect(message.length, code).toBeGreaterThan(0)
      expect(code).toMatch(/^[A-Z_]+$/)
    }
  })

  it('uses the statuses the spec and the field expect for the codes clients branch on', () => {
    expect(REGISTRY_ERRORS.BLOB_UNKNOWN.status).toBe(404)
    expect(REGISTRY_ERRORS.MANIFEST_UNKNOWN.status).toBe(404)
    expect(REGISTRY_ERRORS.NAME_UNKNOWN.status).toBe(404)
    expect(REGISTRY_ERRORS.BLOB_UPLOAD_UNKNOWN.status).toBe(404)
    expect(REGISTRY_ERRORS.RANGE_INVALID.status).toBe(416)
    expect(REGISTRY_ERRORS.UNAUTHORIZED.status).toBe(401)
    expect(REGISTRY_ERRORS.DENIED.status).toBe(403)
    expect(REGISTRY_ERRORS.TOOMANYREQUESTS.status).toBe(429)
    expect(REGISTRY_ERRORS.MANIFEST_BLOB_UNKNOWN.status).toBe(400)
  })

  it('builds, for every code, an error whose status is the catalogue\'s and whose body is the spec\'s', () => {
    for (const code of codes) {
      const plain = new RegistryError(code)
      expect(plain.status).toBe(REGISTRY_ERRORS[code].status)
      expect(plain.message).toBe(REGISTRY_ERRORS[code].message)
      expect(plain.toBody()).toEqual({ errors: [{ code, message: REGISTRY_ERRORS[code].message }] })
      const detailed = new RegistryError(code, 'why', { detail: { digest: 'sha256:x' } })
      const body: unknown = JSON.parse(JSON.stringify(detailed.toBody()))
      expectSpecErrorBody(body)
      expect(body).toEqual({ errors: [{ code, message: 'why', detail: { digest: 'sha256:x' } }] })
    }
  })
})
