// The access log: one pino line per request, as an Observer. `sample` (percent) thins successful
// lines. (Upstream failures get their own line whatever this setting: failure-log.ts.) The path's
// query goes through the same redaction as span attributes (telemetry/redact.ts).
import type { Logger } from 'pino'
import type { Observer, RequestContext } from '../core/pipeline.js'
import { redactTarget } from './redact.js'

export function accessLogObserver(logger: Logger, samplePercent = 100): Observer {
  const sample = samplePercent / 100
  return {
    name: 'access_log',
    requestStart() {},
    upstreamAttempt() {},
    upstreamError() {},
    requestEnd(ctx: RequestContext) {
      const failed = ctx.errorKind !== null || ctx.status >= 500 || ctx.aborted
      // A retried request is always logged, with its tries: how many, and to which endpoints.
      if (!failed && ctx.tried === null && sample < 1 && Math.random() >= sample) return
      const req = ctx.req
      const line = {
        route: ctx.route?.name ?? null,
        variant: ctx.route ? ctx.variant : null,
        reason: ctx.route ? ctx.reason : null,
        method: req.method,
        // Signed-URL credentials redacted as in traces.
        path: req.url === undefined ? undefined : redactTarget(req.url),
        status: ctx.status,
        bytes: ctx.bytesOut,
        durationMs: Math.round((performance.now() - ctx.start) * 1000) / 1000,
        upstream: ctx.endpoint?.address ?? null,
        error: ctx.errorKind,
        fault: ctx.fault,
        aborted: ctx.aborted,
        ...(ctx.tried !== null ? { attempts: ctx.attempts, upstreams: ctx.tried } : {}),
        ...(ctx.failover ? { failover: true } : {}),
      }
      if (failed) logger.warn(line, 'request')
      else logger.info(line, 'request')
    },
  }
}
