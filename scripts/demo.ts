// `npm run demo`: a local fleet on this machine, showing what shoal does end to end.
// While the swarm is being built this demo runs the store path: a gateway snapshots three
// images that share a base layer, edges receive them with `shoal sync` (only missing
// objects move), and every node verifies what it holds.
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateImages } from './gen-images.js'

const shoal = join(import.meta.dirname, '..', 'bin', 'shoal.js')

function run (...args: string[]): string {
  return execFileSync(process.execPath, [shoal, ...args], { encoding: 'utf8' }).trim()
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'shoal-demo-'))
  try {
    console.log(`demo: working in ${work}`)
    await generateImages(join(work, 'images'), { baseBytes: 32 * 1024 * 1024, seed: 1 })
    const gateway = join(work, 'gateway')
    const ids: string[] = []
    for (const app of ['app1', 'app2', 'app3']) {
      const id = run('--data', gateway, 'push', join(work, 'images', app))
      ids.push(id)
      console.log(`gateway: pushed ${app} → ${id}`)
    }
    console.log(run('--data', gateway, 'ls'))
    for (const edge of ['edge1', 'edge2']) {
      for (const id of ids) {
        const out = run('--data', gateway, 'sync', '--id', id, '--from', gateway, '--to', join(work, edge))
        console.log(`${edge}: ${out}`)
      }
      console.log(`${edge}: ${run('--data', join(work, edge), 'verify')}`)
    }
    console.log('demo: the shared 32 MiB base layer moved once per edge; app layers alone made up the rest.')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

await main()
