// Fans the request path's events out to several observers, each call isolated: an observer that
// throws is reported and skipped, and neither the request nor the other observers notice.
import { noopObserver, type Observer, type ObserverErrorSink, type ObserverHook } from './pipeline.js'

/**
 * Fans out to the observers in order. Every call is isolated, also for a single observer: a throw is
 * handed to `onError` and neither the other observers, the request nor the process see it (some
 * hooks run in socket 'close' listeners, outside any request guard, where a throw would be uncaught).
 */
export function combineObservers(list: readonly Observer[], onError: ObserverErrorSink): Observer {
  if (list.length === 0) return noopObserver
  const names = list.map((o, i) => o.name ?? `observer_${i}`)
  const failed = (i: number, hook: ObserverHook, err: unknown) => {
    try {
      onError(names[i]!, hook, err)
    } catch {
      // A failing error sink must not undo the isolation.
    }
  }
  return {
    requestStart(ctx) {
      for (let i = 0; i < list.length; i++) {
        try {
          list[i]!.requestStart(ctx)
        } catch (err) {
          failed(i, 'requestStart', err)
        }
      }
    },
    upstreamAttempt(ctx, attempt) {
      for (let i = 0; i < list.length; i++) {
        try {
          list[i]!.upstreamAttempt(ctx, attempt)
        } catch (err) {
          failed(i, 'upstreamAttempt', err)
        }
      }
    },
    upstreamError(ctx, kind, err) {
      for (let i = 0; i < list.length; i++) {
        try {
          list[i]!.upstreamError(ctx, kind, err)
        } catch (e) {
          failed(i, 'upstreamError', e)
        }
      }
    },
    requestEnd(ctx) {
      for (let i = 0; i < list.length; i++) {
        try {
          list[i]!.requestEnd(ctx)
        } catch (err) {
          failed(i, 'requestEnd', err)
        }
      }
    },
  }
}
