// The forward phase: one undici `dispatch` per upstream attempt, with a handler that writes the
// upstream's answer straight into the client's ServerResponse (no intermediate streams):
// write() === false pauses the upstream until 'drain'; a client that goes away aborts it.
// Uses undici's raw-header handler callbacks (onHeaders/onData) to avoid parsing headers into objects.
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Observer, RequestContext, ResponseTap } from '../core/pipeline.js'
import { reply } from '../core/reply.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { ASTERISK_PATH } from '../upstream/wire.js'
import {
  BodyTooLargeError,
  classifyUpstreamError,
  refusedBeforeSending,
  statusForUpstreamError,
} from './errors.js'
import { downstreamResponseHeaders } from './headers.js'
import { relayInformational } from './informational.js'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

export interface ForwardRequest {
  ctx: RequestContext
  res: ServerResponse
  endpoint: Endpoint
  /** Path and query, origin-form. */
  target: string
  method: string
  /**
   * The header list for one attempt, built after the observer's upstreamAttempt (which may set
   * ctx.upstreamHeaders for it: a retry carries its own traceparent).
   */
  headers: () => string[]
  body: Readable | null
  /** Extra response headers from Turnout (sticky Set-Cookie, fault marker), flat list, or null. */
  responseExtra: string[] | null
  tap: ResponseTap | null
  observer: Observer
  /** True once shutdown began: the answer then carries `connection: close`. */
  draining: () => boolean
  /** Picks the endpoint for the one retry (another endpoint of the variant when there is one). */
  retryEndpoint: (failed: Endpoint) => Endpoint
  /** undici refused to send the request because of what the client sent (counted as a client error). */
  refused: (kind: 'bad_request', detail: string) => void
}

export class ForwardHandler implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #attempt = 1
  #endpoint: Endpoint
  #finished = false
  #cancelled = false

  constructor(readonly r: ForwardRequest) {
    this.#endpoint = r.endpoint
  }

  start(): void {
    const { ctx, observer } = this.r
    ctx.endpoint = this.#endpoint
    this.#endpoint.inFlight++
    observer.upstreamAttempt(ctx, this.#attempt)
    const route = ctx.route!
    this.#endpoint.pool.dispatch(
      {
        path: this.r.target === '*' ? ASTERISK_PATH : this.#endpoint.basePath + this.r.target,
        method: this.r.method as Dispatcher.HttpMethod,
        headers: this.r.headers(),
        body: this.r.body,
        headersTimeout: route.timeouts.response,
        bodyTimeout: route.timeouts.idle,
      },
      this,
    )
  }

  /** Stop the upstream exchange and say nothing more to the client (it went away, or was answered). */
  cancel(): void {
    if (this.#finished) return
    this.#cancelled = true
    this.#abort?.(new Error('client closed the connection'))
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.r.ctx.aborted) abort(new Error('client closed the connection'))
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const { ctx } = this.r
    const res = this.r.res
    if (statusCode < 200) {
      relayInformational(res, ctx.req, statusCode, statusText, rawHeaders)
      return true
    }
    const route = ctx.route!
    const headers = downstreamResponseHeaders(rawHeaders, route.exposeVariant ? ctx.variant : null)
    if (this.r.responseExtra !== null) headers.push(...this.r.responseExtra)
    if (this.r.draining()) res.shouldKeepAlive = false
    try {
      res.writeHead(statusCode, reasonPhrase(statusText), headers)
    } catch (err) {
      // A header value Node refuses to send (invalid characters): the upstream broke the protocol.
      res.statusMessage = undefined as unknown as string // writeHead keeps a refused reason otherwise
      this.#abort?.(err as Error)
      return false
    }
    ctx.status = statusCode
    this.#resume = resume
    this.r.tap?.head(statusCode, headers)
    return true
  }

  onData(chunk: Buffer): boolean {
    const ctx = this.r.ctx
    ctx.bytesOut += chunk.length
    this.r.tap?.chunk(chunk)
    const res = this.r.res
    const ok = res.write(chunk)
    if (!ok) res.once('drain', this.#resume!)
    return ok
  }

  onComplete(): void {
    this.#done()
    this.r.tap?.end()
    this.r.res.end()
  }

  onError(err: Error): void {
    this.#done()
    const { ctx, observer } = this.r
    if (ctx.aborted || this.#cancelled) {
      this.r.tap?.abort()
      return
    }
    const res = this.r.res
    if (this.#abort === null && refusedBeforeSending(err)) {
      // Nothing reached the upstream: the client sent something undici will not forward.
      this.r.tap?.abort()
      ctx.refused = 'bad_request'
      this.r.refused('bad_request', err.message)
      ctx.status = 400
      res.shouldKeepAlive = false
      reply(res, 400, { error: 'bad_request', detail: err.message }, ['connection', 'close'])
      return
    }
    if (err instanceof BodyTooLargeError) {
      ctx.status = 413
      if (!res.headersSent)
        reply(res, 413, { error: 'body_too_large', limit: err.limit }, ['connection', 'close'])
      else res.destroy(err)
      return
    }
    const kind = classifyUpstreamError(err)
    observer.upstreamError(ctx, kind, err)
    if (!res.headersSent) {
      if (this.#attempt === 1 && kind === 'reset' && this.r.body === null && IDEMPOTENT.has(this.r.method)) {
        // A pooled connection the upstream closed under us before any byte of response: retry once.
        this.#attempt = 2
        this.#finished = false
        this.#endpoint = this.r.retryEndpoint(this.#endpoint)
        this.start()
        return
      }
      ctx.errorKind = kind
      this.r.tap?.abort()
      const route = ctx.route!
      ctx.status = statusForUpstreamError(kind)
      reply(res, ctx.status, {
        error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable',
        route: route.name,
        variant: ctx.variant,
      })
      return
    }
    // The answer already started: cut the client connection so it cannot mistake it for complete.
    ctx.errorKind = kind
    this.r.tap?.abort()
    res.destroy(err)
  }

  #done(): void {
    if (this.#finished) return
    this.#finished = true
    this.#endpoint.inFlight--
  }
}

/**
 * The upstream's reason phrase when Node can send it, else Node's own for the status. undici decodes
 * the phrase as UTF-8, so an obs-text byte (legal, RFC 9112 §4) arrives as U+FFFD, which Node refuses.
 */
function reasonPhrase(text: string): string | undefined {
  return text === '' || /[^\t\x20-\x7e\x80-\xff]/.test(text) ? undefined : text
}
