import { formatManifest, walkTree } from '../../src/manifest/index.js'

/** The snapdir manifest of a tree, in-process (the CLI's `shoal manifest` is checked against b3sum separately). */
export async function treeManifest (dir: string): Promise<string> {
  return formatManifest(await walkTree(dir))
}
