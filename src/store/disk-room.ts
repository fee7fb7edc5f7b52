import { statfs } from 'node:fs/promises'

/**
 * Bytes an unprivileged writer may still put on the filesystem of `dir`; Infinity where the
 * filesystem reports no size at all (ramfs, some FUSE mounts say 0 blocks, 0 free), so that
 * a room check never refuses what such a disk would take.
 */
export async function diskFreeBytes (dir: string): Promise<number> {
  const disk = await statfs(dir)
  if (disk.blocks === 0) return Number.POSITIVE_INFINITY
  return disk.bavail * disk.bsize
}
