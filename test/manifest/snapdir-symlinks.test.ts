import { describe, expect, it } from 'vitest'
import {
  bundleObjects, createBundleManifest, directoryChecksum, decodeBundleManifest, encodeBundleManifest, formatManifest, snapdirId, walkTree,
  BundleManifestError, type WalkWarning,
} from '../../src/manifest/index.js'
import { b3sumManifest } from '../helpers/independent-hashes.js'
import { BIG_SIZE, SNAPDIR_SYMLINK_GOLDEN, SNAPDIR_SYMLINK_GOLDEN_ID, symlinkTree } from '../helpers/symlink-tree.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('snapdir\'s symlink rule', () => {
  const tempDir = useTempDirs()

  it('gives the manifest and ID snapdir 0.4.2 gives a tree with internal symlinks', async () => {
    const root = await tempDir()
    await symlinkTree(root)
    const text = formatManifest(await walkTree(root))
    expect(text).toBe(SNAPDIR_SYMLINK_GOLDEN)
    expect(snapdirId(text)).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    // The coreutils + b3sum script follows the same rule independently.
    expect(await b3sumManifest(root)).toBe(SNAPDIR_SYMLINK_GOLDEN)
  })

  it('skips dangling symlinks with a warning naming each, as snapdir skips them', async () => {
    const root = await tempDir()
    await symlinkTree(root)
    const warnings: WalkWarning[] = []
    await walkTree(root, { onWarning: w => { warnings.push(w) } })
    expect(warnings.map(w => [w.code, w.path]).sort()).toEqual([
      ['MANIFEST_DANGLING_SYMLINK', './dangling'],
      // Reached twice: through nested/deep and through the link to it.
      ['MANIFEST_DANGLING_SYMLINK', './link-dir/dangling-too'],
      ['MANIFEST_DANGLING_SYMLINK', './nested/deep/dangling-too'],
    ])
    expect(warnings[0]?.message).toContain('does not exist')
  })

  it('keeps the size of an object that only a link\'s entry would misstate in the bundle manifest', async () => {
    const root = await tempDir()
    await symlinkTree(root)
    const entries = await walkTree(root)
    const bundle = createBundleManifest(entries, new Map([[BIG_HASH, Array.from({ length: 2 }, () => 'a'.repeat(64))]]))
    expect(Object.fromEntries(bundle.objectSizes)).toEqual({ [A_HASH]: 6, [BIG_HASH]: BIG_SIZE })
    expect(bundleObjects(bundle)).toContainEqual({ hash: BIG_HASH, size: BIG_SIZE })
    const encoded = encodeBundleManifest(bundle)
    expect(encoded.toString()).toContain(`sized 2\n${A_HASH} 6\n${BIG_HASH} ${BIG_SIZE}\nmanifest\n`)
    const decoded = decodeBundleManifest(encoded)
    expect(decoded.objectSizes).toEqual(bundle.objectSizes)
    expect(decoded.manifestText).toBe(SNAPDIR_SYMLINK_GOLDEN)
  })

  it('refuses a bundle manifest whose entries disagree on an object\'s size with no size line, or with a needless one', () => {
    const root = 'D 755 ' + ROOT_OF_TWO + ' 11 ./\n'
    const two = `F 644 ${A_HASH} 6 ./a\nF 777 ${A_HASH} 5 ./b\n`
    const bare = Buffer.from(`shoal-bundle 1\nchunk-size 1048576\nchunked 0\nmanifest\n${root}${two}`)
    expect(() => decodeBundleManifest(bare)).toThrow(BundleManifestError)
    expect(() => decodeBundleManifest(bare)).toThrow(/state 6 and 5 bytes/)
    const withLine = Buffer.from(`shoal-bundle 1\nchunk-size 1048576\nchunked 0\nsized 1\n${A_HASH} 6\nmanifest\n${root}${two}`)
    expect(decodeBundleManifest(withLine).objectSizes.get(A_HASH)).toBe(6)
    const needless = Buffer.from(`shoal-bundle 1\nchunk-size 1048576\nchunked 0\nsized 1\n${A_HASH} 6\nmanifest\nD 755 ${ROOT_OF_ONE} 6 ./\nF 644 ${A_HASH} 6 ./a\n`)
    expect(() => decodeBundleManifest(needless)).toThrow(/whose entries all state that size/)
    const empty = Buffer.from(`shoal-bundle 1\nchunk-size 1048576\nchunked 0\nsized 0\nmanifest\nD 755 ${ROOT_OF_ONE} 6 ./\nF 644 ${A_HASH} 6 ./a\n`)
    expect(() => decodeBundleManifest(empty)).toThrow(/canonical/)
  })
})

const A_HASH = '8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99'
const BIG_HASH = 'e489a1b85a7069e21aa81e2e6856d5dd96f36361bc59abc632b0c497ae553bae'
/** A root holding one or two entries with A_HASH (directory checksums de-duplicate). */
const ROOT_OF_ONE = directoryChecksum([A_HASH])
const ROOT_OF_TWO = ROOT_OF_ONE
