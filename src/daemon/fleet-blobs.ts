import { CodedError } from '../errors/index.js'
import type { IncomingBlob, RepositoryName, Sha256Digest } from '../http/index.js'
import { ingestBlobFile, type GrowingFile, NoRoomError, OverQuotaError, type HashedBlob, type Store } from '../store/index.js'
import { MAX_FLEET_BLOB_STREAMS_PER_CONNECTION, Semaphore, type FleetBlobStream, type Swarm } from '../swarm/index.js'
import { raceAbort } from '../wait/index.js'
import type { ImageAssembler } from './image-assembler.js'
import type { Logger } from './logger.js'

/** Largest blob taken from the fleet when its pull-through node did not say how big it is (the upstream client's default cap). */
export const MAX_UNSIZED_FLEET_BLOB_BYTES = 64 * 1024 * 1024 * 1024

/** A streamed blob refused here: it did not hash to the digest asked for, or it was larger than its limit. */
export class FleetBlobRejectedError extends CodedError<'FLEET_BLOB_REJECTED'> {
  constructor (message: string, options?: ErrorOptions) {
    super('FLEET_BLOB_REJECTED', message, options)
    this.name = 'FleetBlobRejectedError'
  }
}

export interface FleetBlobsComponents {
  store: Store
  swarm: Pick<Swarm, 'streamFleetBlob'>
  assembler: ImageAssembler
  logger: Logger
  /** The daemon's: a blob on its way keeps coming when the client that asked leaves (others may ask). */
  lifetime: AbortSignal
}

/**
 * An edge's side of the fleet's streaming pull-through (issue 8, part a): one fetch per blob
 * from the pull-through node (/shoal/fleet-blob/1.0.0), written to a staging file that every
 * client here asking for the blob reads as it fills. The blob's sha256 is checked here at the
 * end: only then is the last byte given to readers and the file made an object of the store
 * (which hashes it again and indexes the digest), so nothing unverified is ever kept, served
 * whole, or offered to other peers; a failure removes the file and cuts every reader.
 */
export class FleetBlobs {
  /** Fetches in flight by sha256 hex: their staging file once the pull-through node answered, undefined when no one could. */
  private readonly flights = new Map<string, Promise<GrowingFile | undefined>>()
  /**
   * Blob streams open at once, each held from its ask to its last byte: the pull-through node
   * takes at most MAX_FLEET_BLOB_STREAMS_PER_CONNECTION from one peer and resets the rest, and
   * `ctr images pull` asks for every layer at once. Past it a blob waits for a stream to end;
   * before, a 30-layer image's 17th layer on was refused ("Cannot write to a stream that is
   * closed") and answered 404 (docs/architecture.md, the `audit` lane).
   */
  private readonly streams = new Semaphore(MAX_FLEET_BLOB_STREAMS_PER_CONNECTION)

  constructor (private readonly components: FleetBlobsComponents) {}

  /** The blob as it arrives from the fleet's pull-through, or undefined when no trusted peer streams it. */
  async open (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<IncomingBlob | undefined> {
    let flight = this.flights.get(digest.hex)
    if (flight === undefined) {
      flight = this.start(name, digest)
      this.flights.set(digest.hex, flight)
    }
    return await this.readerOf(flight, digest, signal)
  }

  /**
   * The blob as it arrives here, when a fetch of it is under way (this node relays it to an
   * edge the pull-through node pointed at us); undefined otherwise. Never starts a fetch: a
   * peer can make this node read what it is receiving anyway, nothing more.
   */
  async incoming (digest: Sha256Digest, signal: AbortSignal): Promise<IncomingBlob | undefined> {
    const flight = this.flights.get(digest.hex)
    return flight === undefined ? undefined : await this.readerOf(flight, digest, signal)
  }

  private async readerOf (flight: Promise<GrowingFile | undefined>, digest: Sha256Digest, signal: AbortSignal): Promise<IncomingBlob | undefined> {
    const file = await raceAbort(flight, signal)
    if (file === undefined) return undefined
    try {
      return file.reader()
    } catch {
      // The fetch ended between the two looks: the blob is an object now (or failed).
    }
    const object = await this.components.store.objectBySha256(digest.hex)
    if (object === undefined) return undefined
    return await this.components.store.wholeObjectReader(object)
  }

  private async start (name: RepositoryName, digest: Sha256Digest): Promise<GrowingFile | undefined> {
    const { store, swarm, logger, lifetime } = this.components
    let file: GrowingFile | undefined
    let stream: FleetBlobStream | undefined
    let filling = false
    try {
      await this.streams.acquire({ signal: lifetime })
    } catch {
      this.flights.delete(digest.hex)
      return undefined
    }
    try {
      const asked = await swarm.streamFleetBlob({ registry: name.host, repository: name.repository, digest: digest.digest }, { signal: lifetime })
      if (asked.stream === undefined) {
        logger.info('no trusted peer streams this blob', { name: name.path, digest: digest.digest, asked: asked.misses })
        this.flights.delete(digest.hex)
        return undefined
      }
      stream = asked.stream
      file = await store.createStagingFile('fleet', asked.stream.size, `blob ${digest.digest} of ${name.path}`)
      logger.info('streaming a blob from the fleet\'s pull-through', { name: name.path, digest: digest.digest, size: asked.stream.size, peer: asked.peer, relay: asked.relay })
      filling = true
      void this.fill(digest, file, asked.stream, asked.peer ?? '-').finally(() => { this.streams.release() })
      return file
    } catch (err) {
      this.flights.delete(digest.hex)
      // The sender is let go at once, not after its stall timeout.
      stream?.close()
      await file?.fail(err instanceof Error ? err : new Error(String(err)))
      // No room here for the blob (the disk, or the quota): no other source could store it
      // either, and the client should hear that (503 naming the disk, DENIED naming the quota),
      // not that nobody has the blob.
      if (lifetime.aborted || err instanceof NoRoomError || err instanceof OverQuotaError) throw err
      logger.info('asking the fleet to stream a blob failed', { name: name.path, digest: digest.digest, err })
      return undefined
    } finally {
      if (!filling) this.streams.release()
    }
  }

  private async fill (digest: Sha256Digest, file: GrowingFile, stream: FleetBlobStream, peer: string): Promise<void> {
    const { store, assembler, logger, lifetime } = this.components
    const limit = stream.size ?? MAX_UNSIZED_FLEET_BLOB_BYTES
    let received = 0
    let hashed: HashedBlob | undefined
    try {
      for await (const data of stream.data) {
        received += data.byteLength
        if (received > limit) throw new FleetBlobRejectedError(`the blob ${digest.digest} from ${peer} is larger than ${limit} bytes`)
        await file.append(data)
      }
      // The file hashed what it wrote, as it wrote it: the one hash pass of the blob here.
      hashed = await file.finish()
      const actual = hashed.sha256
      if (actual !== digest.hex) {
        const relay = stream.relay
        const detail = `the blob ${digest.digest} streamed by ${relay === undefined ? peer : `the relay ${relay} (and ${peer})`} hashed to sha256:${actual}; nothing of it was kept`
        stream.rejected?.(detail)
        throw new FleetBlobRejectedError(detail)
      }
      file.complete()
    } catch (err) {
      this.flights.delete(digest.hex)
      stream.close()
      const failure = err instanceof Error ? err : new Error(String(err))
      await file.fail(failure)
      logger.warn('a blob streamed from the fleet broke off; its clients were cut and nothing was kept', { digest: digest.digest, peer, received, err })
      return
    }
    try {
      // Not read again: BLAKE3, its chunk table and the sha256 were computed from the buffers written (docs/architecture.md).
      await ingestBlobFile(store, file.path, { sha256: digest.hex, hashed, signal: lifetime })
      logger.info('blob streamed from the fleet is stored', { digest: digest.digest, bytes: received, peer, relay: stream.relay })
      assembler.check()
    } catch (err) {
      logger.warn('a blob streamed from the fleet could not be stored', { digest: digest.digest, err })
    } finally {
      this.flights.delete(digest.hex)
      await file.writerFinished()
    }
  }
}
