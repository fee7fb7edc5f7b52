#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=33554432 node --max-semi-space-size=1 --heap-growing-percent=100
// The flag: V8's young generation may otherwise grow to 2 x 16 MiB while chunks stream
// through, ~30 MB of a receiving edge's peak RSS; at 1 MiB the same transfer peaked ~30 MB
// lower for the same CPU per byte (scripts/bench-transfer.ts, docs/architecture.md "RSS").
// --heap-growing-percent: with 1 MiB semi-spaces whatever lives half a second is promoted, and
// V8 let the old generation grow only ~10% past its live ~18.5 MB before the next full
// mark-compact: an edge on the 8-host fleet bed ran one every ~1.3 s (19-21 a pull, each
// freeing ~1 MB). With room to grow 100% it runs 8-9; the edges' CPU fell 6-12% per byte
// moved in four A/B runs, peak RSS 1-8% higher (docs/architecture.md, "The fleet bed").
// The variable: glibc's malloc raises its mmap threshold each time a large block is freed, so
// after start-up's first big temporary buffers every block up to 32 MiB (receive buffers, file
// reads) came from the heap and its free holes stayed resident. Setting any of its thresholds
// freezes them all (glibc's no_dyn_threshold): the mmap threshold stays at its 128 KiB start,
// so large blocks go back when freed (edge idle 82 -> 74 MB, as MALLOC_MMAP_THRESHOLD_=131072
// did before), and a 32 MiB trim threshold stops malloc giving the heap's top back whenever
// 128 KiB are free there, which made the next buffers fault the same pages in again: 10-21%
// less daemon CPU on the containerd-through-a-neighbour path, idle RSS ~9 MB higher, peak under
// 120 MB (docs/architecture.md, "A data lane beside libp2p"). The whole line must stay within
// 127 characters: kernels before 5.1 cut a #! line there.
// `env -S` splits the line (GNU coreutils 8.30+; busybox's env cannot: there run
// `MALLOC_TRIM_THRESHOLD_=33554432 node --max-semi-space-size=1 --heap-growing-percent=100 bin/shoal.js`).
// `node bin/shoal.js` runs without them.
// Runs the built daemon and CLI in dist/ (`npm run build`, which `npm ci` runs as its
// `prepare` step: src/ type-checked, then bundled). It starts ~0.5 s sooner and holds ~85 MB
// less than the TypeScript sources through tsx; SHOAL_FROM_SOURCE=1 runs src/ through tsx.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

if (process.env.SHOAL_FROM_SOURCE === '1') {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/polyfill.ts')
  const { main } = await import('../src/cli/index.ts')
  process.exitCode = await main(process.argv.slice(2))
} else {
  const stamp = `${root}dist/.built`
  if (!existsSync(stamp)) {
    process.stderr.write('shoal: not built (no dist/): run `npm run build` in ' + root + '\n')
    process.exit(1)
  }
  warnIfStale(stamp)
  await import('../dist/polyfill.js')
  const { main } = await import('../dist/index.js')
  process.exitCode = await main(process.argv.slice(2))
}

/**
 * In a clone, an edited source newer than the last build means dist/ does not run what the
 * sources say: say so rather than run old code silently. (An install without src/ skips this;
 * the test suite builds before it starts, so tests never meet a stale dist/.) Stat-ing the
 * ~200 sources costs a few milliseconds.
 */
function warnIfStale (stamp) {
  const src = `${root}src`
  if (!existsSync(src)) return
  const built = statSync(stamp).mtimeMs
  for (const name of readdirSync(src, { recursive: true })) {
    if (statSync(`${src}/${name}`).mtimeMs > built) {
      process.stderr.write(`shoal: warning: src/${name} changed after the last build; run \`npm run build\` (dist/ runs the old code)\n`)
      return
    }
  }
}
