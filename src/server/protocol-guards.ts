// CONNECT, which node:http parses but Turnout does not proxy (it is not a forward proxy), gets 405
// with `allow` instead of being closed without a word. (A request line of another HTTP version than
// 1.x gets 505 from the admission phase, proxy/admit.ts; the HTTP/2 preface from client-errors.ts.)
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ClientErrorKind } from '../telemetry/metrics.js'
import { answerAfterEarlierRequests } from './client-errors.js'

/** Methods Turnout forwards, as sent in `allow` when it refuses CONNECT. */
export const ALLOW = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE'

export const CONNECT_REFUSED = { status: 405, body: { error: 'method_not_allowed' }, extra: ['allow', ALLOW] }

/** The server's `connect` listener: 405 after the answers the connection still owes, then close. */
export function refuseConnect(count: (kind: ClientErrorKind) => void) {
  return (_req: IncomingMessage, socket: Duplex): void => {
    count('method_not_allowed')
    socket.on('error', () => {})
    answerAfterEarlierRequests(socket, CONNECT_REFUSED.status, CONNECT_REFUSED.body, CONNECT_REFUSED.extra)
  }
}
