// The `neighbour-warm` scenario's warm-up (bench-containerd.ts --edge-warmup MB): a second image,
// of different bytes, that the holder pulls through at setup as it does the first, and a fetch of
// its layer from a fresh edge's registry port before the measured pull. The edge's process then
// has moved bytes on the same path (holder → libp2p → store → HTTP) and its hot functions are
// compiled and tiered up, as in a daemon that has run for days, while its store still lacks the
// measured image (issue 8's cold edge).
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Descriptor } from '../src/oci/index.js'
import { generateImages } from './gen-images.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
/** The warm-up image's repository, in docker-registry and through every shoal node. */
export const WARMUP_REPOSITORY = 'shoal/warmup'
// Another seed than the measured image's: no byte, chunk or digest in common with it.
const WARMUP_SEED = 9
const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

export interface WarmupImage { ref: string, layer: Descriptor }

/** Makes the warm-up image (a layer of `mb` MiB) and copies it into docker-registry at `registryHost`. */
export async function prepareWarmupImage (dir: string, registryHost: string, mb: number, signal: AbortSignal): Promise<WarmupImage> {
  const images = await generateImages(dir, { baseBytes: Math.round(mb * MIB), seed: WARMUP_SEED, signal })
  const ref = `${registryHost}/${WARMUP_REPOSITORY}:1.0`
  await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${ref}`], { timeout: 600_000, signal })
  return { ref, layer: images.baseLayer }
}

/**
 * Asks the edge at `edgeRegistry` (host:port) for the warm-up image the way containerd does
 * through a mirror (manifest, then the layer blob, each with `?ns=` naming the upstream), reads
 * the layer to its end and checks its size and digest: a warm-up that moved the wrong bytes
 * would warm nothing the measured pull uses.
 */
export async function warmEdge (edgeRegistry: string, upstreamHost: string, image: WarmupImage, signal: AbortSignal): Promise<void> {
  const base = `http://${edgeRegistry}/v2/${WARMUP_REPOSITORY}`
  const ns = `?ns=${encodeURIComponent(upstreamHost)}`
  const manifest = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: MANIFEST_ACCEPT }, signal })
  if (!manifest.ok) throw new Error(`warm-up: the edge answered ${manifest.status} for the manifest of ${image.ref}: ${await manifest.text()}`)
  const layers = (await manifest.json() as { layers?: Array<{ digest?: string }> }).layers ?? []
  if (!layers.some(l => l.digest === image.layer.digest)) throw new Error(`warm-up: the manifest the edge served for ${image.ref} does not name the layer ${image.layer.digest}`)
  const blob = await fetch(`${base}/blobs/${image.layer.digest}${ns}`, { signal })
  if (!blob.ok || blob.body === null) throw new Error(`warm-up: the edge answered ${blob.status} for the layer ${image.layer.digest}`)
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of blob.body) {
    hash.update(chunk)
    bytes += chunk.byteLength
    if (bytes > image.layer.size) throw new Error(`warm-up: the edge sent more than the layer's ${image.layer.size} bytes`)
  }
  const digest = `sha256:${hash.digest('hex')}`
  if (bytes !== image.layer.size || digest !== image.layer.digest) throw new Error(`warm-up: the edge sent ${bytes} bytes of ${digest}, not the layer's ${image.layer.size} bytes of ${image.layer.digest}`)
}

/** The directory the warm-up image is generated in, beside the measured one's. */
export const warmupImagesDir = (work: string): string => join(work, 'images-warmup')
