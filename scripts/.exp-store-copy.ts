import { readFileSync } from 'node:fs'
import { mkdtemp, rm, mkdir, open } from 'node:fs/promises'
import { randomFillSync } from 'node:crypto'
import { join } from 'node:path'
import { bundleObjects } from '../src/manifest/index.js'
import { openStore, pushTree } from '../src/store/index.js'
const MIB = 1024 * 1024
function main0 (): number { const s = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) / 100 }
const work = process.argv[2] ?? await mkdtemp('/tmp/cpu-bench/exp/copy-')
const fsync = !process.argv.includes('--no-fsync')
const tree = join(work, 'tree')
const seedDir = join(work, 'seed')
let bundleId: string
{
  await mkdir(join(tree), { recursive: true })
  const f = await open(join(tree, 'big.bin'), 'w'); const b = Buffer.alloc(8 * MIB)
  for (let i = 0; i < 32; i++) { randomFillSync(b); await f.write(b) }
  await f.close()
  const s = await openStore({ dir: seedDir }); bundleId = (await pushTree(s, tree)).bundleId; await s.close()
}
for (let run = 0; run < 3; run++) {
  const seed = await openStore({ dir: seedDir })
  const dst = await openStore({ dir: join(work, `dst-${run}`), fsync })
  const encoded = await seed.getEncodedBundle(bundleId)
  const { bundle } = await dst.addBundle(encoded!, { expectedId: bundleId })
  const chunks = bundleObjects(bundle).flatMap(o => [...Array(Math.ceil(o.size / MIB)).keys()].map(index => ({ hash: o.hash, index })))
  const data = await Promise.all(chunks.map(async c => await seed.readChunk(c.hash, c.index)))
  const cpu0 = process.cpuUsage(); const m0 = main0(); const t0 = performance.now()
  let next = 0
  await Promise.all([...Array(16).keys()].map(async () => {
    for (let i = next++; i < chunks.length; i = next++) await dst.writeChunk(bundleId, chunks[i]!.hash, chunks[i]!.index, data[i]!)
  }))
  const cpu = process.cpuUsage(cpu0)
  console.log(`run ${run}: ${(256 / ((performance.now() - t0) / 1000)).toFixed(0)} MiB/s, cpu ${((cpu.user + cpu.system) / 1e6 * 4).toFixed(2)} s/GiB (user ${(cpu.user / 1e6 * 4).toFixed(2)}, sys ${(cpu.system / 1e6 * 4).toFixed(2)}), main thread ${((main0() - m0) * 4).toFixed(2)} s/GiB`)
  await dst.close(); await seed.close()
  await rm(join(work, `dst-${run}`), { recursive: true })
}
await rm(work, { recursive: true })
