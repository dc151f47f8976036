// What the mirror phase reports, as a narrow interface telemetry implements: the five metric families
// of the mirror (names are a contract) and an optional hook for the mirror's CLIENT span.
//   request()    → turnout_mirror_requests_total{route,variant,code} and
//                  turnout_mirror_request_duration_seconds{route,variant} (answers read to the end)
//   dropped()    → turnout_mirror_dropped_total{route,reason}
//   comparison() → turnout_mirror_comparisons_total{route,result}
//   mismatch()   → turnout_mirror_mismatches_total{route,field}
// `variant` is 'canary' for mirrors and 'primary' for noise replays. Implementations must be cheap
// and must not throw (the mirror catches anyway, and never lets it reach the live request).
import type { Variant } from '../config/schema.js'
import type { RequestContext } from '../core/pipeline.js'
import type { Endpoint } from '../upstream/endpoint.js'
import type { DiffField } from './compare.js'
import type { ComparisonResult } from './noise.js'

export type DropReason = 'in_flight_limit' | 'body_too_large' | 'timeout' | 'upstream_error'

/** One mirror (or noise replay) about to be sent, for the span hook. */
export interface MirrorSendInfo {
  route: string
  variant: Variant
  endpoint: Endpoint
  method: string
  /** Path and query sent upstream (the endpoint's base path included). */
  path: string
}

/** How a sent mirror ended, for the span hook. */
export interface MirrorOutcome {
  /** The upstream's status; 0 when there was no complete answer. */
  status: number
  /** Set when the mirror yielded no usable answer. */
  dropReason: 'timeout' | 'upstream_error' | null
  error: Error | null
  durationSeconds: number
}

/** A span (or anything) opened for one mirror; `end` is called exactly once. */
export interface MirrorSpan {
  /**
   * Headers appended to the mirror request INSTEAD of ctx.upstreamHeaders (flat name/value list),
   * e.g. a traceparent naming this CLIENT span; null keeps ctx.upstreamHeaders (the live request's
   * traceparent, so the trace id is the same either way).
   */
  readonly headers: readonly string[] | null
  end(outcome: MirrorOutcome): void
}

export interface MirrorRecorder {
  request(route: string, variant: Variant, code: number, durationSeconds: number): void
  dropped(route: string, reason: DropReason): void
  comparison(route: string, result: ComparisonResult): void
  mismatch(route: string, field: DiffField): void
  /**
   * Optional: called when a mirror is sent, while the live request's context (and the tracing
   * observer's state in ctx.observerState) is at hand. The tracing side opens a CLIENT span, child
   * of the live SERVER span, with `turnout.mirror=true`.
   */
  mirrorStart?(ctx: RequestContext, info: MirrorSendInfo): MirrorSpan | null
}

export const noopMirrorRecorder: MirrorRecorder = {
  request() {},
  dropped() {},
  comparison() {},
  mismatch() {},
}
