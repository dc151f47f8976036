// The request path. Each request reads the route table once and walks explicit phases:
//   1. match    first route whose hosts/pathPrefix match, else a local 404
//   2. decide   override > sticky > weight (routing/decide.ts, pure)
//   3. fault    optional: delay or abort injected per variant (route.faults)
//   4. mirror   optional: primary-served safe requests are copied to the canary (route.mirror)
//   5. forward  undici dispatch straight into the response (forward.ts)
//   6. observe  the Observer sees start, attempts, errors and exactly one end
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import type { TableHolder } from '../routing/holder.js'
import { balancerFor } from '../routing/table.js'
import { type Observer, RequestContext } from './context.js'
import { BodyTooLargeError, sendLocal } from './errors.js'
import { ForwardHandler } from './forward.js'
import type { FaultDecision } from './phases.js'
import { NodeRequestView } from './request-view.js'
import { noRouteBody, routeRequest, upstreamHeadersFor } from './route-request.js'

export interface HandlerOptions {
  holder: TableHolder
  observer: Observer
  trustForwarded: boolean
  maxBodySize: number | null
  /** True once shutdown began: answers carry `connection: close` so clients move on. */
  draining: () => boolean
}

export function createRequestHandler(
  opts: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { holder, observer } = opts

  return function handleRequest(req, res) {
    const ctx = new RequestContext(req, res, performance.now())
    const view = new NodeRequestView(req)
    if (opts.draining()) res.shouldKeepAlive = false

    // 1. match, 2. decide
    const decision = routeRequest(holder.current, view, ctx)
    if (decision === null) {
      ctx.status = 404
      sendLocal(res, 404, noRouteBody(view))
      return
    }
    const route = ctx.route!
    let responseExtra: string[] | null = null
    if (decision.assignedId !== null && route.assignCookie !== null) {
      const c = route.assignCookie
      responseExtra = [
        'set-cookie',
        `${c.name}=${decision.assignedId}; Path=/; Max-Age=${c.maxAgeSeconds}; HttpOnly; SameSite=Lax`,
      ]
    }

    observer.requestStart(ctx)
    let forwarder: ForwardHandler | null = null
    let delayTimer: NodeJS.Timeout | null = null
    res.once('close', () => {
      if (!res.writableFinished) {
        ctx.aborted = true
        if (delayTimer !== null) clearTimeout(delayTimer)
        forwarder?.cancel()
      }
      observer.requestEnd(ctx)
    })

    // body limit, before anything is sent upstream
    const maxBody = opts.maxBodySize
    const contentLength = req.headers['content-length']
    const chunked = req.headers['transfer-encoding'] !== undefined
    if (maxBody !== null && contentLength !== undefined && Number(contentLength) > maxBody) {
      ctx.status = 413
      res.shouldKeepAlive = false
      sendLocal(res, 413, { error: 'body_too_large', limit: maxBody })
      return
    }

    const go = () => {
      delayTimer = null
      if (ctx.aborted) return
      // 4. mirror
      const tap = route.mirror !== null && ctx.variant === 'primary' ? route.mirror.start(ctx, view) : null
      // 5. forward
      let body: NodeJS.ReadableStream | null = null
      if (chunked) body = maxBody !== null ? req.pipe(new BodyLimit(maxBody)) : req
      else if (contentLength !== undefined && contentLength !== '0') body = req
      if (body !== null && route.mirror?.teeBody !== undefined && ctx.variant === 'primary')
        body = route.mirror.teeBody(ctx, body as import('node:stream').Readable)
      const balancer = balancerFor(route, ctx.variant)
      forwarder = new ForwardHandler({
        ctx,
        res,
        endpoint: balancer.pick(),
        target: view.target,
        method: view.method,
        headers: () => upstreamHeadersFor(view, ctx, opts.trustForwarded),
        body: body as import('node:stream').Readable | null,
        responseExtra,
        tap,
        observer,
        draining: opts.draining,
        retryEndpoint: (failed) => balancer.other(failed),
      })
      forwarder.start()
    }

    // 3. fault
    const fault: FaultDecision | null = route.faults !== null ? route.faults.decide(ctx, view) : null
    if (fault === null) return go()
    if (fault.kind === 'abort') {
      ctx.fault = 'abort'
      ctx.status = fault.status
      sendLocal(res, fault.status, { error: 'fault_injected', route: route.name, variant: ctx.variant }, [
        'x-turnout-fault',
        'abort',
      ])
      return
    }
    ctx.fault = 'delay'
    responseExtra = [...(responseExtra ?? []), 'x-turnout-fault', 'delay']
    delayTimer = setTimeout(go, fault.ms)
  }
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
