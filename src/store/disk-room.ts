import { statfs } from 'node:fs/promises'
import { NoRoomError } from './errors.js'

/** Refuses `bytes` more on the filesystem of `dir` when it has fewer free (NoRoomError, naming `what`). */
export async function requireRoom (dir: string, bytes: number, what: string): Promise<void> {
  if (bytes <= 0) return
  const disk = await statfs(dir)
  const free = disk.bavail * disk.bsize
  if (bytes > free) throw new NoRoomError(what, bytes, free)
}
