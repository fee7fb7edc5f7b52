import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach } from 'vitest'
import { openStore, pushTree, type Store } from '../../src/store/index.js'
import { createPeerKey, createSwarm, withReadChunk, type Swarm, type SwarmEvents, type SwarmInit, type SwarmLogger, type SwarmStore } from '../../src/swarm/index.js'

/**
 * Real swarms for tests: libp2p over TCP on 127.0.0.1, a real store in a temp dir each.
 * Everything a test starts is stopped and removed after it.
 */

export interface TestNode {
  swarm: Swarm
  store: Store
  dir: string
  address: string
}

/** A `privateKey` given replaces the fresh one (a test that needs peer IDs in an order). */
export type NodeOptions = Partial<SwarmInit> & {
  /** What the swarm sees instead of the real store (a lying peer, a slow disk). */
  storeWrapper?: (store: Store) => SwarmStore
  logger?: SwarmLogger
}

export function useSwarms (): { node: (options?: NodeOptions) => Promise<TestNode>, tempDir: () => Promise<string> } {
  const nodes: TestNode[] = []
  const dirs: string[] = []
  afterEach(async () => {
    for (const node of nodes.splice(0).reverse()) {
      await node.swarm.stop()
      await node.store.close()
    }
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  })
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-swarm-'))
    dirs.push(dir)
    return dir
  }
  const node = async (options: NodeOptions = {}): Promise<TestNode> => {
    const dir = await tempDir()
    const store = await openStore({ dir })
    const { storeWrapper, logger, ...init } = options
    const swarm = createSwarm({ store: storeWrapper?.(store) ?? store, logger }, {
      privateKey: await createPeerKey(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      manifestSearchTimeoutMs: 10_000,
      ...init,
    })
    const testNode: TestNode = { swarm, store, dir, address: '' }
    nodes.push(testNode)
    await swarm.start()
    testNode.address = swarm.addresses()[0] ?? ''
    return testNode
  }
  return { node, tempDir }
}

/** Resolves with the first event that matches, or rejects after `timeoutMs`. */
export async function nextEvent<E extends keyof SwarmEvents> (
  swarm: Swarm, event: E, match: (detail: SwarmEvents[E]) => boolean = () => true, timeoutMs = 20_000,
): Promise<SwarmEvents[E]> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      swarm.off(event, listener)
      reject(new Error(`no ${event} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (detail: SwarmEvents[E]): void => {
      if (!match(detail)) return
      clearTimeout(timer)
      swarm.off(event, listener)
      resolve(detail)
    }
    swarm.on(event, listener)
  })
}

/** Dials b from a and waits until the have protocol is up in both directions. */
export async function connect (a: TestNode, b: TestNode): Promise<void> {
  const aJoined = nextEvent(a.swarm, 'neighbour:joined', e => e.peer === b.swarm.peerId)
  const bJoined = nextEvent(b.swarm, 'neighbour:joined', e => e.peer === a.swarm.peerId)
  await a.swarm.dial(b.address)
  await Promise.all([aJoined, bJoined])
}

/** Deterministic bytes (xorshift32): a test that fails can be rerun on the same data. */
export function patternBytes (size: number, seed: number): Buffer {
  const out = Buffer.alloc(Math.ceil(size / 4) * 4)
  let state = (seed >>> 0) || 1
  for (let i = 0; i < out.length; i += 4) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    out.writeUInt32LE(state >>> 0, i)
  }
  return out.subarray(0, size)
}

export async function writeTree (dir: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
}

/** Writes a tree, pushes it into `node`'s store and returns the bundle ID. */
export async function seed (node: TestNode, tree: string, files: Record<string, Buffer | string>): Promise<string> {
  await writeTree(tree, files)
  const { bundleId } = await pushTree(node.store, tree)
  return bundleId
}

export { withReadChunk }
