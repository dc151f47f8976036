// RequestView over node:http's IncomingMessage, reading rawHeaders directly so the lazily built
// `req.headers` object is never created on the hot path.
import type { IncomingMessage } from 'node:http'
import { normalizeHost } from '../routing/match-route.js'
import { type RequestView, readCookie } from '../routing/request-view.js'

export class NodeRequestView implements RequestView {
  readonly host: string
  readonly path: string
  /** Path and query as sent upstream (origin-form). */
  readonly target: string
  readonly method: string
  /** The authority of an absolute-form target, which replaces Host upstream; null otherwise. */
  readonly authority: string | null
  #cookie: string | undefined | null = null

  constructor(readonly req: IncomingMessage) {
    this.method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const form = requestTargetForm(url)
    this.target = form.target
    this.authority = form.authority
    const q = this.target.indexOf('?')
    // `OPTIONS *` is about the host as a whole: it matches as the host's root.
    this.path = q === -1 ? (this.target === '*' ? '/' : this.target) : this.target.slice(0, q)
    this.host = normalizeHost(form.authority ?? this.header('host'))
  }

  header(name: string): string | undefined {
    const raw = this.req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!
      if (n.length === name.length && n.toLowerCase() === name) return raw[i + 1]
    }
    return undefined
  }

  cookie(name: string): string | undefined {
    if (this.#cookie === null) {
      const raw = this.req.rawHeaders
      let joined: string | undefined
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i]!
        if (n.length === 6 && n.toLowerCase() === 'cookie')
          joined = joined === undefined ? raw[i + 1] : `${joined}; ${raw[i + 1]}`
      }
      this.#cookie = joined
    }
    return readCookie(this.#cookie, name)
  }
}

/**
 * The origin-form target and, for absolute-form (`GET http://host/p HTTP/1.1`, a client talking to
 * Turnout as a forward proxy), its authority, which replaces Host (RFC 9112 §3.2.2). The path is kept
 * byte for byte as received: routing and the upstream see the same path, never a normalised one.
 * The asterisk form (`OPTIONS *`) stays `*`.
 */
export function requestTargetForm(url: string): { target: string; authority: string | null } {
  if (url.charCodeAt(0) === 47 /* / */ || url === '*') return { target: url, authority: null }
  const scheme = url.indexOf('://')
  if (scheme === -1) return { target: url, authority: null }
  const start = scheme + 3
  let end = start
  while (end < url.length) {
    const c = url.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break
    end++
  }
  const rest = url.slice(end)
  const target = rest === '' || rest.charCodeAt(0) !== 47 ? `/${rest}` : rest
  const at = url.lastIndexOf('@', end)
  const authority = url.slice(at >= start ? at + 1 : start, end)
  return { target, authority }
}
