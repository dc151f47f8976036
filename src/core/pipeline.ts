// The request pipeline's shared vocabulary, one leaf module that the proxy (which runs the phases),
// routing (which compiles routes), the phase modules (faults/, mirror/) and telemetry (which observes)
// all import, and which imports none of them back:
//  - RequestContext: one object per proxied request, passed through the phases. Telemetry reads it
//    (through the Observer interface) and never touches `req`/`res` beyond reading them;
//  - Observer: the one narrow interface between the request path and telemetry;
//  - the optional per-route phases (fault, mirror): a route compiles each to an object or null, so an
//    unused phase costs one null check per request (as fastify resolves hooks at ready time);
//  - CompiledRoute and its live weight cell.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { RouteConfig, Variant } from '../config/schema.js'
import type { Reason, SplitPolicy } from '../routing/decide.js'
import type { RouteMatch } from '../routing/match-route.js'
import type { RequestView } from '../routing/request-view.js'
import type { Balancer, Endpoint } from '../upstream/endpoint.js'
import type { RetryPolicy } from '../upstream/retry.js'

/** Why Turnout refused a request because of the client (turnout_client_errors_total{kind}). */
export type RefusalKind = 'bad_request' | 'not_implemented' | 'http_version_not_supported' | 'request_timeout'

/** dns: the endpoint's host name did not resolve (a kind of its own; answered like connect, 502). */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'dns'
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

export type FaultDecision = { kind: 'delay'; ms: number } | { kind: 'abort'; status: number }

/** Fault injection: runs after the variant is decided, before the upstream is called. */
export interface FaultPhase {
  decide(ctx: RequestContext, req: RequestView): FaultDecision | null
}

/** Sees the primary's response as it streams to the client (mirror comparison). Must never throw. */
export interface ResponseTap {
  head(status: number, headers: readonly string[]): void
  chunk(buf: Buffer): void
  end(): void
  /** The live response failed or the client went away: discard what was captured. */
  abort(): void
}

/** Mirroring: runs for requests the primary serves live, at the same time as the forward. */
export interface MirrorPhase {
  /** Fires the mirror (never awaited); returns a tap for comparison, or null. */
  start(ctx: RequestContext, req: RequestView): ResponseTap | null
  /**
   * Optional (routes that mirror request bodies): called right after start() with the live request
   * body; returns the stream to forward instead (a pass-through copying chunks for the mirror), or
   * `body` itself when this request's mirror does not need it. Never changes the live flow control.
   */
  teeBody?(ctx: RequestContext, body: Readable): Readable
}

export class WeightCell {
  constructor(public canary: number) {}
}

export interface StickyCookie {
  name: string
  maxAgeSeconds: number
}

export interface CompiledRoute {
  readonly name: string
  readonly match: RouteMatch
  readonly policy: SplitPolicy
  readonly weight: WeightCell
  readonly primary: Balancer
  readonly canary: Balancer | null
  /** Set when Turnout assigns sticky ids itself. */
  readonly assignCookie: StickyCookie | null
  readonly timeouts: { readonly connect: number; readonly response: number; readonly idle: number }
  readonly exposeVariant: boolean
  /** retry: compiled (the default policy when the route has none). */
  readonly retry: RetryPolicy
  /** Canary-bound weighted and sticky requests go to the primary while the canary has no usable endpoint. */
  readonly failover: boolean
  /** Optional phases, null when the route does not use them. */
  readonly faults: FaultPhase | null
  readonly mirror: MirrorPhase | null
  /** The validated route config, for the admin API and the extension phases. */
  readonly config: RouteConfig
}
