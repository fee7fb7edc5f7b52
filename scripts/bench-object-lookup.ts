// What does "which bundle names this object" cost with many bundles held?
//
//   node --expose-gc --import tsx scripts/bench-object-lookup.ts [--bundles 200] [--questions 200] [--rounds 5]
//
// Commits --bundles image-like bundle manifests into a fresh store (no object bytes: only the
// question is timed): each names two small files and six 20 MiB layers (chunk tables of 20
// hashes), the first layer one of five shared base layers. Then asks, --rounds times, in turn
// (so noise falls on both alike), --questions questions of each kind, both ways:
//   scan   what bundleHolding and smallestBundleWith did before (2026-12-07): every bundle ID,
//          loadBundle each (32 decoded manifests cached), until one names the object
//   index  Store.bundlesNaming (an index built on the first question), then loadBundle of the
//          answer (what bundleHolding did for the blob's size until 2026-12-07's `loose` lane)
//   named  Store.objectNamed: the same index, which keeps each object's size too, nothing loaded
// Kinds: an object of a random bundle; an object no bundle names (a registry 404, a fleet
// peer's "no bundle here names it": the scan reads every manifest); a shared base layer,
// every bundle naming it (smallestBundleWith's case: scan and index load and sum each one;
// totals is Store.smallestBundleNaming, the index's kept bundle totals, nothing loaded).
// Prints the median microseconds per question of each kind and way, the index's first build,
// and the heap it holds (after a full gc: --expose-gc). Say the machine's load (`uptime`) with every figure.
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { bundleIdOf, CHUNK_SIZE_BYTES, createBundleManifest, directoryChecksum, encodeBundleManifest, type ManifestEntry } from '../src/manifest/index.js'
import { openStore, type Store } from '../src/store/index.js'
import { median } from './timed-run.js'

const { values } = parseArgs({ options: { bundles: { type: 'string', default: '200' }, questions: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } } })
const BUNDLES = Number(values.bundles)
const QUESTIONS = Number(values.questions)
const ROUNDS = Number(values.rounds)
const LAYER_BYTES = 20 * CHUNK_SIZE_BYTES

const hex = (): string => randomBytes(32).toString('hex')

/** A flat tree's bundle manifest: files with made-up checksums, chunk tables for the large ones. */
function bundleOf (files: Array<{ checksum: string, size: number }>): { id: string, encoded: Buffer, manifest: ReturnType<typeof createBundleManifest> } {
  const entries: ManifestEntry[] = files.map((f, i) => ({ type: 'F', perms: '644', checksum: f.checksum, size: f.size, path: `./f${i}` }))
  entries.push({ type: 'D', perms: '755', checksum: directoryChecksum(files.map(f => f.checksum)), size: files.reduce((s, f) => s + f.size, 0), path: './' })
  const tables = new Map(files.filter(f => f.size > CHUNK_SIZE_BYTES).map(f => [f.checksum, Array.from({ length: Math.ceil(f.size / CHUNK_SIZE_BYTES) }, hex)]))
  const manifest = createBundleManifest(entries, tables)
  const encoded = encodeBundleManifest(manifest)
  return { id: bundleIdOf(encoded), encoded, manifest }
}

/** The old way: every bundle in key order, decoded unless cached, until one names the object. */
async function scan (store: Store, object: string): Promise<string | undefined> {
  for (const id of await store.bundleIds()) {
    if ((await store.loadBundle(id))?.objectSizes.has(object) === true) return id
  }
  return undefined
}

async function viaIndex (store: Store, object: string): Promise<string | undefined> {
  for (const id of await store.bundlesNaming(object)) {
    if ((await store.loadBundle(id))?.objectSizes.has(object) === true) return id
  }
  return undefined
}

/** smallestBundleWith before the index kept totals: every bundle naming the object is loaded and summed. */
async function smallest (store: Store, object: string, ids: string[]): Promise<string | undefined> {
  let best: { id: string, bytes: number } | undefined
  for (const id of ids) {
    const loaded = await store.loadBundle(id)
    if (loaded?.objectSizes.has(object) !== true) continue
    let bytes = 0
    for (const size of loaded.objectSizes.values()) bytes += size
    if (best === undefined || bytes < best.bytes) best = { id, bytes }
  }
  return best?.id
}

async function perQuestion (questions: string[], ask: (object: string) => Promise<unknown>): Promise<number> {
  const started = performance.now()
  for (const object of questions) await ask(object)
  return (performance.now() - started) * 1000 / questions.length
}

const dir = join(tmpdir(), `bench-object-lookup-${process.pid}`)
const store = await openStore({ dir })
try {
  const bases = Array.from({ length: 5 }, hex)
  const named: string[] = []
  for (let i = 0; i < BUNDLES; i++) {
    const layers = [{ checksum: bases[i % bases.length] ?? hex(), size: LAYER_BYTES }, ...Array.from({ length: 5 }, () => ({ checksum: hex(), size: LAYER_BYTES }))]
    const files = [{ checksum: hex(), size: 500 }, { checksum: hex(), size: 1500 }, ...layers]
    const { id, encoded, manifest } = bundleOf(files)
    await store.commitBundle(id, encoded, manifest, [])
    named.push(files[2 + 1 + Math.floor(Math.random() * 5)]?.checksum ?? '')
  }
  const pick = (from: string[]): string[] => Array.from({ length: QUESTIONS }, () => from[Math.floor(Math.random() * from.length)] ?? '')
  const heapUsed = (): number => {
    (globalThis as { gc?: () => void }).gc?.()
    return process.memoryUsage().heapUsed
  }
  const heapBefore = heapUsed()
  const buildStarted = performance.now()
  await store.bundlesNaming(hex())
  const buildMs = performance.now() - buildStarted
  const heapAfter = heapUsed()
  const samples: Record<string, number[]> = {}
  const add = (key: string, us: number): void => { (samples[key] ??= []).push(us) }
  for (let round = 0; round < ROUNDS; round++) {
    const held = pick(named)
    const missing = Array.from({ length: QUESTIONS }, hex)
    const base = pick(bases).slice(0, Math.max(1, Math.floor(QUESTIONS / 10)))
    add('held scan', await perQuestion(held, async o => await scan(store, o)))
    add('held index', await perQuestion(held, async o => await viaIndex(store, o)))
    add('held named', await perQuestion(held, async o => await store.objectNamed(o)))
    add('missing scan', await perQuestion(missing, async o => await scan(store, o)))
    add('missing index', await perQuestion(missing, async o => await viaIndex(store, o)))
    add('shared base scan', await perQuestion(base, async o => await smallest(store, o, await store.bundleIds())))
    add('shared base index', await perQuestion(base, async o => await smallest(store, o, await store.bundlesNaming(o))))
    add('shared base totals', await perQuestion(base, async o => await store.smallestBundleNaming(o)))
  }
  console.log(`${BUNDLES} bundles, ${QUESTIONS} questions of each kind, ${ROUNDS} rounds; medians of the rounds, µs per question`)
  for (const [key, values] of Object.entries(samples)) console.log(`  ${key.padEnd(19)} ${median(values).toFixed(0)}`)
  console.log(`  index first build  ${buildMs.toFixed(1)} ms, heap +${((heapAfter - heapBefore) / 1024).toFixed(0)} KiB${(globalThis as { gc?: unknown }).gc === undefined ? ' (no --expose-gc: garbage included)' : ''}`)
} finally {
  await store.close()
  await rm(dir, { recursive: true, force: true })
}
