// The few facts about a request that routing decisions read. Kept apart from node:http so the
// decision functions stay pure and are unit-tested with plain objects.

export interface RequestView {
  /** Host header without the port, lower-cased. */
  host: string
  /** Path without the query string. */
  path: string
  method: string
  header(name: string): string | undefined
  cookie(name: string): string | undefined
}

/** Reads one cookie out of a Cookie header value without allocating a map. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < end) {
      const key = header.slice(start, eq).trim()
      if (key === name) {
        let value = header.slice(eq + 1, end).trim()
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
        return value
      }
    }
    start = end + 1
  }
  return undefined
}
