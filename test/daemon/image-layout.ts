import { createHash, randomBytes } from 'node:crypto'
import { open, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { openStore, pushTree } from '../../src/store/index.js'

const MIB = 1024 * 1024

export interface WrittenImage {
  dir: string
  ref: string
  manifestDigest: string
  configDigest: string
  layerDigest: string
  layerBytes: number
  /** The second layer's digest, when one was asked for (`smallLayerBytes`). */
  smallLayerDigest?: string
}

/**
 * An OCI layout of one image with one layer of `layerBytes` random bytes, written a MiB at a
 * time (never held in memory), and a second layer of `smallLayerBytes` after it when asked
 * (the shape of the bench's image: a big layer, then a small one). The layers are not real
 * tars: only the store and the swarm see them, and they check digests, not contents.
 */
export async function writeImageLayout (dir: string, ref: string, layerBytes: number, options: { smallLayerBytes?: number } = {}): Promise<WrittenImage> {
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const staging = join(blobs, '.layer')
  const file = await open(staging, 'w', 0o644)
  const hash = createHash('sha256')
  try {
    for (let written = 0; written < layerBytes; written += MIB) {
      const piece = randomBytes(Math.min(MIB, layerBytes - written))
      hash.update(piece)
      await file.write(piece)
    }
  } finally {
    await file.close()
  }
  const layerHex = hash.digest('hex')
  await rename(staging, join(blobs, layerHex))
  const layers = [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerHex}`, size: layerBytes }]
  if (options.smallLayerBytes !== undefined) {
    const small = randomBytes(options.smallLayerBytes)
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${await writeBlob(blobs, small)}`, size: small.length })
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(l => l.digest) } }))
  const configHex = await writeBlob(blobs, config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configHex}`, size: config.length },
    layers,
  }))
  const manifestHex = await writeBlob(blobs, manifest)
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', { mode: 0o644 })
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manifestHex}`, size: manifest.length,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.slice(ref.lastIndexOf(':') + 1) },
    }],
  }), { mode: 0o644 })
  return { dir, ref, manifestDigest: `sha256:${manifestHex}`, configDigest: `sha256:${configHex}`, layerDigest: `sha256:${layerHex}`, layerBytes, smallLayerDigest: layers[1]?.digest }
}

async function writeBlob (blobs: string, bytes: Buffer): Promise<string> {
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(blobs, hex), bytes, { mode: 0o644 })
  return hex
}

/** An image layout pushed without its image name: it makes a bundle and no ref, so no record goes out. */
export async function unnamedImage (dir: string, ref: string, layerBytes: number, options: { smallLayerBytes?: number } = {}): Promise<WrittenImage> {
  const image = await writeImageLayout(dir, ref, layerBytes, options)
  const index = join(image.dir, 'index.json')
  const parsed = JSON.parse(await readFile(index, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }
  for (const m of parsed.manifests) delete m.annotations?.['io.containerd.image.name']
  await writeFile(index, JSON.stringify(parsed))
  return image
}

/**
 * The bundle description of the image layout at `imageDir`, as a store in `storeDir` makes it: what
 * a node that pulled the image from a holder since gone may hold without any of its objects.
 */
export async function bundleDescriptionOf (imageDir: string, storeDir: string): Promise<Uint8Array> {
  const elsewhere = await openStore({ dir: storeDir, fsync: false })
  try {
    const encoded = await elsewhere.getEncodedBundle((await pushTree(elsewhere, imageDir)).bundleId)
    if (encoded === undefined) throw new Error('no bundle description')
    return encoded
  } finally {
    await elsewhere.close()
  }
}
