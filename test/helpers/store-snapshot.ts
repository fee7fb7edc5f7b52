import { readdir, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { shoal } from './shoal-cli.js'

/** Every regular file under `root` as a sorted relative path; [] when root does not exist. */
export async function listFiles (root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const name of names) {
      const path = join(dir, name)
      if ((await stat(path)).isDirectory()) await walk(path)
      else out.push(relative(root, path))
    }
  }
  await walk(root)
  return out.sort()
}

/** Sum of the sizes of the files under `root` (what `du -b` of the files says). */
export async function bytesUnder (root: string): Promise<number> {
  let total = 0
  for (const path of await listFiles(root)) total += (await stat(join(root, path))).size
  return total
}

/** What a person would check to say "the store did not change": its objects, partials, staging, `verify` and `ls`. */
export interface StoreSnapshot {
  objects: string[]
  partial: string[]
  tmp: string[]
  verifyCode: number | null
  ls: unknown
}

/** Taken through the CLI (`shoal verify`, `shoal ls --json`) plus the files on disk. */
export async function storeSnapshot (dataDir: string): Promise<StoreSnapshot> {
  const verify = await shoal(dataDir, ['verify'])
  const ls = await shoal(dataDir, ['--json', 'ls'])
  if (ls.code !== 0) throw new Error(`shoal ls failed: ${ls.stderr}`)
  return {
    objects: await listFiles(join(dataDir, 'objects')),
    partial: await listFiles(join(dataDir, 'partial')),
    // Opening the store (verify, ls) wipes tmp/, so anything here was left by the last command.
    tmp: await listFiles(join(dataDir, 'tmp')),
    verifyCode: verify.code,
    ls: JSON.parse(ls.stdout) as unknown,
  }
}
