import { readdir, readlink } from 'node:fs/promises'
import { sep } from 'node:path'

/**
 * The files this process holds open under any of `dirs` (Linux: /proc/self/fd), as their
 * paths; a file removed or renamed since still counts, as "(deleted)" or under its new name.
 * A FileHandle dropped without close() shows here until garbage collection closes it (with
 * Node's "Closing file descriptor N on garbage collection" warning): a leak in a daemon.
 */
export async function openFilesUnder (dirs: string[]): Promise<string[]> {
  const open: string[] = []
  for (const fd of await readdir('/proc/self/fd')) {
    let target: string
    try {
      target = await readlink(`/proc/self/fd/${fd}`)
    } catch {
      continue // closed between the listing and the look (readdir's own descriptor among them)
    }
    if (dirs.some(dir => target === dir || target.startsWith(dir + sep))) open.push(target)
  }
  return open
}
