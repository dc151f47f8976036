// One proxied exchange once its variant is decided: the observer sees its start and exactly one end,
// and whatever is pending when the client goes away (a fault delay, the upstream request) is
// cancelled. Also owns the upload's idle watch (limits.bodyIdleTimeout) and local answers.
import type { ServerResponse } from 'node:http'
import type { Observer, RequestContext } from '../core/pipeline.js'
import { reply } from '../core/reply.js'
import type { ForwardHandler } from './forward.js'

export class Exchange {
  forwarder: ForwardHandler | null = null
  /** Called once when the exchange ends (gives back the variant's in-flight slot). */
  release: (() => void) | null = null
  /** Extra response headers from Turnout (sticky Set-Cookie, fault marker), flat list, or null. */
  responseHeaders: string[] | null
  #delay: NodeJS.Timeout | null = null
  #idle: NodeJS.Timeout | null = null

  constructor(
    readonly ctx: RequestContext,
    readonly res: ServerResponse,
    readonly observer: Observer,
    setCookie: string[] | null,
  ) {
    this.responseHeaders = setCookie
    observer.requestStart(ctx)
    res.once('close', () => this.#closed())
  }

  #closed(): void {
    const { ctx, res } = this
    if (!res.writableFinished) {
      ctx.aborted = true
      if (this.#delay !== null) clearTimeout(this.#delay)
      this.forwarder?.cancel()
    }
    this.#stopIdleWatch()
    this.release?.()
    this.observer.requestEnd(ctx)
  }

  addResponseHeaders(...nameValues: string[]): void {
    this.responseHeaders = [...(this.responseHeaders ?? []), ...nameValues]
  }

  /** A local answer for this exchange (413, injected abort, 408). */
  answer(status: number, body: Record<string, unknown>, extra?: string[]): void {
    this.ctx.status = status
    if (extra?.[0] === 'connection') this.res.shouldKeepAlive = false
    reply(this.res, status, body, extra)
  }

  delay(ms: number, then: () => void): void {
    this.#delay = setTimeout(() => {
      this.#delay = null
      then()
    }, ms)
  }

  /**
   * Watches the upload: when the client sends no body byte for `idleMs` while Turnout is waiting for
   * one (nothing buffered for a slow upstream), the upstream request is cancelled and the client gets a
   * 408 (or, once its answer has started, the connection is closed). Checked on a timer, not per chunk,
   * so the body stream's flow is never touched.
   */
  watchUpload(idleMs: number, onIdle: () => void): void {
    const req = this.ctx.req
    let last = req.socket?.bytesRead ?? 0
    const check = () => {
      this.#idle = null
      if (req.complete || this.ctx.aborted) return
      const read = req.socket?.bytesRead ?? 0
      if (read !== last || req.readableLength > 0) {
        last = read
        this.#idle = setTimeout(check, idleMs)
        return
      }
      this.#uploadIdle(idleMs, onIdle)
    }
    this.#idle = setTimeout(check, idleMs)
    req.once('end', () => this.#stopIdleWatch())
  }

  #uploadIdle(idleMs: number, onIdle: () => void): void {
    const { ctx, res } = this
    ctx.refused = 'request_timeout'
    onIdle()
    this.forwarder?.cancel()
    if (res.headersSent) {
      res.destroy()
      return
    }
    this.answer(408, { error: 'request_timeout', detail: `no request body bytes for ${idleMs} ms` }, [
      'connection',
      'close',
    ])
  }

  #stopIdleWatch(): void {
    if (this.#idle === null) return
    clearTimeout(this.#idle)
    this.#idle = null
  }
}
