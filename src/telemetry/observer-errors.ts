// What happens when a request observer throws: combineObservers() (core/observers.ts) keeps the
// request and the other observers going and reports here, where the error is counted
// (turnout_observer_errors_total{observer}) and logged, at most one line per interval so that an
// observer failing on every request cannot flood the log.
import type { ObserverErrorSink } from '../core/pipeline.js'
import type { Logger } from './logger.js'
import type { Metrics } from './metrics.js'

export function observerErrorReporter(
  logger: Logger,
  metrics: Pick<Metrics, 'observerError'>,
  everyMs = 60_000,
): ObserverErrorSink {
  let last = -Infinity
  let unlogged = 0
  return (observer, hook, err) => {
    metrics.observerError(observer)
    const now = performance.now()
    if (now - last < everyMs) {
      unlogged++
      return
    }
    last = now
    logger.error(
      {
        observer,
        hook,
        err: err instanceof Error ? (err.stack ?? err.message) : String(err),
        // errors since the previous line that were counted but not logged
        unlogged,
      },
      'request observer threw; the request carried on without it (see turnout_observer_errors_total)',
    )
    unlogged = 0
  }
}
