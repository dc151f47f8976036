// Upstream failures: classified once into the five kinds telemetry counts, and mapped in one place
// to Turnout's own answers (502 upstream_unavailable, 504 upstream_timeout).
import { type ServerResponse, STATUS_CODES } from 'node:http'
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

/** The header list of Turnout's own small JSON answers (flat name/value list). */
function localHeaders(text: string, extra?: string[]): string[] {
  const headers = [
    'content-type',
    'application/json',
    'content-length',
    String(Buffer.byteLength(text)),
    'cache-control',
    'no-store',
  ]
  if (extra) headers.push(...extra)
  return headers
}

/** Sends Turnout's own small JSON answer. Safe to call once the response has not started. */
export function sendLocal(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  extra?: string[],
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, localHeaders(text, extra))
  res.end(text)
}

/**
 * The same answer as raw HTTP/1.1 bytes, for a connection that has no ServerResponse (a refused
 * connection, a request the parser rejected). It always closes the connection.
 */
export function localAnswerBytes(status: number, body: Record<string, unknown>, extra?: string[]): string {
  const text = JSON.stringify(body)
  const headers = localHeaders(text, [...(extra ?? []), 'connection', 'close'])
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  return `${head}\r\n${text}`
}

/** Raised by the body limiter when a chunked upload passes limits.maxBodySize. */
export class BodyTooLargeError extends Error {
  readonly code = 'TURNOUT_ERR_BODY_TOO_LARGE'
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`)
  }
}
