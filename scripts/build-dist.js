// `npm run build` (and `npm ci`'s prepare step): compiles src/ into dist/, which bin/shoal.js
// runs, then stamps the build with the moment it started. bin/shoal.js compares that stamp
// with the sources' times, so a source saved during or after a build reads as newer than it.
// Plain JavaScript: it runs where only production dependencies and typescript are installed.
import { execFileSync } from 'node:child_process'
import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stamp = `${root}dist/.built`
const started = new Date()
// A failed build leaves no stamp: bin/shoal.js then refuses to run a dist/ that is not the sources.
rmSync(stamp, { force: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
} catch {
  process.stderr.write('build: tsc failed (see above); dist/ is not usable until it builds\n')
  process.exit(1)
}
writeFileSync(stamp, `${started.toISOString()}\n`)
utimesSync(stamp, started, started)
