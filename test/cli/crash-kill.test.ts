import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { seededRandom } from '../helpers/seeded-random.js'
import { shoal, shoalOk, spawnShoal } from '../helpers/shoal-cli.js'
import { listFiles } from '../helpers/store-snapshot.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024
/** `SHOAL_KILL_SEED=N` repeats a run's kill delays; the seed is printed either way. */
const SEED = Number(process.env.SHOAL_KILL_SEED ?? 20_260_101)
const MIN_ITERATIONS = 20
/**
 * A push spends its first few hundred milliseconds starting node; keep killing until this
 * many kills have landed while the store was being written (staged files, or objects
 * published before the bundle was committed), so the loop cannot pass by only killing
 * processes that had not started.
 */
const MIN_KILLS_DURING_WRITES = 5
const MAX_ITERATIONS = 45
/** Twenty-odd pushes and verifies: about 25 s on an idle two-core machine, more when it is shared. */
const TEST_TIMEOUT_MS = 240_000
/** Big enough that writing the store is a real share of a push's time. */
const BASE_BYTES = 160 * MIB

interface VerifyJson { ok: boolean, bundles: number, bad: unknown[], missing: unknown[] }

describe('kill -9 of shoal push', () => {
  const tempDir = useTempDirs()

  it(`leaves a store that verifies after every kill, and the same push then completes with the unkilled bundle ID (seed ${SEED})`, async () => {
    const images = await generateImages(join(await tempDir(), 'images'), { baseBytes: BASE_BYTES, seed: 15 })
    const layout = images.layouts.app2!

    // One unkilled push, timed: from its start, and from the moment it starts writing the store.
    const started = performance.now()
    const referenceData = join(await tempDir(), 'reference')
    const reference = spawnShoal(referenceData, ['push', layout])
    const writing = await writesBegin(join(referenceData, 'tmp'), reference.done)
    const referenceResult = await reference.done
    expect(referenceResult.code, referenceResult.stderr).toBe(0)
    const referenceId = referenceResult.stdout.trim()
    const pushMs = performance.now() - started
    const writeMs = writing === undefined ? pushMs : performance.now() - writing
    console.log(`kill -9 loop: seed ${SEED}, unkilled push ${pushMs.toFixed(0)} ms (${writeMs.toFixed(0)} ms writing), base layer ${BASE_BYTES / MIB} MiB`)

    const data = join(await tempDir(), 'data')
    const random = seededRandom(SEED)
    const tally = { iterations: 0, finishedFirst: 0, killedBeforeStoreWrites: 0, killedDuringWrites: 0, killedWhileStaging: 0, killedBeforeCommit: 0, killedAfterCommit: 0 }
    for (let i = 0; i < MAX_ITERATIONS && (i < MIN_ITERATIONS || tally.killedDuringWrites < MIN_KILLS_DURING_WRITES); i++) {
      // A quarter of the kills may land anywhere from the start (node starting, the store
      // opening); the rest land while the push writes, which start-up time under load would
      // otherwise crowd out.
      const anywhere = random() < 0.25
      const delayMs = random() * (anywhere ? pushMs : writeMs)
      const what = `iteration ${i}, kill ${delayMs.toFixed(1)} ms after ${anywhere ? 'the start' : 'writes began'} (seed ${SEED})`
      const objectsBefore = await listFiles(join(data, 'objects'))
      const { child, done } = spawnShoal(data, ['push', layout])
      if (!anywhere) await writesBegin(join(data, 'tmp'), done)
      const timer = setTimeout(() => { child.kill('SIGKILL') }, delayMs)
      const result = await done
      clearTimeout(timer)
      tally.iterations++
      if (result.signal !== 'SIGKILL') {
        // It beat the kill: then it must have succeeded.
        expect(result.code, `${what}: ${result.stderr}`).toBe(0)
        expect(result.stdout.trim()).toBe(referenceId)
        tally.finishedFirst++
      }

      // What the kill left, looked at before anything reopens the store (opening wipes tmp/).
      const staged = await listFiles(join(data, 'tmp'))
      const published = (await listFiles(join(data, 'objects'))).length - objectsBefore.length

      const verify = await shoal(data, ['--json', 'verify'])
      expect(verify.code, `${what}: shoal verify said ${verify.stdout}${verify.stderr}`).toBe(0)
      const report = JSON.parse(verify.stdout) as VerifyJson
      expect(report).toMatchObject({ ok: true, bad: [], missing: [] })
      if (report.bundles > 0) {
        // Committed: it is the one bundle this push makes, whole.
        const ls = JSON.parse(await shoalOk(data, ['--json', 'ls'])) as Array<{ id: string, complete: boolean }>
        expect(ls, what).toEqual([expect.objectContaining({ id: referenceId, complete: true })])
        if (result.signal === 'SIGKILL') tally.killedAfterCommit++
        // Start the next iteration from an empty store again, so later kills hit a fresh push.
        await shoalOk(data, ['rm', referenceId])
      } else if (staged.length > 0 || published > 0) {
        tally.killedDuringWrites++
        // Still copying in, or objects renamed into place but the bundle not yet committed
        // (those stay as unreferenced objects: the next push adopts them, gc would remove them).
        if (staged.length > 0) tally.killedWhileStaging++
        else tally.killedBeforeCommit++
      } else {
        tally.killedBeforeStoreWrites++
      }
      // Opening the store for verify cleared whatever the kill left in staging.
      expect(await listFiles(join(data, 'tmp')), what).toEqual([])
    }
    console.log(`kill -9 loop: ${JSON.stringify(tally)}`)
    expect(tally.iterations).toBeGreaterThanOrEqual(MIN_ITERATIONS)
    expect(tally.killedDuringWrites, `only ${tally.killedDuringWrites} kills landed while the store was being written`).toBeGreaterThanOrEqual(MIN_KILLS_DURING_WRITES)

    // Finally the same push, unkilled, on the store that survived all of that.
    expect(await shoalOk(data, ['push', layout])).toBe(referenceId)
    const final = JSON.parse((await shoal(data, ['--json', 'verify'])).stdout) as VerifyJson
    expect(final).toMatchObject({ ok: true, bundles: 1 })
    // Objects published by killed pushes were either adopted by this bundle or are collected now.
    await shoalOk(data, ['gc'])
    expect(await listFiles(join(data, 'objects'))).toEqual(await listFiles(join(referenceData, 'objects')))
    expect(await listFiles(join(data, 'partial'))).toEqual([])
  }, TEST_TIMEOUT_MS)
})

/**
 * The moment a push starts writing: its staging directory appears under tmp/. Polls every few
 * milliseconds (there is no event to wait on across processes); undefined if the push ends first.
 */
async function writesBegin (tmp: string, done: Promise<unknown>): Promise<number | undefined> {
  let finished = false
  void done.finally(() => { finished = true })
  while (!finished) {
    if ((await listFiles(tmp).catch(() => [])).length > 0) return performance.now()
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  return undefined
}
