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
  #cookie: string | undefined | null = null

  constructor(readonly req: IncomingMessage) {
    this.method = req.method ?? 'GET'
    let target = req.url ?? '/'
    if (target.charCodeAt(0) !== 47 /* / */) {
      // absolute-form (a client talking to Turnout as a forward proxy) or "*"
      try {
        const u = new URL(target)
        target = u.pathname + u.search
      } catch {
        target = '/'
      }
    }
    this.target = target
    const q = target.indexOf('?')
    this.path = q === -1 ? target : target.slice(0, q)
    this.host = normalizeHost(this.header('host'))
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
