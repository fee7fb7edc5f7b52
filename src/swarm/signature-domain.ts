import type { PrivateKey, PublicKey } from '@libp2p/interface'

/**
 * Domain separation for what a node signs: each kind of statement (a ref record, a preheat
 * record, a status stamp, an absence notice) is signed over its own prefix and the bytes, so a
 * signature over one kind never verifies as another, nor as any other libp2p signature.
 */
export class SignatureDomain {
  private readonly prefix: Buffer

  /** `name`: versioned, as `shoal-ref-record/1`. */
  constructor (name: string) {
    this.prefix = Buffer.from(`${name}\n`)
  }

  async sign (key: PrivateKey, bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    return Uint8Array.from(await key.sign(Buffer.concat([this.prefix, bytes])))
  }

  async verify (key: PublicKey, bytes: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return await key.verify(Buffer.concat([this.prefix, bytes]), signature)
  }
}
