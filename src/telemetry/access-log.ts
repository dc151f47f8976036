// The access log: one pino line per request, as an Observer. Upstream failures log at warn with the
// error kind, so each failure is one structured line. `sample` (percent) thins successful lines.
// The path's query goes through the same redaction as span attributes (telemetry/redact.ts).
import type { Logger } from 'pino'
import type { Observer, RequestContext } from '../proxy/context.js'
import { redactTarget } from './redact.js'

export function accessLogObserver(logger: Logger, samplePercent = 100): Observer {
  const sample = samplePercent / 100
  return {
    name: 'access_log',
    requestStart() {},
    upstreamAttempt() {},
    upstreamError(ctx, kind, err) {
      logger.warn(
        {
          route: ctx.route?.name,
          variant: ctx.variant,
          upstream: ctx.endpoint?.address,
          kind,
          err: err.message,
        },
        'upstream error',
      )
    },
    requestEnd(ctx: RequestContext) {
      const failed = ctx.errorKind !== null || ctx.status >= 500 || ctx.aborted
      if (!failed && sample < 1 && Math.random() >= sample) return
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
      }
      if (failed) logger.warn(line, 'request')
      else logger.info(line, 'request')
    },
  }
}
