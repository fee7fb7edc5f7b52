import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createPeerKey, parsePeerKey, serializePeerKey, type PrivateKey } from '../swarm/index.js'

/** The node's libp2p key lives in the data dir, so its peer ID survives restarts. */
export async function loadOrCreatePeerKey (dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, 'identity.key')
  try {
    return parsePeerKey(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = await createPeerKey()
  await writeFile(path, serializePeerKey(key), { mode: 0o600, flag: 'wx' })
  await chmod(path, 0o600)
  return key
}
