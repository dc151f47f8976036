// One object per proxied request, created by the handler and passed through the phases. Telemetry
// reads it (through the Observer interface) and never touches `req`/`res` beyond reading them.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Variant } from '../config/schema.js'
import type { Reason } from '../routing/decide.js'
import type { CompiledRoute } from '../routing/table.js'
import type { Endpoint } from '../upstream/endpoint.js'
import type { RefusalKind } from './admit.js'

/** dns: the endpoint's host name did not resolve (a kind of its own; answered like connect, 502). */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'dns'
export type FaultKind = 'delay' | 'abort'

export class RequestContext {
  route: CompiledRoute | null = null
  variant: Variant = 'primary'
  reason: Reason = 'weight'
  endpoint: Endpoint | null = null
  /** Status sent to the client (0 until the head is written). */
  status = 0
  /** Response body bytes sent to the client. */
  bytesOut = 0
  /** Set when the upstream failed; the status is then Turnout's own 502/504 (or the client went away). */
  errorKind: UpstreamErrorKind | null = null
  /** Injected fault, when a fault rule fired. */
  fault: FaultKind | null = null
  /** The client closed the connection before the response finished. */
  aborted = false
  /**
   * Set when Turnout refused the request because of the client after its variant was decided (a
   * header undici will not send, an upload that stalled). Such a request is the client's fault: it
   * is counted in turnout_client_errors_total and kept out of the variant's golden signals.
   */
  refused: RefusalKind | null = null
  /**
   * Extra request headers for the upstream (flat name/value list), e.g. traceparent from tracing;
   * read per upstream attempt, after Observer.upstreamAttempt.
   */
  upstreamHeaders: string[] | null = null
  /** Free slot for the observer (span handles and the like). */
  observerState: unknown = null

  constructor(
    readonly req: IncomingMessage,
    /** The client response; null for an Upgrade request, whose socket is tunnelled instead. */
    readonly res: ServerResponse | null,
    /** performance.now() when the request arrived. */
    readonly start: number,
  ) {}
}

/**
 * The one narrow interface between the request path and telemetry (metrics, traces, access log,
 * rollout windows). Implementations should never throw and must be cheap: they run on every request.
 * The request path only ever calls an observer through combineObservers(), which isolates each call.
 */
export interface Observer {
  /** Names the observer in turnout_observer_errors_total and in the log (e.g. `tracing`). */
  readonly name?: string
  /** A route matched and the variant is decided; the upstream has not been called yet. */
  requestStart(ctx: RequestContext): void
  /**
   * An upstream attempt begins (attempt 1, or 2 for the one retry on a fresh connection). The
   * forward phase builds this attempt's upstream headers after this call, from ctx.upstreamHeaders:
   * an observer may set them here (tracing names this attempt's CLIENT span in traceparent).
   */
  upstreamAttempt(ctx: RequestContext, attempt: number): void
  /** The upstream attempt failed before or during the response. */
  upstreamError(ctx: RequestContext, kind: UpstreamErrorKind, err: Error): void
  /** The exchange is over: response finished, or the client went away. Called exactly once. */
  requestEnd(ctx: RequestContext): void
}

export type ObserverHook = 'requestStart' | 'upstreamAttempt' | 'upstreamError' | 'requestEnd'

/** Told about every exception an observer threw (the request carried on without it). */
export type ObserverErrorSink = (observer: string, hook: ObserverHook, err: unknown) => void

export const noopObserver: Observer = {
  requestStart() {},
  upstreamAttempt() {},
  upstreamError() {},
  requestEnd() {},
}

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
