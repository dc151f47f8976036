// One object per proxied request, created by the handler and passed through the phases. Telemetry
// reads it (through the Observer interface) and never touches `req`/`res` beyond reading them.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Variant } from '../config/schema.js'
import type { Reason } from '../routing/decide.js'
import type { CompiledRoute } from '../routing/table.js'
import type { Endpoint } from '../upstream/endpoint.js'
import type { RefusalKind } from './admit.js'

export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'protocol'
export type FaultKind = 'delay' | 'abort'

export class RequestContext {
  route: CompiledRoute | null = null
  variant: Variant = 'primary'
  reason: Reason = 'weight'
  endpoint: Endpoint | null = null
  /** Upstream tries so far (1 unless retried). */
  attempts = 1
  /** The endpoints tried, in order (host:port), once the request was retried; null otherwise. */
  tried: string[] | null = null
  /** The canary had no usable endpoint and this canary-bound request went to the primary. */
  failover = false
  /**
   * The variant the request started as (requestStart) when it failed over after its first try;
   * null otherwise. Its in-flight count belongs to that variant.
   */
  switchedFrom: Variant | null = null
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
  /** Extra request headers for the upstream (flat name/value list), e.g. traceparent from tracing. */
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
 * rollout windows). Implementations must never throw and must be cheap: they run on every request.
 */
export interface Observer {
  /** A route matched and the variant is decided; the upstream has not been called yet. */
  requestStart(ctx: RequestContext): void
  /** An upstream attempt begins (attempt 1, or 2 for the one retry on a fresh connection). */
  upstreamAttempt(ctx: RequestContext, attempt: number): void
  /** The upstream attempt failed before or during the response. */
  upstreamError(ctx: RequestContext, kind: UpstreamErrorKind, err: Error): void
  /** The exchange is over: response finished, or the client went away. Called exactly once. */
  requestEnd(ctx: RequestContext): void
}

export const noopObserver: Observer = {
  requestStart() {},
  upstreamAttempt() {},
  upstreamError() {},
  requestEnd() {},
}

/** Fans out to several observers; a throwing observer is isolated from the others and the request. */
export function combineObservers(list: readonly Observer[]): Observer {
  if (list.length === 0) return noopObserver
  if (list.length === 1) return list[0]!
  return {
    requestStart(ctx) {
      for (const o of list) o.requestStart(ctx)
    },
    upstreamAttempt(ctx, attempt) {
      for (const o of list) o.upstreamAttempt(ctx, attempt)
    },
    upstreamError(ctx, kind, err) {
      for (const o of list) o.upstreamError(ctx, kind, err)
    },
    requestEnd(ctx) {
      for (const o of list) o.requestEnd(ctx)
    },
  }
}
