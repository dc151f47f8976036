// The forward phase: one undici `dispatch` per upstream attempt, with a handler that writes the
// upstream's answer straight into the client's ServerResponse (no intermediate streams):
// write() === false pauses the upstream until 'drain'; a client that goes away aborts it.
// Uses undici's raw-header handler callbacks (onHeaders/onData) to avoid parsing headers into objects.
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Observer, RequestContext, ResponseTap, UpstreamErrorKind } from '../core/pipeline.js'
import { reply } from '../core/reply.js'
import { downstreamResponseHeaders } from '../http/headers.js'
import {
  BodyTooLargeError,
  classifyUpstreamError,
  refusedBeforeSending,
  statusForUpstreamError,
} from '../http/upstream-errors.js'
import type { Endpoint } from '../upstream/endpoint.js'
import type { VariantHealth } from '../upstream/health.js'
import {
  backoffMs,
  budgetAllows,
  type RetryPolicy,
  replayable,
  retryReasonForError,
  retryReasonForStatus,
} from '../upstream/retry.js'
import { ASTERISK_PATH } from '../upstream/wire.js'
import { relayInformational } from './informational.js'

export interface ForwardRequest {
  ctx: RequestContext
  res: ServerResponse
  endpoint: Endpoint
  /** Path and query, origin-form. */
  target: string
  method: string
  /**
   * The header list for one attempt, built after the observer's upstreamAttempt (which may set
   * ctx.upstreamHeaders for it: a retry carries its own traceparent). It follows ctx.variant, so a
   * request that failed over gets the primary's.
   */
  headers: () => string[]
  /** The request body: null without one, a Buffer when read in full for replays, else the stream. */
  body: Readable | Buffer | null
  /** Extra response headers from Turnout (sticky Set-Cookie, fault marker), flat list, or null. */
  responseExtra: string[] | null
  tap: ResponseTap | null
  observer: Observer
  /** True once shutdown began: the answer then carries `connection: close`. */
  draining: () => boolean
  /** Picks the endpoint for a retry (another usable endpoint of the variant when there is one). */
  retryEndpoint: (failed: Endpoint) => Endpoint
  /** The route's retry policy and the variant's health (retry budget and counters). */
  retry: RetryPolicy
  group: VariantHealth
  /**
   * A canary-bound request's try failed to connect and the canary has no usable endpoint left: the
   * primary endpoint to re-send it to (ctx then says primary), or null.
   */
  failover?: () => Endpoint | null
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
  /** A retryable 5xx answer whose body is being read and dropped before the next try. */
  #discarding = false
  /** The next try waits for its backoff. */
  #timer: NodeJS.Timeout | null = null
  /** This request holds one unit of the variant's retry budget. */
  #budgeted = false
  /** Tries that do not count toward retry.attempts (a re-send after a connect failure to an ejected endpoint). */
  #extra = 0

  constructor(readonly r: ForwardRequest) {
    this.#endpoint = r.endpoint
  }

  start(): void {
    const { ctx, observer } = this.r
    ctx.endpoint = this.#endpoint
    ctx.attempts = this.#attempt
    if (this.#attempt > 1) ctx.tried?.push(this.#endpoint.address)
    this.#endpoint.inFlight++
    observer.upstreamAttempt(ctx, this.#attempt)
    const route = ctx.route!
    const perTry = this.r.retry.perTryTimeout
    this.#endpoint.pool.dispatch(
      {
        path: this.r.target === '*' ? ASTERISK_PATH : this.#endpoint.basePath + this.r.target,
        method: this.r.method as Dispatcher.HttpMethod,
        headers: this.r.headers(),
        body: this.r.body,
        headersTimeout: perTry !== null ? Math.min(perTry, route.timeouts.response) : route.timeouts.response,
        bodyTimeout: route.timeouts.idle,
      },
      this,
    )
  }

  /** Stop the upstream exchange and say nothing more to the client (it went away, or was answered). */
  cancel(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
      this.#releaseBudget()
      return
    }
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
    // Outlier detection: one counter update per answer.
    this.#endpoint.health.record(statusCode < 500)
    if (statusCode >= 500 && this.#statusRetry(statusCode)) {
      this.#discarding = true
      return true
    }
    const route = ctx.route!
    const headers = downstreamResponseHeaders(rawHeaders, route.exposeVariant ? ctx.variant : null)
    if (this.r.responseExtra !== null) headers.push(...this.r.responseExtra)
    if (this.r.draining()) res.shouldKeepAlive = false
    try {
      res.writeHead(statusCode, reasonPhrase(statusText), headers)
    } catch (err) {
      res.statusMessage = undefined as unknown as string // writeHead keeps a refused reason otherwise
      // A header value Node refuses to send (invalid characters): the upstream broke the protocol.
      this.#abort?.(err as Error)
      return false
    }
    ctx.status = statusCode
    this.#resume = resume
    this.r.tap?.head(statusCode, headers)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.#discarding) return true
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
    if (this.#discarding) {
      this.#next()
      return
    }
    this.r.tap?.end()
    this.r.res.end()
  }

  onError(err: Error): void {
    this.#done()
    const { ctx, observer } = this.r
    if (ctx.aborted || this.#cancelled) {
      this.#discarding = false
      this.#releaseBudget()
      this.r.tap?.abort()
      return
    }
    if (this.#discarding) {
      // The dropped 5xx body broke off: the retry was decided already.
      this.#next()
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
    this.#endpoint.health.record(false)
    if (!res.headersSent) {
      if (this.#errorRetry(kind)) return
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

  /** Can this request be sent again, and is a try left? */
  #mayRetry(): boolean {
    const r = this.r
    return (
      this.#attempt - this.#extra < r.retry.attempts &&
      replayable(r.method, bodyKind(r.body)) &&
      !r.ctx.aborted
    )
  }

  /** A 5xx answer: retry it (and drop its body) when the policy and the budget allow. */
  #statusRetry(status: number): boolean {
    if (!this.#mayRetry()) return false
    const reason = retryReasonForStatus(this.r.retry, status)
    return reason !== null && this.#withinBudget() && this.#plan(reason, true)
  }

  /** A failed try before any answer: retried when the policy allows, or re-sent when ejected. */
  #errorRetry(kind: UpstreamErrorKind): boolean {
    const r = this.r
    if (kind === 'connect' && this.#reroute()) return true
    if (!this.#mayRetry()) return false
    const reason = retryReasonForError(r.retry, kind)
    if (reason === null) return false
    // A connect failure sent nothing: its retry adds no load, so it does not spend the budget. Nor
    // does a retry away from an endpoint ejected by now: the outlier failed, not the variant.
    const free = kind === 'connect' || !this.#endpoint.health.usable()
    if (!free && !this.#withinBudget()) return false
    this.#plan(reason, !free)
    this.#next()
    return true
  }

  /**
   * Nothing reached the endpoint, which is ejected by now (this failure, or one alongside it, tipped
   * it over): the ejection covers this request too, so it goes to a usable endpoint of its variant,
   * or fails over to the primary when the canary has none left. At most once per endpoint.
   */
  #reroute(): boolean {
    const r = this.r
    if (this.#endpoint.health.usable() || this.#extra > r.group.members.length) return false
    if (!replayable(r.method, bodyKind(r.body))) return false
    let next: Endpoint | null = r.retryEndpoint(this.#endpoint)
    if (next === this.#endpoint || !next.health.usable()) {
      next = r.failover?.() ?? null
    }
    if (next === null) return false
    this.#extra++
    this.#plan('ejected', false)
    this.#next(false, next)
    return true
  }

  #withinBudget(): boolean {
    const g = this.r.group
    if (this.#budgeted || budgetAllows(g.retriesInFlight, g.inFlight, this.r.retry.budget)) return true
    g.budgetExhausted++
    return false
  }

  /** Counts the retry and takes a unit of budget for it. */
  #plan(reason: string, budgeted: boolean): boolean {
    const g = this.r.group
    g.countRetry(reason)
    if (budgeted && !this.#budgeted) {
      this.#budgeted = true
      g.retriesInFlight++
    }
    const ctx = this.r.ctx
    ctx.tried ??= [this.#endpoint.address]
    return true
  }

  /** Starts the next try on another endpoint, after the backoff unless `backoff` is false. */
  #next(backoff = true, to?: Endpoint): void {
    this.#discarding = false
    this.#finished = false
    this.#abort = null
    this.#attempt++
    this.#endpoint = to ?? this.r.retryEndpoint(this.#endpoint)
    const wait = backoff ? backoffMs(this.r.retry.backoff, this.#attempt - this.#extra - 1) : 0
    if (wait === 0) {
      this.start()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (!this.r.ctx.aborted) this.start()
    }, wait)
  }

  #releaseBudget(): void {
    if (!this.#budgeted) return
    this.#budgeted = false
    this.r.group.retriesInFlight--
  }

  #done(): void {
    if (this.#finished) return
    this.#finished = true
    this.#endpoint.inFlight--
    // A try that ends gives its budget back; a retry takes it again (a dropped 5xx body keeps it).
    if (!this.#discarding) this.#releaseBudget()
  }
}

function bodyKind(body: Readable | Buffer | null): 'none' | 'buffered' | 'streamed' {
  return body === null ? 'none' : Buffer.isBuffer(body) ? 'buffered' : 'streamed'
}

/**
 * The upstream's reason phrase when Node can send it, else Node's own for the status. undici decodes
 * the phrase as UTF-8, so an obs-text byte (legal, RFC 9112 §4) arrives as U+FFFD, which Node refuses.
 */
function reasonPhrase(text: string): string | undefined {
  return text === '' || /[^\t\x20-\x7e\x80-\xff]/.test(text) ? undefined : text
}
