// Requests node:http parses but Turnout does not proxy, answered plainly instead of being closed
// without a word: CONNECT (Turnout is not a forward proxy) gets 405 with `allow`, and a request line
// of another HTTP version than 1.x (`GET / HTTP/2.0`, the HTTP/2 preface `PRI * HTTP/2.0`) gets 505.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { sendLocal } from '../proxy/errors.js'
import type { ClientErrorKind } from '../telemetry/metrics.js'
import { answerAfterEarlierRequests } from './client-errors.js'

/** Methods Turnout forwards, as sent in `allow` when it refuses CONNECT. */
export const ALLOW = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE'

export const CONNECT_REFUSED = { status: 405, body: { error: 'method_not_allowed' }, extra: ['allow', ALLOW] }
export const VERSION_REFUSED = { status: 505, body: { error: 'http_version_not_supported' } }

/** True for a request Turnout answers itself because of its HTTP version (the answer is sent). */
export function refuseOtherVersions(
  req: IncomingMessage,
  res: ServerResponse,
  count: (kind: ClientErrorKind) => void,
): boolean {
  if (req.httpVersionMajor === 1) return false
  count('http_version_not_supported')
  res.shouldKeepAlive = false
  sendLocal(res, VERSION_REFUSED.status, VERSION_REFUSED.body, ['connection', 'close'])
  return true
}

/** The same for an Upgrade request (its socket has no ServerResponse). */
export function refuseUpgradeOtherVersions(
  req: IncomingMessage,
  socket: Duplex,
  count: (kind: ClientErrorKind) => void,
): boolean {
  if (req.httpVersionMajor === 1) return false
  count('http_version_not_supported')
  socket.on('error', () => {})
  answerAfterEarlierRequests(socket, VERSION_REFUSED.status, VERSION_REFUSED.body)
  return true
}

/** The server's `connect` listener: 405 after the answers the connection still owes, then close. */
export function refuseConnect(count: (kind: ClientErrorKind) => void) {
  return (_req: IncomingMessage, socket: Duplex): void => {
    count('method_not_allowed')
    socket.on('error', () => {})
    answerAfterEarlierRequests(socket, CONNECT_REFUSED.status, CONNECT_REFUSED.body, CONNECT_REFUSED.extra)
  }
}
