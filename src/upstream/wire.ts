// Two places where undici's HTTP/1.1 client is stricter than RFC 9110 lets a proxy be, fixed at the
// connection undici writes to and reads from (its connector), so its parser and pools stay untouched:
//  - the asterisk form `OPTIONS * HTTP/1.1` (undici only sends paths starting with "/"): the request
//    is dispatched with a per-process placeholder path, rewritten to `*` in the request line;
//  - an unsolicited `100 Continue` before the final answer (undici destroys the socket on any 100,
//    because it never sends `Expect`): the interim answer is dropped at the start of a response, so
//    the final answer arrives as usual (RFC 9110 §15.2: a client must accept unexpected 1xx).
//    Turnout strips the client's `Expect`, and node:http already answered it with its own 100.
// Cost on the hot path: one boolean test per chunk read and one character test per write.
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { buildConnector } from 'undici'

/** The path to dispatch for an asterisk-form target (never a path a client can send: random). */
export const ASTERISK_PATH = `/.turnout-asterisk-${randomBytes(8).toString('hex')}`
const ASTERISK_LINE = `OPTIONS ${ASTERISK_PATH} HTTP/1.1\r\n`
const MAX_INTERIM_HEAD = 16 * 1024

export function lenientConnector(connectTimeout: number): buildConnector.connector {
  const base = buildConnector({ timeout: connectTimeout })
  return (options, callback) =>
    base(options, (err, socket) => {
      if (err !== null) callback(err, null)
      else {
        lenientWire(socket as Socket)
        callback(null, socket)
      }
    })
}

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean
type Write = (chunk: unknown, ...rest: unknown[]) => boolean

function lenientWire(socket: Socket): void {
  const push = socket.push.bind(socket) as Push
  const write = socket.write.bind(socket) as Write
  // True from a request head's write until the first byte of its answer that is not a 100.
  let responseStart = false
  let pending: Buffer | null = null

  socket.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && isRequestHead(chunk)) {
      responseStart = true
      if (chunk.startsWith(ASTERISK_LINE))
        chunk = `OPTIONS * HTTP/1.1\r\n${chunk.slice(ASTERISK_LINE.length)}`
    }
    return write(chunk, ...rest)
  }) as Socket['write']

  socket.push = ((chunk: unknown, encoding?: BufferEncoding) => {
    if (!responseStart || !Buffer.isBuffer(chunk)) return push(chunk, encoding)
    let buf = pending === null ? chunk : Buffer.concat([pending, chunk])
    pending = null
    for (;;) {
      if (buf.length < 13) {
        if (isPrefixOfContinue(buf)) return keep(buf)
        break
      }
      if (!isContinue(buf)) break
      const end = buf.indexOf('\r\n\r\n', 0, 'latin1')
      if (end === -1) {
        if (buf.length > MAX_INTERIM_HEAD) break
        return keep(buf)
      }
      buf = buf.subarray(end + 4)
      if (buf.length === 0) return true
    }
    responseStart = false
    return push(buf, encoding)
  }) as Socket['push']

  function keep(buf: Buffer): boolean {
    pending = buf
    return true
  }
}

/** A request line as undici writes it: an upper-case method token first (body chunks never are). */
function isRequestHead(s: string): boolean {
  const c = s.charCodeAt(0)
  return c >= 65 && c <= 90 && s.indexOf(' HTTP/1.1\r\n') !== -1
}

const CONTINUE = ['HTTP/1.1 100', 'HTTP/1.0 100']

function isContinue(buf: Buffer): boolean {
  const head = buf.toString('latin1', 0, 13)
  return (
    (head.startsWith(CONTINUE[0]!) || head.startsWith(CONTINUE[1]!)) &&
    (head[12] === ' ' || head[12] === '\r')
  )
}

function isPrefixOfContinue(buf: Buffer): boolean {
  const head = buf.toString('latin1')
  return CONTINUE.some((c) => c.startsWith(head))
}
