/** One `WWW-Authenticate` challenge: its scheme and parameters (RFC 9110 §11.6.1). */
export interface AuthChallenge {
  scheme: string
  params: Record<string, string>
}

// auth-param = token "=" ( token / quoted-string ); parameters are comma separated.
const PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y

/**
 * Parses the first challenge of a `WWW-Authenticate` header, as distribution and Docker Hub
 * send it: `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 * A scope may itself hold commas inside its quotes; quoted strings are read whole.
 */
export function parseChallenge (header: string | null | undefined): AuthChallenge | undefined {
  if (header === null || header === undefined) return undefined
  const match = /^\s*([A-Za-z][A-Za-z0-9._-]*)(?:\s+|$)/.exec(header)
  if (match?.[1] === undefined) return undefined
  const params: Record<string, string> = {}
  PARAM.lastIndex = match[0].length
  for (;;) {
    const at = PARAM.lastIndex
    const param = PARAM.exec(header)
    if (param?.[1] === undefined || PARAM.lastIndex === at) break
    params[param[1].toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3] ?? ''
  }
  return { scheme: match[1].toLowerCase(), params }
}
