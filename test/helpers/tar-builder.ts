import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'

export type TarEntrySpec =
  | { name: string, content: Buffer | string, mode?: number }
  | { name: string, type: 'directory' }

/** Writes a tar exactly as specified: names are not cleaned, so hostile archives can be built. */
export async function writeTar (path: string, entries: TarEntrySpec[]): Promise<void> {
  const pack = tar.pack()
  const written = pipeline(pack, createWriteStream(path))
  for (const spec of entries) {
    const header = { uid: 0, gid: 0, mtime: new Date(0) }
    if ('content' in spec) pack.entry({ ...header, name: spec.name, mode: spec.mode ?? 0o644 }, spec.content)
    else pack.entry({ ...header, name: spec.name, type: 'directory', mode: 0o755 })
  }
  pack.finalize()
  await written
}

/** The entry names a tar holds, as tar-stream reads them. */
export async function tarEntryNames (path: string): Promise<string[]> {
  const extract = tar.extract()
  const names: string[] = []
  const fed = pipeline(createReadStream(path), extract)
  for await (const entry of extract) {
    names.push(entry.header.name)
    entry.resume()
  }
  await fed
  return names
}
