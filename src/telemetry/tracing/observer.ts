// OpenTelemetry traces, created by Turnout's own code (no auto-instrumentation): one SERVER span per
// proxied request and one CLIENT span (its child) per upstream attempt, named and attributed per the
// HTTP semantic conventions, plus turnout.route / turnout.variant (both) and turnout.decision (SERVER).
// W3C traceparent/tracestate are continued from the client and sent to the upstream: each attempt
// names its own CLIENT span as the parent (upstreamAttempt sets ctx.upstreamHeaders, which the forward
// phase reads per attempt), so a retry carries the id of the span that describes it.
//
// Sampling happens first: an unsampled request gets a non-recording span (no attributes, no export)
// and still propagates its context with the sampled flag off.
//
// This module (and sdk.ts under it) is imported only when tracing is on.
import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { TracerProvider } from '@opentelemetry/sdk-trace'
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions'
import type { Observer, RequestContext, UpstreamErrorKind } from '../../core/pipeline.js'
import type { Endpoint } from '../../upstream/endpoint.js'
import { redactQuery, redactTarget } from '../redact.js'
import { createTracerSetup } from './sdk.js'
import type { TracingSettings } from './settings.js'
import type { MirrorSpanHandle, MirrorSpanInfo, TracingDeps, TracingHandle } from './types.js'

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
])

const headerGetter: TextMapGetter<RequestContext['req']['headers']> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
}
const flatSetter: TextMapSetter<string[]> = {
  set: (carrier, key, value) => {
    carrier.push(key, value)
  },
}

/** `host:port` / `[v6]:port` → parts; the port is null when absent. */
export function splitHostPort(hostPort: string): { host: string; port: number | null } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(hostPort)
  if (m === null) return { host: hostPort, port: null }
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  return { host, port: m[2] === undefined ? null : Number(m[2]) }
}

/** Per-request tracing state, kept in ctx.observerState. */
export class RequestTrace {
  client: Span | null = null
  attempt = 0
  constructor(
    readonly server: Span,
    readonly method: string,
  ) {}
}

/** Attributes of the SERVER span known at the start of the request. */
function serverAttributes(ctx: RequestContext, method: string): Attributes {
  const req = ctx.req
  const target = req.url ?? '/'
  const q = target.indexOf('?')
  const attrs: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: method,
    [ATTR_URL_SCHEME]: 'http',
    [ATTR_URL_PATH]: q === -1 ? target : target.slice(0, q),
    [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
    'turnout.route': ctx.route!.name,
    'turnout.variant': ctx.variant,
    'turnout.decision': ctx.reason,
  }
  if (method === '_OTHER') attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = req.method ?? ''
  if (q !== -1) attrs[ATTR_URL_QUERY] = redactQuery(target.slice(q + 1))
  const host = req.headers.host
  if (host !== undefined) {
    const { host: name, port } = splitHostPort(host)
    attrs[ATTR_SERVER_ADDRESS] = name
    if (port !== null) attrs[ATTR_SERVER_PORT] = port
  }
  const socket = req.socket
  if (socket.remoteAddress !== undefined) {
    attrs[ATTR_CLIENT_ADDRESS] = socket.remoteAddress
    attrs[ATTR_NETWORK_PEER_ADDRESS] = socket.remoteAddress
  }
  if (socket.remotePort !== undefined) attrs[ATTR_NETWORK_PEER_PORT] = socket.remotePort
  const ua = req.headers['user-agent']
  if (ua !== undefined) attrs[ATTR_USER_AGENT_ORIGINAL] = ua
  return attrs
}

/** Spans for requests, their upstream attempts and their mirrors. Every method is safe to call. */
class RequestTracer {
  readonly #propagator = new W3CTraceContextPropagator()
  readonly #endpointParts = new WeakMap<Endpoint, { host: string; port: number | null }>()

  constructor(
    readonly tracer: Tracer,
    readonly onError: (err: unknown) => void,
  ) {}

  #partsOf(ep: Endpoint): { host: string; port: number | null } {
    let p = this.#endpointParts.get(ep)
    if (p === undefined) {
      p = splitHostPort(ep.address)
      this.#endpointParts.set(ep, p)
    }
    return p
  }

  /** traceparent (+ tracestate) naming the span of `sc` as the parent. */
  propagationHeaders(sc: SpanContext): string[] {
    const out: string[] = []
    this.#propagator.inject(trace.setSpanContext(ROOT_CONTEXT, sc), out, flatSetter)
    return out
  }

  static stateOf(ctx: RequestContext): RequestTrace | null {
    return ctx.observerState instanceof RequestTrace ? ctx.observerState : null
  }

  requestStart(ctx: RequestContext): void {
    const req = ctx.req
    const parentCtx = this.#propagator.extract(ROOT_CONTEXT, req.headers, headerGetter)
    const method = KNOWN_METHODS.has(req.method ?? 'GET') ? (req.method ?? 'GET') : '_OTHER'
    const server = this.tracer.startSpan(
      method === '_OTHER' ? 'HTTP' : method,
      { kind: SpanKind.SERVER, startTime: ctx.start },
      parentCtx,
    )
    if (!server.isRecording()) {
      // Not sampled: no span to fill, but the upstream still joins the trace (sampled flag off).
      ctx.upstreamHeaders = this.propagationHeaders(server.spanContext())
      return
    }
    ctx.observerState = new RequestTrace(server, method)
    server.setAttributes(serverAttributes(ctx, method))
  }

  /** Opens the CLIENT span of this attempt and names it in the headers this attempt sends upstream. */
  upstreamAttempt(ctx: RequestContext, t: RequestTrace, attempt: number): void {
    this.#endClient(t, 0, 'superseded')
    const span = this.tracer.startSpan(
      t.method === '_OTHER' ? 'HTTP' : t.method,
      { kind: SpanKind.CLIENT },
      trace.setSpan(ROOT_CONTEXT, t.server),
    )
    const attrs: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: t.method,
      'turnout.route': ctx.route!.name,
      'turnout.variant': ctx.variant,
    }
    if (t.method === '_OTHER') attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = ctx.req.method ?? ''
    if (attempt > 1) attrs[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1
    const ep = ctx.endpoint
    if (ep !== null) {
      const { host, port } = this.#partsOf(ep)
      attrs[ATTR_SERVER_ADDRESS] = host
      if (port !== null) attrs[ATTR_SERVER_PORT] = port
      attrs[ATTR_URL_FULL] = ep.origin + ep.basePath + redactTarget(ctx.req.url ?? '/')
    }
    span.setAttributes(attrs)
    t.client = span
    t.attempt = attempt
    ctx.upstreamHeaders = this.propagationHeaders(span.spanContext())
  }

  upstreamError(t: RequestTrace, kind: UpstreamErrorKind, err: Error): void {
    this.#endClient(t, 0, kind, err.message)
  }

  requestEnd(ctx: RequestContext, t: RequestTrace): void {
    // The last attempt ends with the exchange: its status is the upstream's unless Turnout answered.
    if (t.client !== null) {
      const status = ctx.errorKind === null ? ctx.status : 0
      this.#endClient(t, status, status >= 400 ? String(status) : ctx.aborted ? 'cancelled' : null)
    }
    const server = t.server
    const attrs: Attributes = {}
    if (ctx.status > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ctx.status
    if (ctx.fault !== null) attrs['turnout.fault'] = ctx.fault
    if (ctx.aborted) attrs['turnout.client_aborted'] = true
    const errorType = ctx.errorKind ?? (ctx.status >= 500 ? String(ctx.status) : null)
    if (errorType !== null) {
      attrs[ATTR_ERROR_TYPE] = errorType
      server.setStatus({ code: SpanStatusCode.ERROR })
    }
    server.setAttributes(attrs)
    server.end(performance.now())
  }

  #endClient(t: RequestTrace, status: number, errorType: string | null, message?: string): void {
    const span = t.client
    if (span === null) return
    t.client = null
    if (status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
    if (errorType !== null) {
      span.setAttribute(ATTR_ERROR_TYPE, errorType)
      span.setStatus({ code: SpanStatusCode.ERROR, message })
    }
    span.end()
  }

  mirrorStart(t: RequestTrace, info: MirrorSpanInfo): MirrorSpanHandle {
    const method = KNOWN_METHODS.has(info.method) ? info.method : '_OTHER'
    const span = this.tracer.startSpan(
      method === '_OTHER' ? 'HTTP' : method,
      { kind: SpanKind.CLIENT },
      trace.setSpan(ROOT_CONTEXT, t.server),
    )
    const { host, port } = this.#partsOf(info.endpoint)
    span.setAttributes({
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_SERVER_ADDRESS]: host,
      ...(port !== null ? { [ATTR_SERVER_PORT]: port } : {}),
      [ATTR_URL_FULL]: info.endpoint.origin + redactTarget(info.path),
      'turnout.route': info.route,
      'turnout.variant': info.variant,
      'turnout.mirror': true,
    })
    const onError = this.onError
    return {
      headers: this.propagationHeaders(span.spanContext()),
      end(outcome) {
        try {
          if (outcome.status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, outcome.status)
          const errorType = outcome.dropReason ?? (outcome.status >= 400 ? String(outcome.status) : null)
          if (errorType !== null) {
            span.setAttribute(ATTR_ERROR_TYPE, errorType)
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error?.message })
          }
          span.end()
        } catch (err) {
          onError(err)
        }
      },
    }
  }
}

/** The request observer over a RequestTracer: tracer errors are reported, never thrown. */
function tracingObserver(rt: RequestTracer): Observer {
  const guard = (fn: () => void) => {
    try {
      fn()
    } catch (err) {
      rt.onError(err)
    }
  }
  const withTrace = (ctx: RequestContext, fn: (t: RequestTrace) => void) => {
    const t = RequestTracer.stateOf(ctx)
    if (t !== null) guard(() => fn(t))
  }
  return {
    name: 'tracing',
    requestStart: (ctx) => guard(() => rt.requestStart(ctx)),
    upstreamAttempt: (ctx, attempt) => withTrace(ctx, (t) => rt.upstreamAttempt(ctx, t, attempt)),
    upstreamError: (ctx, kind, err) => withTrace(ctx, (t) => rt.upstreamError(t, kind, err)),
    requestEnd: (ctx) => withTrace(ctx, (t) => rt.requestEnd(ctx, t)),
  }
}

/** Bounded: a collector that is down must not hold the process at exit. */
async function boundedShutdown(provider: TracerProvider, ms: number, onError: (err: unknown) => void) {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    provider.shutdown().catch(onError),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms)
      timer.unref()
    }),
  ])
  clearTimeout(timer)
}

export function createTracing(settings: TracingSettings, deps: TracingDeps): TracingHandle {
  const onError = deps.onError ?? (() => {})
  const { tracer, provider } = createTracerSetup(settings, deps.onDropped)
  const rt = new RequestTracer(tracer, onError)
  return {
    settings,
    observer: tracingObserver(rt),
    startMirrorSpan(ctx, info) {
      const t = RequestTracer.stateOf(ctx)
      if (t === null) return null
      try {
        return rt.mirrorStart(t, info)
      } catch (err) {
        onError(err)
        return null
      }
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => boundedShutdown(provider, settings.timeoutMillis + 1000, onError),
  }
}
