// limits.maxConnections: Turnout counts its client connections itself instead of setting
// net.Server#maxConnections, which closes extra connections without a word. Past the limit a new
// connection gets `503 overloaded` with `connection: close` and `retry-after: 1` (HAProxy's and
// Envoy's overload answer) and is closed; connections are accepted again as soon as others close.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { replyBytes } from '../core/reply.js'

/** Bytes a refused client may send before its answer is flushed; the rest is not read. */
const REFUSED_LINGER_MS = 1000

export interface ConnectionLimit {
  /** Open client connections (refused ones not included). */
  readonly open: number
}

/**
 * Must be registered before node:http's own connection handling sees the socket: it wraps the
 * server's `connection` listeners so a refused socket never reaches the HTTP parser.
 */
export function limitConnections(
  server: Server,
  max: () => number,
  onRefused: (socket: Socket) => void,
  isInjected: (socket: Socket) => boolean,
): ConnectionLimit {
  let open = 0
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    if (isInjected(socket)) {
      for (const l of listeners) l.call(server, socket)
      return
    }
    if (open >= max()) {
      refuse(socket)
      onRefused(socket)
      return
    }
    open++
    socket.once('close', () => {
      open--
    })
    for (const l of listeners) l.call(server, socket)
  })
  return {
    get open() {
      return open
    },
  }
}

function refuse(socket: Socket): void {
  socket.on('error', () => {})
  // Whatever the client sends is discarded; the answer does not depend on it.
  socket.resume()
  socket.end(replyBytes(503, { error: 'overloaded' }, ['retry-after', '1']))
  const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
