// The request path. Each request reads the route table once and walks explicit phases, in order:
//   0. admit    refuse what the client got wrong (duplicate Host, unknown transfer codings, HTTP/2.0
//               request lines) before any route or variant sees it (admit.ts)
//   1. match    first route whose hosts/pathPrefix match, else a local 404
//   2. decide   override > sticky > weight (routing/decide.ts, pure), with the sticky Set-Cookie
//   3. limits   the declared body size against limits.maxBodySize (chunked uploads are counted as
//               they stream)
//   4. fault    optional: delay or abort injected per variant (route.faults)
//   5. mirror   optional: primary-served safe requests are copied to the canary (route.mirror)
//   6. forward  undici dispatch straight into the response (forward.ts)
//   7. observe  the Observer sees start, attempts, errors and exactly one end (exchange.ts)
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { Transform, type TransformCallback } from 'node:stream'
import { type CompiledRoute, type Observer, RequestContext, type ResponseTap } from '../core/pipeline.js'
import { reply } from '../core/reply.js'
import { BodyTooLargeError } from '../http/upstream-errors.js'
import type { TableHolder } from '../routing/holder.js'
import { admit, type Refusal, type RefusalKind } from './admit.js'
import { type Choice, chooseEndpoint, failOverMidway } from './choose-endpoint.js'
import { Exchange } from './exchange.js'
import { ForwardHandler } from './forward.js'
import { bufferable, readAll } from './replay-body.js'
import { NodeRequestView } from './request-view.js'
import { decideVariant, matchRoute, noRouteBody, upstreamHeadersFor } from './route-request.js'
import { keepConnectionAfterUpload } from './upload.js'

export interface HandlerOptions {
  holder: TableHolder
  observer: Observer
  trustForwarded: boolean
  maxBodySize: number | null
  /** limits.bodyIdleTimeout: an upload that sends nothing for this long gets a 408. */
  bodyIdleTimeout: number
  /** True once shutdown began: answers carry `connection: close` so clients move on. */
  draining: () => boolean
  /** A request refused because of the client (counted in turnout_client_errors_total, logged). */
  refused: (kind: RefusalKind, req: IncomingMessage, detail: string) => void
}

export function createRequestHandler(
  opts: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleRequest(req, res) {
    const ctx = new RequestContext(req, res, performance.now())
    if (opts.draining()) res.shouldKeepAlive = false
    const refusal = admit(req)
    if (refusal !== null) return refuse(opts, ctx, res, refusal)
    const view = new NodeRequestView(req)
    const route = matchRoute(opts.holder.current, view, ctx)
    if (route === null) {
      ctx.status = 404
      return reply(res, 404, noRouteBody(view))
    }
    const setCookie = decideVariant(route, view, ctx)
    // Before the exchange starts: a failover changes the variant the request is counted under.
    const choice = chooseEndpoint(route, ctx)
    const exchange = new Exchange(ctx, res, opts.observer, setCookie)
    const tooLarge = declaredBodyTooLarge(req, opts.maxBodySize)
    if (tooLarge !== null) return exchange.answer(413, tooLarge, ['connection', 'close'])
    const fault = route.faults?.decide(ctx, view) ?? null
    if (fault === null) return forward(opts, exchange, view, route, choice)
    if (fault.kind === 'abort') {
      ctx.fault = 'abort'
      const body = { error: 'fault_injected', route: route.name, variant: ctx.variant }
      return exchange.answer(fault.status, body, ['x-turnout-fault', 'abort'])
    }
    ctx.fault = 'delay'
    exchange.addResponseHeaders('x-turnout-fault', 'delay')
    exchange.delay(fault.ms, () => forward(opts, exchange, view, route, choice))
  }
}

/** Phase 0's answer: the client's own mistake, outside every variant's signals. */
function refuse(opts: HandlerOptions, ctx: RequestContext, res: ServerResponse, r: Refusal): void {
  opts.refused(r.kind, ctx.req, r.detail)
  ctx.status = r.status
  res.shouldKeepAlive = false
  reply(res, r.status, { error: r.error, detail: r.detail }, ['connection', 'close'])
}

/** Phase 3: a Content-Length past limits.maxBodySize is refused before anything goes upstream. */
function declaredBodyTooLarge(req: IncomingMessage, max: number | null): Record<string, unknown> | null {
  if (max === null) return null
  const length = req.headers['content-length']
  return length !== undefined && Number(length) > max ? { error: 'body_too_large', limit: max } : null
}

/** The request body to forward, or null for a body-less request. */
function requestBody(req: IncomingMessage, maxBody: number | null): Readable | null {
  if (req.headers['transfer-encoding'] !== undefined)
    return maxBody !== null ? req.pipe(new BodyLimit(maxBody)) : req
  const length = req.headers['content-length']
  return length !== undefined && length !== '0' ? req : null
}

/**
 * Phases 5 and 6: the variant's circuit breaker (maxInFlight: 503 at once), the mirror for
 * primary-served requests, then forward to the variant.
 */
function forward(
  opts: HandlerOptions,
  exchange: Exchange,
  view: NodeRequestView,
  route: CompiledRoute,
  choice: Choice,
): void {
  const ctx = exchange.ctx
  if (ctx.aborted) return
  const group = choice.balancer.health
  if (group.maxInFlight !== null && group.inFlight >= group.maxInFlight) {
    group.overloads++
    exchange.answer(503, { error: 'overloaded', route: route.name, variant: ctx.variant })
    return
  }
  group.inFlight++
  exchange.release = () => group.inFlight--
  const mirror = ctx.variant === 'primary' && !ctx.failover ? route.mirror : null
  const tap = mirror !== null ? mirror.start(ctx, view) : null
  let body = requestBody(ctx.req, opts.maxBodySize)
  if (body !== null) {
    if (mirror?.teeBody !== undefined) body = mirror.teeBody(ctx, body)
    keepConnectionAfterUpload(ctx.req, body)
    exchange.watchUpload(opts.bodyIdleTimeout, () => opts.refused('request_timeout', ctx.req, 'body idle'))
  }
  if (body !== null && bufferable(ctx.req, route.retry.maxBodyBytes)) {
    // A small body is read first, so a retry can send it again.
    readAll(body, (bytes) => {
      if (bytes !== null && !ctx.aborted) send(opts, exchange, view, route, choice, tap, bytes)
    })
    return
  }
  send(opts, exchange, view, route, choice, tap, body)
}

function send(
  opts: HandlerOptions,
  exchange: Exchange,
  view: NodeRequestView,
  route: CompiledRoute,
  choice: Choice,
  tap: ResponseTap | null,
  body: Readable | Buffer | null,
): void {
  const ctx = exchange.ctx
  const { balancer, endpoint } = choice
  exchange.forwarder = new ForwardHandler({
    ctx,
    res: exchange.res,
    endpoint,
    target: view.target,
    method: view.method,
    headers: () => upstreamHeadersFor(view, ctx, opts.trustForwarded),
    body,
    responseExtra: exchange.responseHeaders,
    tap,
    observer: opts.observer,
    draining: opts.draining,
    retryEndpoint: (failed) => balancer.other(failed),
    retry: route.retry,
    group: balancer.health,
    failover: () => failOverMidway(route, ctx),
    refused: (kind, detail) => opts.refused(kind, ctx.req, detail),
  })
  exchange.forwarder.start()
}

/** Counts a chunked upload and fails it past limits.maxBodySize (Content-Length is checked up front). */
class BodyLimit extends Transform {
  #seen = 0
  constructor(readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) cb(new BodyTooLargeError(this.limit))
    else cb(null, chunk)
  }
}
