import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface MultiPlatformImage {
  dir: string
  /** architecture → the sha256 hex of that platform's layer. */
  layers: Record<string, string>
}

/**
 * An OCI layout whose index.json names an image index of one linux image per architecture,
 * each a config and one random layer of `layerBytes` (not a real tar: only the store and the
 * swarm see it, and they check digests).
 */
export async function writeMultiPlatformLayout (dir: string, ref: string, architectures: string[], layerBytes: number): Promise<MultiPlatformImage> {
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const blob = async (bytes: Buffer): Promise<{ hex: string, size: number }> => {
    const hex = createHash('sha256').update(bytes).digest('hex')
    await writeFile(join(blobs, hex), bytes)
    return { hex, size: bytes.length }
  }
  const layers: Record<string, string> = {}
  const manifests = []
  for (const architecture of architectures) {
    const layer = await blob(randomBytes(layerBytes))
    layers[architecture] = layer.hex
    const config = await blob(Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${layer.hex}`] } })))
    const manifest = await blob(Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${config.hex}`, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layer.hex}`, size: layer.size }],
    })))
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manifest.hex}`, size: manifest.size, platform: { os: 'linux', architecture } })
  }
  const index = await blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })))
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${index.hex}`, size: index.size,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.slice(ref.lastIndexOf(':') + 1) },
    }],
  }))
  return { dir, layers }
}
