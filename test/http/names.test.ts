import { describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/http/index.js'
import { imageRefOf, parseDigest, parseReference, parseRepositoryName } from '../../src/http/names.js'

function codeOf (run: () => unknown): string {
  try {
    run()
  } catch (err) {
    if (err instanceof RegistryError) return err.code
    throw err
  }
  return 'accepted'
}

describe('repository names', () => {
  it('takes the registry host from ?ns= in containerd\'s mirror form', () => {
    const name = parseRepositoryName('team/app', 'registry.example.com', 'localhost')
    expect(name).toEqual({ path: 'team/app', host: 'registry.example.com', repository: 'team/app', namespace: 'registry.example.com' })
    expect(imageRefOf(name, '1.0')).toBe('registry.example.com/team/app:1.0')
  })

  it('takes the host from the first component when it looks like one', () => {
    expect(parseRepositoryName('registry.example.com/team/app', null, 'localhost').host).toBe('registry.example.com')
    expect(parseRepositoryName('localhost:5000/app', null, 'x.example').host).toBe('localhost:5000')
    expect(parseRepositoryName('localhost/app', null, 'x.example').host).toBe('localhost')
  })

  it('files a name without a host under the default registry', () => {
    expect(parseRepositoryName('team/app', null, 'localhost')).toMatchObject({ host: 'localhost', repository: 'team/app' })
    expect(parseRepositoryName('app', null, 'gateway.local')).toMatchObject({ host: 'gateway.local', repository: 'app' })
  })

  it.each([
    ['Team/app', null], ['team//app', null], ['-team/app', null], ['team/app-', null], ['team/app:1', null],
    ['registry.example.com/', null], ['a'.repeat(256), null], ['team/app', 'evil.example/x'], ['team/app', 'UPPER.example'],
  ])('refuses %j (ns %j) with NAME_INVALID', (path, ns) => {
    expect(codeOf(() => parseRepositoryName(path, ns, 'localhost'))).toBe('NAME_INVALID')
  })
})

describe('digests and references', () => {
  const hex = 'a'.repeat(64)

  it('accepts sha256 with 64 lowercase hex digits', () => {
    expect(parseDigest(`sha256:${hex}`)).toEqual({ digest: `sha256:${hex}`, hex })
    expect(parseReference(`sha256:${hex}`)).toEqual({ kind: 'digest', digest: { digest: `sha256:${hex}`, hex } })
    expect(parseReference('1.0-rc_1')).toEqual({ kind: 'tag', tag: '1.0-rc_1' })
  })

  it.each([
    `sha256:${hex.slice(1)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'g'.repeat(64)}`, 'sha256:', `sha512:${'a'.repeat(128)}`,
    `SHA256:${hex}`, `md5:${'a'.repeat(32)}`, hex, '',
  ])('refuses %j with DIGEST_INVALID', (digest) => {
    expect(codeOf(() => parseDigest(digest))).toBe('DIGEST_INVALID')
  })

  it('refuses tags outside the grammar with TAG_INVALID', () => {
    expect(codeOf(() => parseReference('.hidden'))).toBe('TAG_INVALID')
    expect(codeOf(() => parseReference('a'.repeat(129)))).toBe('TAG_INVALID')
    expect(codeOf(() => parseReference('tag with space'))).toBe('TAG_INVALID')
  })
})
