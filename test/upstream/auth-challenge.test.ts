import { describe, expect, it } from 'vitest'
import { parseChallenge } from '../../src/upstream/index.js'

describe('WWW-Authenticate challenges', () => {
  it('reads Docker Hub\'s Bearer challenge, with a comma inside the quoted scope', () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"'
    expect(parseChallenge(header)).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull,push' },
    })
  })

  it('reads a Basic challenge, unquoted values, escapes, and spaces around commas', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } })
    expect(parseChallenge('Bearer realm=https://t.example/token , service=reg,scope="a\\"b"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://t.example/token', service: 'reg', scope: 'a"b' },
    })
  })

  it('gives nothing for a missing or malformed header', () => {
    expect(parseChallenge(null)).toBeUndefined()
    expect(parseChallenge('')).toBeUndefined()
    expect(parseChallenge('"quoted"')).toBeUndefined()
  })
})
