// WebSocket and other `Upgrade` requests, tunnelled to the variant the split decision picks.
// Why not http-proxy: its upgrade path destroys any upgrade other than `websocket` and has no
// handler for a non-101 answer, so a refusing upstream leaves the client hanging. Here node:http's
// 'upgrade' event meets undici's dispatch with `upgrade` set: a 101 splices the two sockets, any
// other answer is relayed as a normal response, and a dead upstream gets a 502.

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { type CompiledRoute, type Observer, RequestContext } from '../core/pipeline.js'
import { replyBytes } from '../core/reply.js'
import { downstreamResponseHeaders } from '../http/headers.js'
import {
  classifyUpstreamError,
  refusedBeforeSending,
  statusForUpstreamError,
} from '../http/upstream-errors.js'
import type { TableHolder } from '../routing/holder.js'
import { admit, type RefusalKind } from './admit.js'
import { chooseEndpoint } from './choose-endpoint.js'
import { NodeRequestView } from './request-view.js'
import { decideVariant, matchRoute, noRouteBody, upstreamHeadersFor } from './route-request.js'

export interface UpgradeOptions {
  holder: TableHolder
  observer: Observer
  trustForwarded: boolean
  /** A request refused because of the client (counted in turnout_client_errors_total, logged). */
  refused?: (kind: RefusalKind, req: IncomingMessage, detail: string) => void
}

function rawResponse(status: number, statusText: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  return `${head}\r\n`
}

function localAnswer(socket: Duplex, status: number, body: Record<string, unknown>): void {
  socket.end(replyBytes(status, body))
}

export interface UpgradeHandler {
  (req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Client sockets of upgrade exchanges still open (node:http stops tracking them after 'upgrade'). */
  readonly open: ReadonlySet<Duplex>
}

export function createUpgradeHandler(opts: UpgradeOptions): UpgradeHandler {
  const open = new Set<Duplex>()
  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
    socket.on('error', () => socket.destroy())
    const ctx = new RequestContext(req, null, performance.now())
    const refusal = admit(req)
    if (refusal !== null) {
      opts.refused?.(refusal.kind, req, refusal.detail)
      localAnswer(socket, refusal.status, { error: refusal.error, detail: refusal.detail })
      return
    }
    const view = new NodeRequestView(req)
    const route = matchRoute(opts.holder.current, view, ctx)
    if (route === null) {
      localAnswer(socket, 404, noRouteBody(view))
      return
    }
    decideVariant(route, view, ctx)
    const { endpoint } = chooseEndpoint(route, ctx)
    opts.observer.requestStart(ctx)
    let ended = false
    socket.once('close', () => {
      if (ctx.status === 0) ctx.aborted = true
      if (ended) return
      ended = true
      opts.observer.requestEnd(ctx)
    })
    ctx.endpoint = endpoint
    // The observer first: tracing sets this attempt's traceparent in ctx.upstreamHeaders.
    opts.observer.upstreamAttempt(ctx, 1)
    const tunnel = new TunnelHandler(ctx, route, socket, head, opts)
    socket.once('close', () => tunnel.abortUpstream?.(new Error('client closed the connection')))
    endpoint.pool.dispatch(
      {
        path: endpoint.basePath + view.target,
        method: view.method as Dispatcher.HttpMethod,
        headers: upstreamHeadersFor(view, ctx, opts.trustForwarded),
        upgrade: view.header('upgrade') ?? 'websocket',
        headersTimeout: route.timeouts.response,
        bodyTimeout: route.timeouts.idle,
      },
      tunnel,
    )
  }
  return Object.assign(handleUpgrade, { open })
}

/** The upstream side of one upgrade: a 101 splices the two sockets; any other answer is relayed. */
class TunnelHandler implements Dispatcher.DispatchHandler {
  abortUpstream: ((err?: Error) => void) | null = null
  readonly #variantHeader: string | null

  constructor(
    readonly ctx: RequestContext,
    readonly route: CompiledRoute,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly opts: UpgradeOptions,
  ) {
    this.#variantHeader = route.exposeVariant ? ctx.variant : null
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    const { socket } = this
    this.abortUpstream = null
    this.ctx.status = statusCode
    const out = downstreamResponseHeaders((rawHeaders ?? []) as Buffer[], this.#variantHeader, true)
    socket.write(rawResponse(statusCode, 'Switching Protocols', out))
    if (this.head.length > 0) upstream.write(this.head)
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
    upstream.pipe(socket)
    socket.pipe(upstream)
    // A tunnel ends when either side ends: finish our half too (node:http's sockets are half-open).
    socket.once('end', () => socket.end())
    upstream.once('end', () => upstream.end())
    upstream.once('close', () => socket.destroy())
    socket.once('close', () => upstream.destroy())
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    // The upstream refused the upgrade: relay its answer and close.
    this.ctx.status = statusCode
    const out = downstreamResponseHeaders(rawHeaders, this.#variantHeader)
    out.push('connection', 'close')
    this.socket.write(rawResponse(statusCode, statusText, out))
    return true
  }

  onData(chunk: Buffer): boolean {
    this.ctx.bytesOut += chunk.length
    this.socket.write(chunk)
    return true
  }

  onComplete(): void {
    this.socket.end()
  }

  onError(err: Error): void {
    const { ctx, socket } = this
    if (ctx.aborted || socket.destroyed) return
    if (this.abortUpstream === null && ctx.status === 0 && refusedBeforeSending(err)) {
      ctx.refused = 'bad_request'
      this.opts.refused?.('bad_request', ctx.req, err.message)
      ctx.status = 400
      localAnswer(socket, 400, { error: 'bad_request', detail: err.message })
      return
    }
    const kind = classifyUpstreamError(err)
    this.opts.observer.upstreamError(ctx, kind, err)
    ctx.errorKind = kind
    if (ctx.status !== 0) {
      socket.destroy()
      return
    }
    ctx.status = statusForUpstreamError(kind)
    localAnswer(socket, ctx.status, {
      error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable',
      route: this.route.name,
      variant: ctx.variant,
    })
  }
}
