// The proxy listener's `clientError` handler: a request node:http's parser refused (malformed,
// header block too large, too slow) gets Turnout's JSON error answer, counted and logged, without
// ever writing into another answer:
//  - answers on a connection keep request order: earlier requests are answered first, then the
//    error answer goes out and the connection closes after it;
//  - when the error hits a request whose own answer has already started (a stalled upload whose
//    upstream already streams its answer), no byte is added: the connection is closed, as node:http's
//    own handler does.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { replyBytes } from '../core/reply.js'
import type { LogLine } from '../telemetry/failure-log.js'
import type { Logger } from '../telemetry/logger.js'
import type { ClientErrorKind, Metrics } from '../telemetry/metrics.js'
import { afterOpenResponses, responseFor } from './open-responses.js'

export const CLIENT_ERROR_STATUS: Record<ClientErrorKind, number> = {
  bad_request: 400,
  headers_too_large: 431,
  request_timeout: 408,
  not_implemented: 501,
  method_not_allowed: 405,
  http_version_not_supported: 505,
}

export function clientErrorKind(code: string): ClientErrorKind {
  if (code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large'
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_TIMEOUT') return 'request_timeout'
  // `PRI * HTTP/2.0`: the HTTP/2 connection preface, on a listener that speaks HTTP/1.1 only.
  if (code === 'HPE_PAUSED_H2_UPGRADE') return 'http_version_not_supported'
  return 'bad_request'
}

/** Connections whose parser already failed: node:http may report the same failure again. */
const failed = new WeakSet<object>()

export interface ClientErrorDeps {
  metrics: Metrics
  logger: Logger
  /** The warn line for each refused request (rate-limited by the caller). */
  warn: LogLine
  /** Tried first: true when the error was handled otherwise (a custom method taken over). */
  takeOver?: (err: NodeJS.ErrnoException, socket: Duplex) => boolean
}

export function createClientErrorHandler(deps: ClientErrorDeps) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    if (failed.has(socket)) return
    failed.add(socket)
    try {
      if (deps.takeOver?.(err, socket)) return
    } catch (takeOverErr) {
      deps.logger.error(
        { err: (takeOverErr as Error).stack ?? String(takeOverErr) },
        'internal error in a takeover',
      )
      socket.destroy()
      return
    }
    const kind = clientErrorKind(code)
    const status = CLIENT_ERROR_STATUS[kind]
    deps.metrics.clientError(kind)
    deps.warn(
      { client: (socket as Socket).remoteAddress, code, status, err: err.message },
      'bad client request',
    )
    answerAfterEarlierRequests(socket, status, { error: kind })
  }
}

/**
 * Writes a local error answer on a connection whose parser has failed, once the answers it still
 * owes are complete, then closes it. The request being parsed when it failed (an upload that
 * stalled or broke its framing) may already have a response: if that one has started, the
 * connection is closed without a byte more; if not, the error answer replaces it.
 */
export function answerAfterEarlierRequests(
  socket: Duplex,
  status: number,
  body: Record<string, unknown>,
  extra?: string[],
): void {
  const parsing = (socket as Duplex & { parser?: { incoming?: IncomingMessage | null } }).parser?.incoming
  const own = parsing && !parsing.complete ? responseFor(parsing) : null
  if (own?.headersSent) {
    socket.destroy()
    return
  }
  afterOpenResponses(socket, own, () => {
    if (socket.destroyed || !socket.writable || own?.headersSent) {
      socket.destroy()
      return
    }
    // Close for real once the answer is flushed: the server's sockets are half-open by default.
    socket.end(replyBytes(status, body, extra), () => socket.destroy())
  })
}
