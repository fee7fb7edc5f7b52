import { lstat, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Total bytes under a path (following nothing), for a progress bar's ETA. */
export async function treeSize (path: string): Promise<number> {
  const info = await stat(path)
  if (!info.isDirectory()) return info.size
  let total = 0
  for (const name of await readdir(path)) {
    const child = join(path, name)
    const childInfo = await lstat(child)
    total += childInfo.isDirectory() ? await treeSize(child) : childInfo.isFile() ? childInfo.size : 0
  }
  return total
}
