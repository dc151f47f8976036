// Route matching: first match wins. Hosts compare without the port, case-insensitively; "*.x.org"
// matches any subdomain of x.org but not x.org itself. pathPrefix matches whole segments.

export interface RouteMatch {
  hosts: readonly string[] | null
  pathPrefix: string | null
}

export function compileHosts(hosts: readonly string[] | undefined): readonly string[] | null {
  if (!hosts || hosts.length === 0) return null
  return hosts.map((h) => h.toLowerCase())
}

export function hostMatches(patterns: readonly string[], host: string): boolean {
  for (const p of patterns) {
    if (p.startsWith('*.')) {
      if (host.length > p.length - 1 && host.endsWith(p.slice(1))) return true
    } else if (p === host) {
      return true
    }
  }
  return false
}

/** "/api" matches "/api", "/api/", "/api/x", never "/apix". A prefix of "/" matches every path. */
export function pathMatches(prefix: string, path: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  if (p === '/') return true
  if (!path.startsWith(p)) return false
  return path.length === p.length || path.charCodeAt(p.length) === 47 /* / */
}

export function routeMatches(m: RouteMatch, host: string, path: string): boolean {
  return (
    (m.hosts === null || hostMatches(m.hosts, host)) &&
    (m.pathPrefix === null || pathMatches(m.pathPrefix, path))
  )
}

/** Lower-cases a Host header and strips its port (IPv6 literals keep their brackets). */
export function normalizeHost(hostHeader: string | undefined): string {
  if (!hostHeader) return ''
  let h = hostHeader
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    h = end === -1 ? h : h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) h = h.slice(0, colon)
  }
  return h.toLowerCase()
}
