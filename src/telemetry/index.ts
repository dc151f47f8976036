// Builds the request Observer for a config: metrics, traces and the access log, plus the recording
// handles the rest of Turnout uses (`metrics` for reloads and rollouts, `mirrorRecorder` for the mirror).
//
// metrics.enabled: false → no metrics observer, no /metrics endpoint (404), no process metrics, and
// `metrics` is the no-op handle. Tracing is off unless the config or the OTEL_* environment turns it
// on (see tracing.ts); when off nothing of it runs per request.

import type { AdminServer } from '../admin/server.js'
import type { Config } from '../config/schema.js'
import { combineObservers } from '../core/observers.js'
import type { CompiledRoute, Observer, ObserverErrorSink } from '../core/pipeline.js'
import type { MirrorRecorder } from '../mirror/recorder.js'
import type { HealthRegistry } from '../upstream/health.js'
import { accessLogObserver } from './access-log.js'
import { rateLimitedWarn, upstreamErrorLog } from './failure-log.js'
import type { Logger } from './logger.js'
import { type Metrics, noopMetrics, TurnoutMetrics } from './metrics.js'
import { observerErrorReporter } from './observer-errors.js'
import { registerResilienceMetrics } from './resilience-metrics.js'
import { resolveTracingSettings, type TracingSettings } from './tracing/settings.js'
import type { TracingHandle } from './tracing/types.js'

export type { Metrics } from './metrics.js'
export { TelemetryConfigError } from './tracing/settings.js'

export interface Telemetry {
  /** Metrics, traces and access log, each call isolated (see combineObservers). */
  observer: Observer
  /** Counts and logs (rate-limited) an exception a request observer threw. */
  observerErrors: ObserverErrorSink
  /** Recording handle for reloads, rollouts and the like (no-op when metrics are disabled). */
  metrics: Metrics
  /** What the mirror reports: its metric families and a CLIENT span per mirror when tracing is on. */
  mirrorRecorder: MirrorRecorder
  /** The tracing settings in force, or null when tracing is off. */
  tracing: TracingSettings | null
  /** Registers admin endpoints (GET /metrics). */
  mount(admin: AdminServer): void
  shutdown(): Promise<void>
}

export interface TelemetryOptions {
  /** The live route table's routes (turnout_canary_weight reads their weights at scrape time). */
  table?: () => { readonly routes: readonly CompiledRoute[] }
  /** Where OTEL_* come from (default process.env). */
  env?: Record<string, string | undefined>
  /** Endpoint health and resilience counters (the turnout_endpoint_* and retry/failover families). */
  health?: HealthRegistry
}

/** At most one line per minute for a recurring problem. */
function throttled(fn: (count: number) => void, everyMs = 60_000): (count: number) => void {
  let last = -Infinity
  let pending = 0
  return (count) => {
    pending += count
    const now = performance.now()
    if (now - last < everyMs) return
    last = now
    fn(pending)
    pending = 0
  }
}

/** Loads the tracing modules (only now: they cost a few hundred ms) and starts the tracer. */
async function startTracing(
  settings: TracingSettings,
  logger: Logger,
  metrics: Metrics,
): Promise<TracingHandle> {
  const warnDropped = throttled((count) =>
    logger.warn(
      { url: settings.url, spans: count },
      'trace spans dropped (export failed or queue full); see turnout_telemetry_dropped_spans_total',
    ),
  )
  const warnError = throttled((count) =>
    logger.warn({ count }, 'tracing internal errors (spans may be incomplete)'),
  )
  const { createTracing } = await import('./tracing/observer.js')
  const tracing = createTracing(settings, {
    onDropped: (count) => {
      metrics.droppedSpans(count)
      warnDropped(count)
    },
    onError: (err) => {
      logger.debug({ err: (err as Error).message }, 'tracing internal error')
      warnError(1)
    },
  })
  const { url, protocol, sampler, ratio, serviceName } = settings
  logger.info({ url, protocol, sampler, ratio, serviceName }, 'tracing enabled')
  return tracing
}

/**
 * Throws TelemetryConfigError when an OTEL_* variable cannot be read. The OpenTelemetry SDK is
 * imported only when tracing is on (it costs a few hundred ms of start-up otherwise spent by all).
 */
export async function createTelemetry(
  config: Config,
  logger: Logger,
  opts: TelemetryOptions = {},
): Promise<Telemetry> {
  const settings = resolveTracingSettings(config.tracing, opts.env ?? process.env)
  const table = opts.table ?? (() => ({ routes: [] }))

  const registry = config.metrics.enabled ? new TurnoutMetrics({ table }) : null
  const metrics: Metrics = registry ?? noopMetrics
  if (registry !== null && opts.health !== undefined)
    registerResilienceMetrics(registry.registry, opts.health)

  const tracing = settings.enabled ? await startTracing(settings, logger, metrics) : null

  const observers: Observer[] = []
  if (registry !== null) observers.push(registry.observer)
  if (tracing !== null) observers.push(tracing.observer)
  observers.push(upstreamErrorLog(rateLimitedWarn(logger, metrics, 'upstream_error')))
  if (config.accessLog.enabled) observers.push(accessLogObserver(logger, config.accessLog.sample))

  const tracer = tracing
  const mirrorRecorder: MirrorRecorder = {
    request: (route, variant, code, seconds) => metrics.mirrorRequest(route, variant, code, seconds),
    dropped: (route, reason) => metrics.mirrorDropped(route, reason),
    comparison: (route, result) => metrics.mirrorComparison(route, result),
    mismatch: (route, field) => metrics.mirrorMismatch(route, field),
    ...(tracer !== null ? { mirrorStart: (ctx, info) => tracer.startMirrorSpan(ctx, info) } : {}),
  }

  const observerErrors = observerErrorReporter(logger, metrics)
  return {
    observer: combineObservers(observers, observerErrors),
    observerErrors,
    metrics,
    mirrorRecorder,
    tracing: tracing?.settings ?? null,
    mount(admin) {
      if (registry === null) return
      admin.route('GET', '/metrics', async ({ res }) => {
        const text = await registry.text()
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
        res.end(text)
      })
    },
    async shutdown() {
      await tracing?.shutdown()
    },
  }
}
