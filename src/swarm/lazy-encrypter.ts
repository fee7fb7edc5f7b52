import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'

/**
 * A connection encrypter that loads its implementation on its first handshake. A daemon offers
 * two (ENCRYPTERS) and a connection uses one: loading TLS's certificate code (@peculiar/x509,
 * asn1js, a WebCrypto shim: ~1 MB of bundle) where noise is what neighbours agree on held
 * ~5 MB of RSS in every daemon for nothing (idle daemon 86 -> 81 MB, docs/architecture.md).
 * multistream-select needs only the protocol name, which is known without the module.
 */
export function lazyEncrypter<Components> (protocol: string, load: () => Promise<(components: Components) => ConnectionEncrypter>): (components: Components) => ConnectionEncrypter {
  return (components) => {
    let loaded: Promise<ConnectionEncrypter> | undefined
    const encrypter = async (): Promise<ConnectionEncrypter> => {
      loaded ??= load().then(factory => {
        const real = factory(components)
        if (real.protocol !== protocol) throw new Error(`the encrypter loaded for ${protocol} speaks ${real.protocol}`)
        return real
      })
      return await loaded
    }
    return {
      protocol,
      secureInbound: async (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> => await (await encrypter()).secureInbound(connection, options),
      secureOutbound: async (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> => await (await encrypter()).secureOutbound(connection, options),
    }
  }
}
