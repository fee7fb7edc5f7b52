import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ObjectReaders } from '../../src/store/object-readers.js'
import { openFilesUnder } from '../helpers/open-files.js'

describe('ObjectReaders: kept read handles of complete objects', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'shoal-readers-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('closes every kept handle on close, even when an open under way at that moment fails', async () => {
    await writeFile(join(dir, 'good'), 'object bytes')
    await writeFile(join(dir, 'plain-file'), 'not a directory')
    // "broken" opens a path through a regular file: ENOTDIR, an error that is not "absent".
    const readers = new ObjectReaders(hash => hash === 'broken' ? join(dir, 'plain-file', 'x') : join(dir, hash))
    expect(Buffer.from(await readers.read('good', 0, 6) ?? []).toString()).toBe('object')
    expect(await openFilesUnder([dir])).toHaveLength(1)
    const broken = readers.read('broken', 0, 1)
    const outcome = broken.then(() => 'read', (err: NodeJS.ErrnoException) => err.code)
    await readers.close()
    expect(await outcome).toBe('ENOTDIR')
    expect(await openFilesUnder([dir])).toEqual([])
  })
})
