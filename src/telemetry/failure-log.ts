// Failure lines (an upstream failing, a client refused) are logged whatever the access log setting,
// through a rate limit so a storm cannot flood the log: at most `perSecond` lines a second per kind;
// the rest are counted in turnout_log_lines_suppressed_total{kind} and summed up in one line when
// the next second's first line goes out.
import type { Observer } from '../core/pipeline.js'
import type { Logger } from './logger.js'
import type { Metrics, SuppressedLogKind } from './metrics.js'

export const FAILURE_LINES_PER_SECOND = 20

export type LogLine = (fields: Record<string, unknown>, msg: string) => void

/** A warn-level writer for one kind of failure line, limited to `perSecond` lines a second. */
export function rateLimitedWarn(
  logger: Logger,
  metrics: Metrics,
  kind: SuppressedLogKind,
  perSecond = FAILURE_LINES_PER_SECOND,
  now: () => number = () => performance.now(),
): LogLine {
  let windowStart = -Infinity
  let written = 0
  let suppressed = 0
  return (fields, msg) => {
    const t = now()
    if (t - windowStart >= 1000) {
      if (suppressed > 0) logger.warn({ kind, suppressed }, 'log lines suppressed by the rate limit')
      windowStart = t
      written = 0
      suppressed = 0
    }
    if (written < perSecond) {
      written++
      logger.warn(fields, msg)
      return
    }
    suppressed++
    metrics.logSuppressed(kind, 1)
  }
}

/** Logs each upstream failure (route, variant, endpoint, kind, error), rate-limited. */
export function upstreamErrorLog(line: LogLine): Observer {
  return {
    name: 'upstream_error_log',
    requestStart() {},
    upstreamAttempt() {},
    upstreamError(ctx, kind, err) {
      line(
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
    requestEnd() {},
  }
}
