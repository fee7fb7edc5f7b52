// `npm run build` (and `npm ci`'s prepare step): type-checks src/ with tsc, then bundles it
// with esbuild into dist/ (dist/index.js, dist/polyfill.js, shared chunks beside them), which
// bin/shoal.js runs, and stamps the build with the moment it started. bin/shoal.js compares
// that stamp with the sources' times, so a source saved during or after a build reads as newer.
//
// Why a bundle and not tsc's file-per-module output: the daemon loads ~1,900 modules of its
// dependencies; one bundle of them holds ~26 MB less resident memory (idle daemon 80 MB
// against 106 MB) and starts faster. Commands stay lazily loaded (code splitting). Native
// packages (LevelDB, BLAKE3) stay external. Every bundled file sits directly in dist/, one
// level under the package root, as src/*.ts modules sit in src/: so `../package.json` and the
// hashing thread's `./hash-thread.js` resolve the same from the sources and from the build.
//
// Plain JavaScript: it runs where only production dependencies (typescript and esbuild are
// among them for this step) are installed.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = `${root}dist`
const stamp = `${dist}/.built`
const started = new Date()
// A failed build leaves no stamp: bin/shoal.js then refuses to run a dist/ that is not the sources.
rmSync(stamp, { force: true })
const require = createRequire(import.meta.url)
try {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
} catch {
  process.stderr.write('build: tsc found errors (see above); dist/ is not usable until it builds\n')
  process.exit(1)
}

// A fresh dist/ (the type-check's incremental state stays), so no chunk of an older build lingers.
mkdirSync(dist, { recursive: true })
for (const name of readdirSync(dist)) if (name !== '.tsbuildinfo') rmSync(`${dist}/${name}`, { recursive: true, force: true })
const { build } = await import('esbuild')
await build({
  absWorkingDir: root,
  // version.js on its own too, so a packager (or a test) can read the version the build reports.
  entryPoints: ['src/polyfill.ts', 'src/cli/index.ts', 'src/version.ts'],
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // No comments and no indentation: V8 keeps every module's source in memory, as two bytes a
  // character when one comment has a non-ASCII character (the daemon's chunk held 7.2 MB of
  // source that way); without them it is ~2.7 MB of one-byte text, ~6 MB less RSS. Names stay,
  // so stack traces still name functions; `node --enable-source-maps` maps lines back to src/.
  minifyWhitespace: true,
  // Native bindings load their own .node files; they stay in node_modules.
  external: ['classic-level', 'level', '@napi-rs/blake-hash'],
  // Bundled CommonJS dependencies call require() for node's own modules.
  banner: { js: "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);" },
  logLevel: 'warning',
})
// The push's hashing thread is loaded by path (new URL('./hash-thread.js', import.meta.url)).
copyFileSync(`${root}src/store/hash-thread.js`, `${dist}/hash-thread.js`)
writeFileSync(stamp, `${started.toISOString()}\n`)
utimesSync(stamp, started, started)
