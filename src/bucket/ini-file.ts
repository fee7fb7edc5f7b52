import { readFile } from 'node:fs/promises'

/** Sections of an INI file; a key whose value is empty and followed by indented lines holds those as `key.sub`. */
export type IniSections = Map<string, Map<string, string>>

/**
 * The AWS CLI's config and credentials files and gsutil's ~/.boto are INI files; the AWS
 * config also nests settings (`s3 =` then indented `addressing_style = path`), which become
 * `s3.addressing_style` here.
 */
export function parseIni (text: string): IniSections {
  const sections: IniSections = new Map()
  let current: Map<string, string> | undefined
  let parent: string | undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+[#;].*$/, '')
    if (/^\s*([#;].*)?$/.test(line)) continue
    const section = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(line)
    if (section !== null) {
      current = sections.get(section[1]!) ?? new Map()
      sections.set(section[1]!, current)
      parent = undefined
      continue
    }
    const pair = /^(\s*)([^=\s]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (pair === null || current === undefined) continue
    const [, indent, key, value] = pair as unknown as [string, string, string, string]
    if (indent !== '' && parent !== undefined) {
      current.set(`${parent}.${key}`, value)
    } else {
      current.set(key, value)
      parent = value === '' ? key : undefined
    }
  }
  return sections
}

/** A missing file is an empty one: each of these files is optional. */
export async function readIniFile (path: string): Promise<IniSections> {
  try {
    return parseIni(await readFile(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw err
  }
}
