/**
 * Which chunks of one object are present: bit i is chunk i, most significant bit first in
 * each byte (as BitTorrent's bitfield), so the wire form is the bytes as they are.
 */
export class ChunkBitmap {
  readonly bytes: Uint8Array

  constructor (readonly chunkCount: number, bytes?: Uint8Array) {
    const length = Math.ceil(chunkCount / 8)
    if (bytes !== undefined && bytes.length !== length) {
      throw new RangeError(`a bitmap of ${chunkCount} chunks has ${length} bytes, not ${bytes.length}`)
    }
    this.bytes = bytes !== undefined ? Uint8Array.from(bytes) : new Uint8Array(length)
    if (bytes !== undefined && chunkCount % 8 !== 0 && ((this.bytes[length - 1] ?? 0) & (0xff >> (chunkCount % 8))) !== 0) {
      throw new RangeError('a bitmap has bits set past its last chunk')
    }
  }

  static full (chunkCount: number): ChunkBitmap {
    const bitmap = new ChunkBitmap(chunkCount)
    for (let i = 0; i < chunkCount; i++) bitmap.set(i)
    return bitmap
  }

  has (index: number): boolean {
    this.check(index)
    return ((this.bytes[index >> 3] ?? 0) & (0x80 >> (index & 7))) !== 0
  }

  set (index: number): void {
    this.check(index)
    this.bytes[index >> 3] = (this.bytes[index >> 3] ?? 0) | (0x80 >> (index & 7))
  }

  count (): number {
    let total = 0
    for (let i = 0; i < this.chunkCount; i++) if (this.has(i)) total++
    return total
  }

  isComplete (): boolean {
    return this.count() === this.chunkCount
  }

  /** Indexes of the chunks that are absent, in ascending order. */
  missing (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.chunkCount; i++) if (!this.has(i)) out.push(i)
    return out
  }

  private check (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) {
      throw new RangeError(`chunk index ${index} is outside 0..${this.chunkCount - 1}`)
    }
  }
}
