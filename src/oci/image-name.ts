/**
 * Docker's short names made explicit, as containerd does when it imports a
 * `docker save` archive: `busybox` → `docker.io/library/busybox:latest`,
 * `me/app:1` → `docker.io/me/app:1`, `registry.example.com/app:1.0` unchanged.
 * Returns the full name and its tag (the `org.opencontainers.image.ref.name`).
 */
export function normalizeDockerReference (reference: string): { name: string, tag: string } {
  const lastSlash = reference.lastIndexOf('/')
  const colon = reference.lastIndexOf(':')
  const hasTag = colon > lastSlash
  const repository = hasTag ? reference.slice(0, colon) : reference
  const tag = hasTag ? reference.slice(colon + 1) : 'latest'
  const firstSlash = repository.indexOf('/')
  const first = firstSlash === -1 ? '' : repository.slice(0, firstSlash)
  // Docker's rule: the first component is a registry only if it looks like a host.
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost'
  let name = hasRegistry ? repository : `docker.io/${repository}`
  if (name.startsWith('docker.io/') && !name.slice('docker.io/'.length).includes('/')) name = `docker.io/library/${name.slice('docker.io/'.length)}`
  return { name: `${name}:${tag}`, tag }
}
