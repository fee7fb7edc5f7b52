import { readFileSync } from 'node:fs'

/**
 * The package's version, read at run time from package.json: src/ and dist/ both sit one level
 * under the package root, so the sources and the compiled build report the same one (a JSON
 * import would put package.json outside tsc's rootDir and break `npm run build`).
 */
export const SHOAL_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
