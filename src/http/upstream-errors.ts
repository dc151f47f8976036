// Upstream failures: classified once into the five kinds telemetry counts, and mapped in one place
// to Turnout's own answers (502 upstream_unavailable, 504 upstream_timeout).
import { TurnoutError } from '../core/errors.js'
import type { UpstreamErrorKind } from '../core/pipeline.js'

/** getaddrinfo's failures: the endpoint's host name did not resolve (undici resolves per connection). */
const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL'])
const CONNECT = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ECONNABORTED',
])
const TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])

export function classifyUpstreamError(err: Error): UpstreamErrorKind {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (DNS.has(code)) return 'dns'
  if (CONNECT.has(code)) return 'connect'
  if (TIMEOUT.has(code)) return 'timeout'
  if (RESET.has(code)) return 'reset'
  const cause = (err as { cause?: unknown }).cause
  if (cause instanceof Error && cause !== err) {
    const inner = classifyUpstreamError(cause)
    if (inner !== 'protocol') return inner
  }
  return 'protocol'
}

/** undici's codes for a request it refuses to send as given (before any byte goes upstream). */
const REFUSED_BEFORE_SENDING = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED'])

/** True when undici refused the request itself: the client sent something it will not forward. */
export function refusedBeforeSending(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code !== undefined && REFUSED_BEFORE_SENDING.has(code)
}

export function statusForUpstreamError(kind: UpstreamErrorKind): 502 | 504 {
  return kind === 'timeout' ? 504 : 502
}

/** Raised by the body limiter when a chunked upload passes limits.maxBodySize. */
export class BodyTooLargeError extends TurnoutError {
  constructor(readonly limit: number) {
    super('TURNOUT_ERR_BODY_TOO_LARGE', `request body larger than ${limit} bytes`, 413)
  }
}
