// WebSocket and other `Upgrade` requests, tunnelled to the variant the split decision picks.
// Why not http-proxy: its upgrade path destroys any upgrade other than `websocket` and has no
// handler for a non-101 answer, so a refusing upstream leaves the client hanging. Here node:http's
// 'upgrade' event meets undici's dispatch with `upgrade` set: a 101 splices the two sockets, any
// other answer is relayed as a normal response, and a dead upstream gets a 502.

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { type Observer, RequestContext } from '../core/pipeline.js'
import { replyBytes } from '../core/reply.js'
import type { TableHolder } from '../routing/holder.js'
import { admit, type RefusalKind } from './admit.js'
import { chooseEndpoint } from './choose-endpoint.js'
import { classifyUpstreamError, refusedBeforeSending, statusForUpstreamError } from './errors.js'
import { downstreamResponseHeaders } from './headers.js'
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
    const end = () => {
      if (ended) return
      ended = true
      opts.observer.requestEnd(ctx)
    }
    socket.once('close', () => {
      if (ctx.status === 0) ctx.aborted = true
      end()
    })

    ctx.endpoint = endpoint
    // The observer first: tracing sets this attempt's traceparent in ctx.upstreamHeaders.
    opts.observer.upstreamAttempt(ctx, 1)
    const headers = upstreamHeadersFor(view, ctx, opts.trustForwarded)
    const variantHeader = route.exposeVariant ? ctx.variant : null
    let abortUpstream: ((err?: Error) => void) | null = null
    socket.once('close', () => abortUpstream?.(new Error('client closed the connection')))

    const handler: Dispatcher.DispatchHandler = {
      onConnect(abort) {
        abortUpstream = abort
      },
      onUpgrade(statusCode, rawHeaders, upstream) {
        abortUpstream = null
        ctx.status = statusCode
        const out = downstreamResponseHeaders((rawHeaders ?? []) as Buffer[], variantHeader, true)
        socket.write(rawResponse(statusCode, 'Switching Protocols', out))
        if (head.length > 0) upstream.write(head)
        upstream.on('error', () => socket.destroy())
        socket.on('error', () => upstream.destroy())
        upstream.pipe(socket)
        socket.pipe(upstream)
        // A tunnel ends when either side ends: finish our half too (node:http's sockets are half-open).
        socket.once('end', () => socket.end())
        upstream.once('end', () => upstream.end())
        upstream.once('close', () => socket.destroy())
        socket.once('close', () => upstream.destroy())
      },
      onHeaders(statusCode, rawHeaders, _resume, statusText) {
        if (statusCode < 200) return true
        // The upstream refused the upgrade: relay its answer and close.
        ctx.status = statusCode
        const out = downstreamResponseHeaders(rawHeaders, variantHeader)
        out.push('connection', 'close')
        socket.write(rawResponse(statusCode, statusText, out))
        return true
      },
      onData(chunk) {
        ctx.bytesOut += chunk.length
        socket.write(chunk)
        return true
      },
      onComplete() {
        socket.end()
      },
      onError(err) {
        if (ctx.aborted || socket.destroyed) return
        if (abortUpstream === null && ctx.status === 0 && refusedBeforeSending(err)) {
          ctx.refused = 'bad_request'
          opts.refused?.('bad_request', req, err.message)
          ctx.status = 400
          localAnswer(socket, 400, { error: 'bad_request', detail: err.message })
          return
        }
        const kind = classifyUpstreamError(err)
        opts.observer.upstreamError(ctx, kind, err)
        ctx.errorKind = kind
        if (ctx.status !== 0) {
          socket.destroy()
          return
        }
        ctx.status = statusForUpstreamError(kind)
        localAnswer(socket, ctx.status, {
          error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable',
          route: route.name,
          variant: ctx.variant,
        })
      },
    }
    endpoint.pool.dispatch(
      {
        path: endpoint.basePath + view.target,
        method: view.method as Dispatcher.HttpMethod,
        headers,
        upgrade: view.header('upgrade') ?? 'websocket',
        headersTimeout: route.timeouts.response,
        bodyTimeout: route.timeouts.idle,
      },
      handler,
    )
  }
  return Object.assign(handleUpgrade, { open })
}
