import '../src/polyfill.js'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore, pushTree } from '../src/store/index.js'
import { createPeerKey, createSwarm } from '../src/swarm/index.js'
import { HostileProcess } from '../test/swarm/hostile-process.js'

const MiB = 1024 * 1024
const dir = await mkdtemp(join(tmpdir(), 'prof-'))
const store = await openStore({ dir: join(dir, 's') })
const tree = join(dir, 't')
await (await import('node:fs/promises')).mkdir(tree)
const buf = Buffer.alloc(24 * MiB)
for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((i * 2654435761) >>> 0, i)
await writeFile(join(tree, 'layer.bin'), buf)
const { bundle } = await pushTree(store, tree)
const objects = bundle.entries.filter(e => e.type === 'F').map(e => e.checksum ?? '')
let banned = 0
const swarm = createSwarm({ store }, { privateKey: await createPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, gateway: true })
await swarm.start()
swarm.on('peer:banned', () => { banned++ })
const address = swarm.addresses()[0] ?? ''
const attacker = await HostileProcess.start()
const deadline = Date.now() + Number(process.env.SECONDS ?? 20) * 1000
const cpu0 = process.cpuUsage()
let ids = 0
while (Date.now() < deadline) {
  await attacker.floodRound(address, objects[0] ?? '', 24)
  ids++
}
const c = process.cpuUsage(cpu0)
console.log(`identities ${ids}, banned ${banned}, gateway CPU ${Math.round((c.user + c.system) / 1000)} ms, attacker CPU ${Math.round(await attacker.cpuMs())} ms, sent ${(swarm.stats().bytesUploaded / MiB).toFixed(1)} MiB`)
await attacker.stop()
await swarm.stop()
await store.close()
process.exit(0)
