// The echo upstream's random answer to one request: status, reason, headers (repeated, odd values,
// hop-by-hop), body, framing (content-length, chunked, or delimited by closing the connection),
// trailers, and now and then a 103 Early Hints first.
import { headerValue } from './generate.js'

const STATUSES = [
  200, 200, 200, 200, 200, 200, 201, 202, 204, 299, 301, 302, 304, 400, 401, 404, 418, 500, 503,
]
export const FIXED_DATE = 'Thu, 01 Jan 2026 00:00:00 GMT'
const NAMES = [
  'Content-Type',
  'Cache-Control',
  'ETag',
  'Last-Modified',
  'Vary',
  'Server',
  'Content-Language',
  'Link',
  'X-Powered-By',
]

function answerHeaders(rnd, status) {
  const h = []
  if (rnd.chance(0.6)) h.push([rnd.cased('Date'), FIXED_DATE])
  for (let i = rnd.int(0, 6); i > 0; i--) h.push([rnd.cased(rnd.pick(NAMES)), headerValue(rnd)])
  for (let i = rnd.chance(0.3) ? rnd.int(1, 3) : 0; i > 0; i--)
    h.push([rnd.cased('Set-Cookie'), `c${i}=${rnd.string('abcdef0123456789', 8)}; Path=/; HttpOnly`])
  for (let i = rnd.chance(0.4) ? rnd.int(1, 3) : 0; i > 0; i--) h.push([`X-Echo-${i % 2}`, headerValue(rnd)])
  if (status === 301 || status === 302) h.push(['Location', '/elsewhere?x=1'])
  if (rnd.chance(0.1)) {
    h.push([rnd.cased('Connection'), 'X-Private'])
    h.push(['X-Private', headerValue(rnd)])
  }
  if (rnd.chance(0.05)) h.push([rnd.cased('Keep-Alive'), 'timeout=9'])
  if (rnd.chance(0.05)) h.push([rnd.cased('Proxy-Authenticate'), 'Basic realm="x"'])
  if (rnd.chance(0.1)) h.push([rnd.cased('Via'), '1.0 origin'])
  if (rnd.chance(0.03)) h.push(['X-Turnout-Variant', 'made-up'])
  return h
}

/** { status, reason (undefined: Node's default), headers, body, framing, trailers, earlyHints } */
export function generateAnswer(rnd) {
  const status = rnd.pick(STATUSES)
  const r = rnd.next()
  // A non-ASCII reason is rare: through the current proxy it costs a whole answer deadline (known.js).
  const reason =
    r < 0.75 ? undefined : r < 0.97 ? rnd.pick(['Fine Thanks', 'OK ok', 'x']) : r < 0.9975 ? '' : 'Caf\u00e9'
  const bodyless = status === 204 || status === 304
  const n = bodyless ? 0 : rnd.chance(0.1) ? 0 : rnd.chance(0.9) ? rnd.int(1, 4000) : rnd.int(4000, 100_000)
  const f = rnd.next()
  const framing = bodyless ? 'cl' : f < 0.5 ? 'cl' : f < 0.9 ? 'chunked' : 'close'
  const trailers = []
  if (framing === 'chunked' && rnd.chance(0.15))
    trailers.push(['X-Digest', rnd.string('abcdef0123456789', 12)])
  return {
    status,
    reason,
    headers: answerHeaders(rnd, status),
    body: rnd.bytes(n),
    framing,
    trailers,
    earlyHints: rnd.chance(0.03),
  }
}
