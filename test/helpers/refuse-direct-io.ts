import { constants, readFileSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'

/**
 * Makes this process's writes to files opened with O_DIRECT fail with EINVAL, as a kernel's
 * pwrite does where the filesystem does not take O_DIRECT, once `after` of them went through
 * (or with `code`, to see that other errors stay errors).
 *
 * A test seam, not a real filesystem: none that can be made here takes O_DIRECT at a file's
 * open and then refuses its writes (ramfs and FUSE without direct_io refuse at open, which
 * test/store/direct-io.test.ts does for real; ext4 and tmpfs since Linux 6.6 take it
 * throughout; a disk with logical blocks over 4 KiB refuses the store's probe already). So
 * FileHandle's write (or read) is wrapped, for the files whose descriptor has O_DIRECT in
 * /proc/self/fdinfo, the flag the kernel would look at.
 * Reads and writes through the page cache, and every other process, are untouched. `restore()` puts
 * FileHandle back; call it in `finally`.
 */
export async function refuseDirectWrites (after: number, code: 'EINVAL' | 'ENOSPC' = 'EINVAL'): Promise<{ refused: () => number, restore: () => void }> {
  return await refuseDirect('write', after, code)
}

/** The same for reads of files opened with O_DIRECT (FileHandle's read), once `after` of them went through. */
export async function refuseDirectReads (after: number, code: 'EINVAL' | 'EOPNOTSUPP' = 'EINVAL'): Promise<{ refused: () => number, restore: () => void }> {
  return await refuseDirect('read', after, code)
}

async function refuseDirect (op: 'read' | 'write', after: number, code: string): Promise<{ refused: () => number, restore: () => void }> {
  const probe = await open('/dev/null')
  const prototype = Object.getPrototypeOf(probe) as Record<'read' | 'write', (this: FileHandle, ...args: unknown[]) => Promise<unknown>>
  await probe.close()
  const original = prototype[op]
  let allowed = after
  let refused = 0
  prototype[op] = function (this: FileHandle, ...args: unknown[]) {
    if (openedDirect(this.fd)) {
      if (allowed === 0) {
        refused++
        return Promise.reject(Object.assign(new Error(`${code}: refused by the test, ${op}`), { code, syscall: op }))
      }
      allowed--
    }
    return original.apply(this, args)
  }
  return {
    refused: () => refused,
    restore: () => { prototype[op] = original },
  }
}

function openedDirect (fd: number): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]
  return (parseInt(flags ?? '0', 8) & constants.O_DIRECT) !== 0
}
