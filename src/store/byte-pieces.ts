import { SourceObjectCorruptError } from './errors.js'

/**
 * Regroups a byte stream into pieces of exactly `pieceBytes` (the last one shorter), each a
 * buffer from `allocate` that the caller then owns. The stream must hold exactly `size` bytes: more or fewer
 * means the object is not the one named, and it stops with SourceObjectCorruptError as soon as that
 * shows, so an oversized source never fills memory or disk.
 */
export async function * bytePieces (source: AsyncIterable<Uint8Array>, pieceBytes: number, size: number, name: { hash: string, where: string }, allocate: (bytes: number) => Buffer = bytes => Buffer.allocUnsafe(bytes)): AsyncGenerator<Buffer> {
  let piece = allocate(Math.min(pieceBytes, size))
  let filled = 0
  let total = 0
  for await (const chunk of source) {
    let offset = 0
    total += chunk.length
    if (total > size) throw new SourceObjectCorruptError(name.hash, name.where, `holds more than the ${size} bytes its manifest says`)
    while (offset < chunk.length) {
      const take = Math.min(piece.length - filled, chunk.length - offset)
      piece.set(chunk.subarray(offset, offset + take), filled)
      filled += take
      offset += take
      if (filled === piece.length) {
        yield piece
        piece = allocate(Math.min(pieceBytes, size - total + (chunk.length - offset)))
        filled = 0
      }
    }
  }
  if (total < size) throw new SourceObjectCorruptError(name.hash, name.where, `holds ${total} bytes, not the ${size} its manifest says`)
  if (filled > 0) yield piece.subarray(0, filled)
}
