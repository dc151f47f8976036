// Retry policy, pure: which failures a route retries (retry.on), the retry budget, the backoff.
// Compiled once per table from `retry:`; a route without one keeps Turnout's old behaviour (one retry
// after a reset on a pooled connection, for body-less idempotent requests).
import type { RetryConfig } from '../config/schema.js'

/** The upstream failure kinds (core/pipeline.ts's UpstreamErrorKind, repeated to keep this module a leaf). */
type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'dns'

export interface RetryPolicy {
  /** Total tries, the first included. */
  readonly attempts: number
  readonly onConnect: boolean
  readonly onReset: boolean
  readonly onGateway: boolean
  readonly on5xx: boolean
  readonly statuses: ReadonlySet<number>
  /** Bounds the wait for each try's answer head (ms), null: the route's response timeout. */
  readonly perTryTimeout: number | null
  /** Retries in flight ≤ this percent of the variant's requests in flight (at least MIN_BUDGET). */
  readonly budget: number
  /** Base backoff (ms), doubled per retry, with jitter. */
  readonly backoff: number
  /** A body up to this many bytes (Content-Length) is buffered so it can be replayed; 0: none. */
  readonly maxBodyBytes: number
}

/** No `retry:` block: one immediate retry after a reset on a pooled connection. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 2,
  onConnect: false,
  onReset: true,
  onGateway: false,
  on5xx: false,
  statuses: new Set<number>(),
  perTryTimeout: null,
  budget: 20,
  backoff: 0,
  maxBodyBytes: 0,
})

/** The budget never goes below this many retries in flight (a quiet variant can still retry). */
export const MIN_BUDGET = 3

export function compileRetry(cfg: RetryConfig | undefined): RetryPolicy {
  if (cfg === undefined) return DEFAULT_RETRY
  const has = (c: string) => cfg.on.includes(c as never)
  return Object.freeze({
    attempts: cfg.attempts,
    onConnect: has('connect-failure'),
    onReset: has('reset'),
    onGateway: has('gateway-error'),
    on5xx: has('5xx'),
    statuses: new Set(cfg.on.filter((c): c is number => typeof c === 'number')),
    perTryTimeout: cfg.perTryTimeout ?? null,
    budget: cfg.budget,
    backoff: cfg.backoff,
    maxBodyBytes: cfg.maxBodyBytes,
  })
}

/** The retry reason for a failed try, or null when the policy does not retry it. */
export function retryReasonForError(p: RetryPolicy, kind: UpstreamErrorKind): string | null {
  switch (kind) {
    case 'connect':
    case 'dns': // nothing was sent either
      return p.onConnect ? 'connect-failure' : p.on5xx ? '5xx' : null
    case 'reset':
      return p.onReset ? 'reset' : p.on5xx ? '5xx' : null
    case 'timeout':
      return p.onGateway ? 'gateway-error' : p.on5xx ? '5xx' : null
    default:
      return p.on5xx ? '5xx' : null
  }
}

/** The retry reason for an upstream answer's status, or null. */
export function retryReasonForStatus(p: RetryPolicy, status: number): string | null {
  if (status < 500) return null
  if (p.statuses.has(status)) return String(status)
  if (p.onGateway && status >= 502 && status <= 504) return 'gateway-error'
  return p.on5xx ? '5xx' : null
}

/** May one more retry start? `retriesInFlight` retries and `requestsInFlight` requests of the variant. */
export function budgetAllows(
  retriesInFlight: number,
  requestsInFlight: number,
  budgetPercent: number,
): boolean {
  const allowed = Math.max(MIN_BUDGET, Math.floor((requestsInFlight * budgetPercent) / 100 + 1e-9))
  return retriesInFlight < allowed
}

/** Wait before retry number `retry` (1-based): base × 2^(retry-1), times a jitter from 0.5 to 1.5. */
export function backoffMs(base: number, retry: number, random: () => number = Math.random): number {
  if (base <= 0) return 0
  return Math.round(base * 2 ** Math.max(0, retry - 1) * (0.5 + random()))
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Can this request be sent again? Idempotent without a body, or any method with a buffered body. */
export function replayable(method: string, body: 'none' | 'buffered' | 'streamed'): boolean {
  if (body === 'buffered') return true
  return body === 'none' && IDEMPOTENT.has(method)
}
