import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Hashes computed without shoal's code: node's own sha256, the b3sum program, and a shell script.
const execFileAsync = promisify(execFile)
const B3SUM_MANIFEST = fileURLToPath(new URL('./b3sum-manifest.sh', import.meta.url))

export async function sha256OfFile (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer)
  return hash.digest('hex')
}

/** BLAKE3 by the `b3sum` program. */
export async function b3sumOfFile (path: string): Promise<string> {
  const { stdout } = await execFileAsync('b3sum', ['--no-names', path])
  return stdout.trim()
}

/** BLAKE3 by the `b3sum` program of some bytes fed on stdin. */
export async function b3sumOfBytes (bytes: string | Buffer): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = execFile('b3sum', ['--no-names'], (err, stdout) => { if (err) reject(err); else resolve(stdout.trim()) })
    child.stdin?.end(bytes)
  })
}

/** The snapdir manifest by coreutils and b3sum (test/helpers/b3sum-manifest.sh). */
export async function b3sumManifest (dir: string): Promise<string> {
  const { stdout } = await execFileAsync('bash', [B3SUM_MANIFEST, dir], { maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

/** Runs skopeo with umask 022: the modes of the layouts it writes follow the umask, and modes are part of a bundle. */
export async function skopeo (args: string[]): Promise<string> {
  const quoted = args.map(arg => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const { stdout } = await execFileAsync('sh', ['-c', `umask 022 && exec skopeo ${quoted}`], { maxBuffer: 64 * 1024 * 1024 })
  return stdout
}
