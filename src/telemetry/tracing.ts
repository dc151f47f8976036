// OpenTelemetry traces, created by Turnout's own code (no auto-instrumentation): one SERVER span per
// proxied request and one CLIENT span (its child) per upstream attempt, named and attributed per the
// HTTP semantic conventions, plus turnout.route / turnout.variant (both) and turnout.decision (SERVER).
// W3C traceparent/tracestate are continued from the client and sent to the upstream, naming the CLIENT
// span of the first attempt as the parent.
//
// Built on the SDK's lower layers (@opentelemetry/sdk-trace: TracerProvider, BatchSpanProcessor,
// samplers; OTLP/HTTP exporters), not NodeSDK, so nothing else is instrumented and nothing global is
// registered. Sampling happens first: an unsampled request gets a non-recording span (no attributes,
// no export) and still propagates its context with the sampled flag off.
//
// Export is batched and never on the request path: a collector that is down or slow only fills the
// bounded queue; spans that cannot be delivered (failed export batches, queue overflow) are counted
// through `onDropped` (turnout_telemetry_dropped_spans_total).
import { readFileSync } from 'node:fs'
import {
  type Attributes,
  type Context,
  type Counter,
  createNoopMeter,
  type Meter,
  type MeterProvider,
  type MetricOptions,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api'
import {
  type ExportResult,
  ExportResultCode,
  parseKeyPairsIntoRecord,
  W3CTraceContextPropagator,
} from '@opentelemetry/core'
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'
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
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions'
import type { Config } from '../config/schema.js'
import type { Observer, RequestContext, UpstreamErrorKind } from '../proxy/context.js'
import type { Endpoint } from '../upstream/endpoint.js'

// ---- settings: config block + OTEL_* environment -------------------------------------------------

/** An OTEL_* value Turnout cannot read: a startup error naming the variable. */
export class TelemetryConfigError extends Error {
  readonly code = 'TURNOUT_ERR_TELEMETRY_CONFIG'
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'TelemetryConfigError'
  }
}

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const
export type SamplerName = (typeof SAMPLERS)[number]
export type OtlpProtocol = 'http/protobuf' | 'http/json'

export interface TracingSettings {
  enabled: boolean
  /** Full URL the spans are POSTed to (…/v1/traces). */
  url: string
  protocol: OtlpProtocol
  sampler: SamplerName
  /** For the ratio samplers, 0..1. */
  ratio: number
  serviceName: string
  resourceAttributes: Record<string, string>
  headers: Record<string, string>
  /** One export request's deadline, retries included (ms). */
  timeoutMillis: number
  batch: {
    maxQueueSize: number
    maxExportBatchSize: number
    scheduledDelayMillis: number
    exportTimeoutMillis: number
  }
}

const DEFAULT_ENDPOINT = 'http://localhost:4318'

type Env = Record<string, string | undefined>

function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim()
  return v === undefined || v === '' ? undefined : v
}

function tracesUrl(base: string): string {
  return base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`
}

function httpUrl(env: Env, name: string): string | undefined {
  const v = envValue(env, name)
  if (v === undefined) return undefined
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw new TelemetryConfigError(name, `"${v}" is not a URL; expected one like http://collector:4318`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TelemetryConfigError(name, `"${v}" must be an http:// or https:// URL (OTLP over HTTP)`)
  }
  return v
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const v = envValue(env, name)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new TelemetryConfigError(
      name,
      `"${v}" must be a whole number${min > 0 ? ` of at least ${min}` : ''}`,
    )
  }
  return Number(v)
}

/**
 * The tracing settings from the config's `tracing:` block and the OTEL_* environment; the config wins.
 * On: `tracing.enabled: true`, or (when `enabled` is not set) an endpoint in the config or in
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT unless OTEL_SDK_DISABLED=true. `tracing.enabled: false` turns
 * tracing off without reading the environment. Throws TelemetryConfigError for an unreadable value.
 */
export function resolveTracingSettings(config: Config['tracing'], env: Env): TracingSettings {
  const off = (): TracingSettings => ({
    enabled: false,
    url: tracesUrl(DEFAULT_ENDPOINT),
    protocol: 'http/protobuf',
    sampler: 'parentbased_always_on',
    ratio: 1,
    serviceName: 'turnout',
    resourceAttributes: {},
    headers: {},
    timeoutMillis: 10_000,
    batch: {
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: 5000,
      exportTimeoutMillis: 30_000,
    },
  })
  if (config?.enabled === false) return off()

  const disabledRaw = envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase()
  if (disabledRaw !== undefined && disabledRaw !== 'true' && disabledRaw !== 'false') {
    throw new TelemetryConfigError('OTEL_SDK_DISABLED', `"${disabledRaw}" must be true or false`)
  }
  const tracesEndpoint = httpUrl(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const baseEndpoint = httpUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')

  let protocol: OtlpProtocol = 'http/protobuf'
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const v = envValue(env, name)
    if (v === undefined) continue
    if (v !== 'http/protobuf' && v !== 'http/json') {
      throw new TelemetryConfigError(
        name,
        `"${v}" is not supported; use http/protobuf or http/json${v === 'grpc' ? ' (Turnout exports OTLP over HTTP only)' : ''}`,
      )
    }
    protocol = v
    break
  }

  let sampler: SamplerName = 'parentbased_always_on'
  let ratio = 1
  const samplerRaw = envValue(env, 'OTEL_TRACES_SAMPLER')
  if (samplerRaw !== undefined) {
    if (!(SAMPLERS as readonly string[]).includes(samplerRaw)) {
      throw new TelemetryConfigError(
        'OTEL_TRACES_SAMPLER',
        `"${samplerRaw}" is not a sampler Turnout knows; use one of ${SAMPLERS.join(', ')}`,
      )
    }
    sampler = samplerRaw as SamplerName
  }
  if (sampler.endsWith('traceidratio')) {
    const arg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG')
    if (arg !== undefined) {
      const n = Number(arg)
      if (!/^[0-9.eE+-]+$/.test(arg) || !Number.isFinite(n) || n < 0 || n > 1) {
        throw new TelemetryConfigError(
          'OTEL_TRACES_SAMPLER_ARG',
          `"${arg}" must be a sampling ratio from 0 to 1`,
        )
      }
      ratio = n
    }
  }
  if (config?.sampleRatio !== undefined) {
    sampler = 'parentbased_traceidratio'
    ratio = config.sampleRatio
  }

  const timeoutMillis = integer(
    env,
    envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'
      : 'OTEL_EXPORTER_OTLP_TIMEOUT',
    10_000,
    1,
  )
  const maxQueueSize = integer(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1)
  const batch = {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, integer(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1)),
    scheduledDelayMillis: integer(env, 'OTEL_BSP_SCHEDULE_DELAY', 5000, 0),
    // Past the exporter's own deadline, so a batch's outcome is always known (and counted).
    exportTimeoutMillis: Math.max(integer(env, 'OTEL_BSP_EXPORT_TIMEOUT', 30_000, 1), timeoutMillis + 1000),
  }

  const resourceAttributes = parseKeyPairsIntoRecord(envValue(env, 'OTEL_RESOURCE_ATTRIBUTES'))
  const headers = {
    ...parseKeyPairsIntoRecord(envValue(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    ...parseKeyPairsIntoRecord(envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  }
  const serviceName =
    config?.serviceName ??
    envValue(env, 'OTEL_SERVICE_NAME') ??
    resourceAttributes['service.name'] ??
    'turnout'

  const url =
    config?.endpoint !== undefined
      ? tracesUrl(config.endpoint)
      : (tracesEndpoint ??
        (baseEndpoint !== undefined ? tracesUrl(baseEndpoint) : tracesUrl(DEFAULT_ENDPOINT)))
  const enabled =
    config?.enabled ??
    (disabledRaw !== 'true' &&
      (config?.endpoint !== undefined || tracesEndpoint !== undefined || baseEndpoint !== undefined))

  return {
    enabled,
    url,
    protocol,
    sampler,
    ratio,
    serviceName,
    resourceAttributes,
    headers,
    timeoutMillis,
    batch,
  }
}

export function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio)
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

// ---- dropped-span accounting ---------------------------------------------------------------------

/** Counts the spans of every export batch that did not succeed. */
export class CountingExporter implements SpanExporter {
  constructor(
    readonly inner: SpanExporter,
    readonly onDropped: (count: number) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.onDropped(spans.length)
      done(result)
    })
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown()
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve()
  }
}

// The BatchSpanProcessor reports its queue overflow only through its self-observability counter
// (otel.sdk.processor.span.processed with error.type=queue_full); this meter provider listens to
// exactly that and hands everything else to a no-op meter.
const PROCESSED = 'otel.sdk.processor.span.processed'

class QueueFullMeter implements Meter {
  readonly #noop = createNoopMeter()
  constructor(readonly onDropped: (count: number) => void) {}

  createCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): Counter<A> {
    if (name !== PROCESSED) return this.#noop.createCounter<A>(name, options)
    const onDropped = this.onDropped
    return {
      add(value: number, attributes?: A) {
        if (attributes?.[ATTR_ERROR_TYPE] === 'queue_full') onDropped(value)
      },
    }
  }
  createGauge: Meter['createGauge'] = (n, o) => this.#noop.createGauge(n, o)
  createHistogram: Meter['createHistogram'] = (n, o) => this.#noop.createHistogram(n, o)
  createUpDownCounter: Meter['createUpDownCounter'] = (n, o) => this.#noop.createUpDownCounter(n, o)
  createObservableGauge: Meter['createObservableGauge'] = (n, o) => this.#noop.createObservableGauge(n, o)
  createObservableCounter: Meter['createObservableCounter'] = (n, o) =>
    this.#noop.createObservableCounter(n, o)
  createObservableUpDownCounter: Meter['createObservableUpDownCounter'] = (n, o) =>
    this.#noop.createObservableUpDownCounter(n, o)
  addBatchObservableCallback: Meter['addBatchObservableCallback'] = (c, o) =>
    this.#noop.addBatchObservableCallback(c, o)
  removeBatchObservableCallback: Meter['removeBatchObservableCallback'] = (c, o) =>
    this.#noop.removeBatchObservableCallback(c, o)
}

function queueFullMeterProvider(onDropped: (count: number) => void): MeterProvider {
  const meter = new QueueFullMeter(onDropped)
  return { getMeter: () => meter }
}

/**
 * Random ids, except that the next span id can be chosen in advance: the traceparent sent upstream
 * is built in requestStart (before the forward phase builds the upstream headers) and must name the
 * CLIENT span that upstreamAttempt creates later.
 */
class PresetSpanIds implements IdGenerator {
  readonly #random = new RandomIdGenerator()
  next: string | null = null
  generateTraceId(): string {
    return this.#random.generateTraceId()
  }
  generateSpanId(): string {
    const id = this.next
    if (id === null) return this.#random.generateSpanId()
    this.next = null
    return id
  }
}

// ---- the observer --------------------------------------------------------------------------------

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
const SENSITIVE_QUERY = /(^|&)(AWSAccessKeyId|Signature|sig|X-Goog-Signature)=[^&]*/g

/** Query values the HTTP semantic conventions say to redact (signed-URL credentials). */
export function redactQuery(query: string): string {
  return query.replace(SENSITIVE_QUERY, '$1$2=REDACTED')
}

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
    /** Span id promised to the upstream in traceparent, for the first CLIENT span. */
    readonly firstClientSpanId: string,
    readonly method: string,
  ) {}
}

export interface TracingHandle {
  readonly settings: TracingSettings
  readonly observer: Observer
  /** Opens a CLIENT span for a mirrored request (child of the live SERVER span), or null. */
  startMirrorSpan(ctx: RequestContext, info: MirrorSpanInfo): MirrorSpanHandle | null
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
}

export interface MirrorSpanInfo {
  route: string
  variant: 'primary' | 'canary'
  endpoint: Endpoint
  method: string
  path: string
}

export interface MirrorSpanHandle {
  readonly headers: readonly string[]
  end(outcome: { status: number; dropReason: string | null; error: Error | null }): void
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export interface TracingDeps {
  /** Spans that could not be delivered. */
  onDropped: (count: number) => void
  /** Internal errors of the tracer (never thrown into the request path). */
  onError?: (err: unknown) => void
}

export function createTracing(settings: TracingSettings, deps: TracingDeps): TracingHandle {
  const onDropped = deps.onDropped
  const onError = deps.onError ?? (() => {})
  const exporterConfig = {
    url: settings.url,
    headers: settings.headers,
    timeoutMillis: settings.timeoutMillis,
  }
  const exporter = new CountingExporter(
    settings.protocol === 'http/json'
      ? new OTLPJsonTraceExporter(exporterConfig)
      : new OTLPProtoTraceExporter(exporterConfig),
    onDropped,
  )
  const processor = new BatchSpanProcessor({
    exporter,
    ...settings.batch,
    selfObsMeterProvider: queueFullMeterProvider(onDropped),
  })
  const ids = new PresetSpanIds()
  const provider = new TracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...settings.resourceAttributes,
        [ATTR_SERVICE_NAME]: settings.serviceName,
        [ATTR_SERVICE_VERSION]: settings.resourceAttributes[ATTR_SERVICE_VERSION] ?? version(),
      }),
    ),
    sampler: createSampler(settings.sampler, settings.ratio),
    idGenerator: ids,
    spanProcessors: [processor],
  })
  const tracer = provider.getTracer('turnout', version())
  const propagator = new W3CTraceContextPropagator()
  const endpointParts = new WeakMap<Endpoint, { host: string; port: number | null }>()
  const partsOf = (ep: Endpoint) => {
    let p = endpointParts.get(ep)
    if (p === undefined) {
      p = splitHostPort(ep.address)
      endpointParts.set(ep, p)
    }
    return p
  }

  /** traceparent (+ tracestate) naming `spanId` in the trace of `sc`. */
  const propagationHeaders = (sc: SpanContext, spanId: string): string[] => {
    const out: string[] = []
    propagator.inject(trace.setSpanContext(ROOT_CONTEXT, { ...sc, spanId }), out, flatSetter)
    return out
  }

  const stateOf = (ctx: RequestContext): RequestTrace | null =>
    ctx.observerState instanceof RequestTrace ? ctx.observerState : null

  const startClient = (ctx: RequestContext, t: RequestTrace, attempt: number) => {
    const ep = ctx.endpoint
    if (attempt === 1) ids.next = t.firstClientSpanId
    const parent: Context = trace.setSpan(ROOT_CONTEXT, t.server)
    const span = tracer.startSpan(
      t.method === '_OTHER' ? 'HTTP' : t.method,
      { kind: SpanKind.CLIENT },
      parent,
    )
    ids.next = null
    const attrs: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: t.method,
      'turnout.route': ctx.route!.name,
      'turnout.variant': ctx.variant,
    }
    if (t.method === '_OTHER') attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = ctx.req.method ?? ''
    if (attempt > 1) attrs[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1
    if (ep !== null) {
      const { host, port } = partsOf(ep)
      attrs[ATTR_SERVER_ADDRESS] = host
      if (port !== null) attrs[ATTR_SERVER_PORT] = port
      const target = ctx.req.url ?? '/'
      const q = target.indexOf('?')
      attrs[ATTR_URL_FULL] =
        ep.origin +
        ep.basePath +
        (q === -1 ? target : `${target.slice(0, q)}?${redactQuery(target.slice(q + 1))}`)
    }
    span.setAttributes(attrs)
    t.client = span
    t.attempt = attempt
  }

  const endClient = (t: RequestTrace, status: number, errorType: string | null, message?: string) => {
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

  const observer: Observer = {
    name: 'tracing',
    requestStart(ctx) {
      try {
        const req = ctx.req
        const parentCtx = propagator.extract(ROOT_CONTEXT, req.headers, headerGetter)
        const rawMethod = req.method ?? 'GET'
        const method = KNOWN_METHODS.has(rawMethod) ? rawMethod : '_OTHER'
        const server = tracer.startSpan(
          method === '_OTHER' ? 'HTTP' : method,
          { kind: SpanKind.SERVER, startTime: ctx.start },
          parentCtx,
        )
        const sc = server.spanContext()
        if (!server.isRecording()) {
          // Not sampled: no span to fill, but the upstream still joins the trace (sampled flag off).
          const h = propagationHeaders(sc, sc.spanId)
          if (ctx.upstreamHeaders === null) ctx.upstreamHeaders = h
          else ctx.upstreamHeaders.push(...h)
          return
        }
        const t = new RequestTrace(server, ids.generateSpanId(), method)
        ctx.observerState = t
        const h = propagationHeaders(sc, t.firstClientSpanId)
        if (ctx.upstreamHeaders === null) ctx.upstreamHeaders = h
        else ctx.upstreamHeaders.push(...h)

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
        if (method === '_OTHER') attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = rawMethod
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
        server.setAttributes(attrs)
      } catch (err) {
        onError(err)
      }
    },
    upstreamAttempt(ctx, attempt) {
      const t = stateOf(ctx)
      if (t === null) return
      try {
        endClient(t, 0, 'superseded')
        startClient(ctx, t, attempt)
      } catch (err) {
        onError(err)
      }
    },
    upstreamError(ctx, kind: UpstreamErrorKind, err) {
      const t = stateOf(ctx)
      if (t === null) return
      try {
        endClient(t, 0, kind, err.message)
      } catch (e) {
        onError(e)
      }
    },
    requestEnd(ctx) {
      const t = stateOf(ctx)
      if (t === null) return
      try {
        // The last attempt ends with the exchange: its status is the upstream's unless Turnout answered.
        if (t.client !== null) {
          const status = ctx.errorKind === null ? ctx.status : 0
          endClient(t, status, status >= 400 ? String(status) : ctx.aborted ? 'cancelled' : null)
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
      } catch (err) {
        onError(err)
      }
    },
  }

  return {
    settings,
    observer,
    startMirrorSpan(ctx, info) {
      const t = stateOf(ctx)
      if (t === null) return null
      try {
        const span = tracer.startSpan(
          KNOWN_METHODS.has(info.method) ? info.method : 'HTTP',
          { kind: SpanKind.CLIENT },
          trace.setSpan(ROOT_CONTEXT, t.server),
        )
        const { host, port } = partsOf(info.endpoint)
        const q = info.path.indexOf('?')
        span.setAttributes({
          [ATTR_HTTP_REQUEST_METHOD]: KNOWN_METHODS.has(info.method) ? info.method : '_OTHER',
          [ATTR_SERVER_ADDRESS]: host,
          ...(port !== null ? { [ATTR_SERVER_PORT]: port } : {}),
          [ATTR_URL_FULL]:
            info.endpoint.origin +
            (q === -1 ? info.path : `${info.path.slice(0, q)}?${redactQuery(info.path.slice(q + 1))}`),
          'turnout.route': info.route,
          'turnout.variant': info.variant,
          'turnout.mirror': true,
        })
        const headers = propagationHeaders(span.spanContext(), span.spanContext().spanId)
        return {
          headers,
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
      } catch (err) {
        onError(err)
        return null
      }
    },
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      // Bounded: a collector that is down must not hold the process at exit.
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        provider.shutdown().catch(onError),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, settings.timeoutMillis + 1000)
          timer.unref()
        }),
      ])
      clearTimeout(timer)
    },
  }
}
