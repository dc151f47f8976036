// Random valid HTTP/1.1 requests, written as raw bytes so the fuzz controls framing, header case,
// repetition and odd-but-legal values; and the random answer the echo upstream gives to each.
import { gzipSync } from 'node:zlib'

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const TCHAR = `${ALNUM}!#$%&'*+-.^_\`|~`
const UNRESERVED = `${ALNUM}-._~`
const PCHAR = `${UNRESERVED}!$&'()*+,;=:@`
const VCHAR = (() => {
  let s = ''
  for (let c = 0x21; c <= 0x7e; c++) s += String.fromCharCode(c)
  return s
})()
const OBS_TEXT = (() => {
  let s = ''
  for (let c = 0x80; c <= 0xff; c++) s += String.fromCharCode(c)
  return s
})()
const HEX = '0123456789abcdefABCDEF'

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH'])
const HOSTS = [
  'example.test',
  'Example.TEST:8080',
  'shop.example.com',
  '127.0.0.1',
  '[::1]:8080',
  'a-b.c-d.test',
]
const COMMON = [
  'Accept',
  'Accept-Encoding',
  'Accept-Language',
  'User-Agent',
  'Cache-Control',
  'If-None-Match',
  'Referer',
  'Origin',
  'Pragma',
  'X-Request-Id',
  'Cookie',
  'Content-Type',
  'Forwarded',
  'DNT',
]

/** A header value (never starting or ending with whitespace): empty, tokens, inner tabs, obs-text, long. */
export function headerValue(rnd) {
  const r = rnd.next()
  if (r < 0.08) return ''
  if (r < 0.4) return rnd.string(`${ALNUM}-_.`, rnd.int(1, 24))
  if (r < 0.55)
    return `${rnd.string(VCHAR, rnd.int(1, 10))}${rnd.pick([' ', '\t', '  ', ' \t '])}${rnd.string(VCHAR, rnd.int(1, 10))}`
  if (r < 0.7) return rnd.string(VCHAR, rnd.int(1, 60))
  if (r < 0.82)
    return `${rnd.string(VCHAR, 1)}${rnd.string(`${VCHAR}${OBS_TEXT} \t`, rnd.int(0, 30))}${rnd.string(OBS_TEXT, 1)}`
  if (r < 0.9) return `a, b,c ,  ${rnd.string(ALNUM, 3)},"quoted, \\"x\\""`
  return rnd.string(VCHAR, rnd.int(500, 3000))
}

function pctEncoded(rnd) {
  if (rnd.chance(0.2)) return rnd.pick(['%2F', '%2f', '%2E%2E', '%2e', '%00', '%25', '%3F', '%23', '%20'])
  return `%${rnd.string(HEX, 2)}`
}

function segment(rnd) {
  const r = rnd.next()
  if (r < 0.1) return '.'
  if (r < 0.2) return '..'
  if (r < 0.27) return ''
  let s = ''
  const n = rnd.chance(0.03) ? rnd.int(100, 600) : rnd.int(1, 12)
  for (let i = 0; i < n; i++) s += rnd.chance(0.12) ? pctEncoded(rnd) : rnd.string(PCHAR, 1)
  return s
}

/** Origin-form path and query: pchar, percent-encoding, dot and empty segments, odd query characters. */
export function originTarget(rnd) {
  const segments = []
  const n = rnd.int(0, 6)
  for (let i = 0; i < n; i++) segments.push(segment(rnd))
  let target = `/${segments.join('/')}`
  if (rnd.chance(0.4)) {
    let q = ''
    const len = rnd.int(0, 40)
    for (let i = 0; i < len; i++) q += rnd.chance(0.1) ? pctEncoded(rnd) : rnd.string(`${PCHAR}/?`, 1)
    target += `?${q}`
  }
  return target
}

function target(rnd, method, host) {
  if (method === 'OPTIONS' && rnd.chance(0.2)) return { form: 'asterisk', target: '*' }
  const path = originTarget(rnd)
  if (rnd.chance(0.03)) return { form: 'absolute', target: `http://${host}${path}`, path }
  return { form: 'origin', target: path }
}

/** Body bytes: mostly small, some several chunks' worth. */
function bodyBytes(rnd) {
  const r = rnd.next()
  const n = r < 0.08 ? 0 : r < 0.5 ? rnd.int(1, 100) : r < 0.93 ? rnd.int(100, 8000) : rnd.int(8000, 70000)
  return rnd.bytes(n)
}

function chunkExtension(rnd) {
  const name = rnd.string(TCHAR, rnd.int(1, 8))
  const r = rnd.next()
  if (r < 0.3) return `;${name}`
  if (r < 0.7) return `;${name}=${rnd.string(TCHAR, rnd.int(1, 8))}`
  return `;${name}="${rnd.string(`${ALNUM} ,;=`, rnd.int(0, 12))}"`
}

/** Chunked framing of `payload`: random chunk sizes, hex case, leading zeros, extensions, trailers. */
function chunked(rnd, payload, trailers) {
  const parts = []
  let at = 0
  while (at < payload.length) {
    const size = Math.min(payload.length - at, rnd.chance(0.3) ? rnd.int(1, 16) : rnd.int(1, 20000))
    let hex = size.toString(16)
    hex = rnd.chance(0.5) ? hex.toUpperCase() : hex
    if (rnd.chance(0.1)) hex = `00${hex}`
    const ext = rnd.chance(0.15) ? chunkExtension(rnd) : ''
    parts.push(
      Buffer.from(`${hex}${ext}\r\n`, 'latin1'),
      payload.subarray(at, at + size),
      Buffer.from('\r\n'),
    )
    at += size
  }
  let last = `${rnd.chance(0.1) ? '000' : '0'}${rnd.chance(0.1) ? chunkExtension(rnd) : ''}\r\n`
  for (const [n, v] of trailers) last += `${n}: ${v}\r\n`
  parts.push(Buffer.from(`${last}\r\n`, 'latin1'))
  return Buffer.concat(parts)
}

/** One random header line's name (custom token names, common ones), in random case. */
function headerName(rnd) {
  if (rnd.chance(0.45)) return rnd.cased(rnd.pick(COMMON))
  if (rnd.chance(0.7)) return `X-${rnd.string(`${ALNUM}-`, rnd.int(1, 16))}`
  return `x${rnd.string(TCHAR, rnd.int(1, 12))}`
}

/** The special headers a proxy treats differently (hop-by-hop, forwarding, Expect), each now and then. */
function specialHeaders(rnd, h, last, hasBody) {
  const tokens = []
  if (rnd.chance(0.15)) tokens.push(rnd.cased('keep-alive'))
  if (rnd.chance(0.12)) {
    const name = `X-Hop-${rnd.string(ALNUM, 4)}`
    tokens.push(rnd.cased(name))
    if (rnd.chance(0.8)) h.push([name, headerValue(rnd)])
  }
  if (rnd.chance(0.05)) tokens.push(rnd.cased('te'))
  if (rnd.chance(0.02)) tokens.push(rnd.cased('host'))
  if (rnd.chance(0.02)) {
    tokens.push(rnd.cased('authorization'))
    h.push(['Authorization', `Bearer ${rnd.string(ALNUM, 16)}`])
  }
  if (last && rnd.chance(0.25)) tokens.push(rnd.cased('close'))
  if (tokens.length > 0) h.push([rnd.cased('Connection'), tokens.join(rnd.pick([', ', ',', ' , ']))])
  if (rnd.chance(0.05)) h.push([rnd.cased('Keep-Alive'), 'timeout=5, max=100'])
  if (rnd.chance(0.1)) h.push([rnd.cased('TE'), rnd.pick(['trailers', 'trailers, deflate;q=0.5'])])
  if (rnd.chance(0.05)) h.push([rnd.cased('Proxy-Authorization'), `Basic ${rnd.string(ALNUM, 12)}`])
  if (rnd.chance(0.03)) h.push([`Proxy-${rnd.string(ALNUM, 5)}`, headerValue(rnd)])
  const xffs = rnd.chance(0.1) ? rnd.int(1, 3) : 0
  for (let i = 0; i < xffs; i++) h.push([rnd.cased('X-Forwarded-For'), `203.0.113.${rnd.int(1, 254)}`])
  if (rnd.chance(0.08))
    h.push([rnd.cased('Via'), rnd.pick(['1.0 fred', '1.1 edge (Edge/1.0)', 'HTTP/1.1 a, 1.1 b'])])
  if (rnd.chance(0.05)) h.push([rnd.cased('X-Forwarded-Proto'), 'https'])
  if (rnd.chance(0.05)) h.push([rnd.cased('X-Forwarded-Host'), 'front.example'])
  if (rnd.chance(0.03)) h.push([rnd.cased('X-Turnout-Variant'), 'canary'])
  if (rnd.chance(0.02)) h.push([rnd.cased('X-Turnout-Mirror'), '1'])
  if (hasBody && rnd.chance(0.05)) h.push([rnd.cased('Expect'), '100-continue'])
  return tokens
}

/** Shuffles in place (Fisher–Yates), keeping the first `keep` entries where they are. */
function shuffle(rnd, list, keep) {
  for (let i = list.length - 1; i > keep; i--) {
    const j = keep + Math.floor(rnd.next() * (i - keep + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
}

function bodyPlan(rnd, method) {
  const wants = WITH_BODY.has(method) ? rnd.chance(0.85) : rnd.chance(0.08)
  if (!wants) {
    if (WITH_BODY.has(method) && rnd.chance(0.5))
      return { framing: 'cl', payload: Buffer.alloc(0), codings: [] }
    return { framing: 'none', payload: Buffer.alloc(0), codings: [] }
  }
  const payload = bodyBytes(rnd)
  if (rnd.chance(0.55)) return { framing: 'cl', payload, codings: [] }
  if (rnd.chance(0.04)) return { framing: 'chunked', payload: gzipSync(payload), codings: ['gzip'] }
  return { framing: 'chunked', payload, codings: [] }
}

function framingHeaders(rnd, plan, h) {
  if (plan.framing === 'cl') h.push([rnd.cased('Content-Length'), String(plan.payload.length)])
  if (plan.framing !== 'chunked') return
  if (plan.codings.length === 0) h.push([rnd.cased('Transfer-Encoding'), rnd.cased('chunked')])
  else if (rnd.chance(0.5)) h.push([rnd.cased('Transfer-Encoding'), 'gzip, chunked'])
  else h.push([rnd.cased('Transfer-Encoding'), 'gzip'], [rnd.cased('Transfer-Encoding'), 'chunked'])
}

/**
 * One random request. Returns { id, method, form, target, path, host, headers, framing, codings, body,
 * trailers, connectionTokens, expect, closes, bytes }.
 */
export function generateRequest(rnd, id, last) {
  const method = rnd.pick(METHODS)
  const host = rnd.pick(HOSTS)
  const t = target(rnd, method, host)
  const plan = bodyPlan(rnd, method)
  const h = [[rnd.cased('Host'), host]]
  const extra = rnd.chance(0.05) ? rnd.int(30, 90) : rnd.int(0, 8)
  let size = 0
  for (let i = 0; i < extra && size < 9000; i++) {
    if (h.length > 1 && rnd.chance(0.15)) {
      const [name] = rnd.pick(h.slice(1))
      h.push([rnd.cased(name), headerValue(rnd)]) // a repeated header, maybe in another case
    } else h.push([headerName(rnd), headerValue(rnd)])
    size += h.at(-1)[0].length + h.at(-1)[1].length + 4 // the head stays under Node's 16 KiB default
  }
  const tokens = specialHeaders(rnd, h, last, plan.payload.length > 0)
  framingHeaders(rnd, plan, h)
  h.push([rnd.cased('X-Fuzz-Id'), String(id)])
  shuffle(rnd, h, rnd.chance(0.8) ? 1 : 0)
  // Split Transfer-Encoding lines keep their order after the shuffle: chunked must come last.
  const te = h.filter(([n]) => n.toLowerCase() === 'transfer-encoding')
  if (te.length === 2) [te[0][1], te[1][1]] = ['gzip', 'chunked']
  const trailers = []
  if (plan.framing === 'chunked' && rnd.chance(0.15)) {
    for (let i = rnd.int(1, 3); i > 0; i--)
      trailers.push([`X-Trailer-${rnd.string(ALNUM, 4)}`, headerValue(rnd)])
  }
  let head = `${method} ${t.target} HTTP/1.1\r\n`
  for (const [n, v] of h) {
    const before = rnd.chance(0.9) ? ' ' : rnd.pick(['', '\t', '  ', ' \t'])
    // Node's parser refuses whitespace after a Content-Length or Transfer-Encoding value, and does not
    // see "close" in "Connection: close<TAB>" (upstream and Turnout alike, so not a proxy difference):
    // trailing whitespace only on other lines.
    const framing = /^(content-length|transfer-encoding|connection)$/i.test(n)
    const after = framing || rnd.chance(0.92) ? '' : rnd.pick([' ', '\t', ' \t '])
    head += `${n}:${before}${v}${after}\r\n`
  }
  const headBytes = Buffer.from(`${head}\r\n`, 'latin1')
  const body = plan.framing === 'chunked' ? chunked(rnd, plan.payload, trailers) : plan.payload
  return {
    id,
    method,
    form: t.form,
    target: t.target,
    path: t.path ?? t.target,
    host,
    headers: h,
    framing: plan.framing,
    codings: plan.codings,
    body: plan.payload,
    trailers,
    connectionTokens: new Set(tokens.map((x) => x.toLowerCase())),
    expect: h.some(([n]) => n.toLowerCase() === 'expect'),
    closes: tokens.some((x) => x.toLowerCase() === 'close'),
    bytes: Buffer.concat([headBytes, body]),
  }
}
