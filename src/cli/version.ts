import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The version in shoal's package.json, found by walking up from this file: the sources sit
 * two levels below it, the bundled build one, and an install anywhere.
 */
export function packageVersion (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'shoal' && pkg.version !== undefined) return pkg.version
    } catch {}
    dir = dirname(dir)
  }
  return 'unknown'
}
