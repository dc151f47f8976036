// The fuzz client: writes raw request bytes on keep-alive `net` connections and parses the answers
// strictly (status line, raw header list, body by content-length, chunked or close, trailers, 1xx).
import { connect } from 'node:net'

const CRLF = Buffer.from('\r\n')

/** Parses `name: value` lines (latin1) into a flat [name, value, ...] list. */
function headerLines(text) {
  const flat = []
  for (const line of text.split('\r\n')) {
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`)
    flat.push(line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ''))
  }
  return flat
}

function joinedValue(flat, lower) {
  const out = []
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === lower) out.push(flat[i + 1])
  return out.length === 0 ? null : out.join(', ')
}

/**
 * Tries to parse one complete answer from `buf`. Returns null when more bytes are needed, else
 * { answer, rest }. `ended`: the peer closed (a close-delimited body is then complete).
 */
export function parseAnswer(buf, isHead, ended) {
  const interim = []
  let at = 0
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at)
    if (end === -1) return null
    const head = buf.subarray(at, end).toString('latin1')
    const nl = head.indexOf('\r\n')
    const statusLine = nl === -1 ? head : head.slice(0, nl)
    const m = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(statusLine)
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`)
    const status = Number(m[1])
    const headers = headerLines(nl === -1 ? '' : head.slice(nl + 2))
    at = end + 4
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push({ status, headers })
      continue
    }
    const base = { interim, status, reason: m[2] ?? '', headers, trailers: [], framing: 'none' }
    const body = readBody(buf, at, status, headers, isHead, ended)
    if (body === null) return null
    return {
      answer: { ...base, body: body.body, trailers: body.trailers, framing: body.framing },
      rest: buf.subarray(body.end),
    }
  }
}

function readBody(buf, at, status, headers, isHead, ended) {
  const none = { body: Buffer.alloc(0), trailers: [], framing: 'none', end: at }
  if (isHead || status === 204 || status === 304) return none
  const te = joinedValue(headers, 'transfer-encoding')
  if (te !== null) {
    if (te.toLowerCase() !== 'chunked') throw new Error(`unexpected transfer-encoding ${te}`)
    return readChunked(buf, at)
  }
  const cl = joinedValue(headers, 'content-length')
  if (cl !== null) {
    if (!/^\d+$/.test(cl)) throw new Error(`bad content-length ${cl}`)
    const n = Number(cl)
    if (buf.length - at < n) return null
    return { body: buf.subarray(at, at + n), trailers: [], framing: 'cl', end: at + n }
  }
  if (!ended) return null
  return { body: buf.subarray(at), trailers: [], framing: 'close', end: buf.length }
}

function readChunked(buf, at) {
  const parts = []
  for (;;) {
    const eol = buf.indexOf(CRLF, at)
    if (eol === -1) return null
    const line = buf.subarray(at, eol).toString('latin1')
    const m = /^([0-9a-fA-F]+)(;.*)?$/.exec(line)
    if (!m) throw new Error(`bad chunk line ${JSON.stringify(line.slice(0, 80))}`)
    const size = Number.parseInt(m[1], 16)
    at = eol + 2
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', at - 2)
      if (end === -1) return null
      const trailers = headerLines(buf.subarray(at, end).toString('latin1'))
      return { body: Buffer.concat(parts), trailers, framing: 'chunked', end: end + 4 }
    }
    if (buf.length < at + size + 2) return null
    parts.push(buf.subarray(at, at + size))
    if (buf[at + size] !== 13 || buf[at + size + 1] !== 10) throw new Error('chunk not followed by CRLF')
    at += size + 2
  }
}

/** A connection that sends one request at a time and resolves with its parsed answer. */
class Conn {
  constructor(port) {
    this.socket = connect(port, '127.0.0.1')
    this.buf = Buffer.alloc(0)
    this.ended = false
    this.error = null
    this.wake = null
    this.socket.on('data', (c) => {
      this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c])
      this.wake?.()
    })
    this.socket.on('error', (err) => {
      this.error = err
    })
    this.socket.on('close', () => {
      this.ended = true
      this.wake?.()
    })
  }

  /** Sends `bytes`; resolves { answer, closed, leftover } or { error }. */
  exchange(bytes, isHead, timeoutMs) {
    if (this.buf.length > 0)
      return Promise.resolve({ error: `unexpected bytes before the request: ${preview(this.buf)}` })
    this.socket.write(bytes)
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => finish({ error: `no complete answer in ${timeoutMs} ms: ${preview(this.buf)}` }),
        timeoutMs,
      )
      const finish = (result) => {
        clearTimeout(timer)
        this.wake = null
        resolve(result)
      }
      this.wake = () => {
        let parsed
        try {
          parsed = parseAnswer(this.buf, isHead, this.ended)
        } catch (err) {
          return finish({ error: `${err.message}: ${preview(this.buf)}` })
        }
        if (parsed !== null) {
          this.buf = Buffer.from(parsed.rest)
          return finish({ answer: parsed.answer })
        }
        if (this.ended)
          finish({ error: `connection closed mid-answer: ${this.error?.message ?? ''} ${preview(this.buf)}` })
      }
      this.wake()
    })
  }

  close() {
    this.socket.destroy()
  }
}

function preview(buf) {
  return JSON.stringify(buf.subarray(0, 120).toString('latin1'))
}

function wantsClose(answer) {
  const c = joinedValue(answer.headers, 'connection')
  return answer.framing === 'close' || (c !== null && /(^|,)\s*close\s*(,|$)/i.test(c))
}

/**
 * Sends each request of a session in turn on keep-alive connections to `port` (a new connection
 * when the server closed the last one). Resolves to one { answer, closed } or { error } per request.
 */
export async function runSession(port, requests, timeoutMs) {
  const out = []
  let conn = null
  for (const req of requests) {
    if (conn === null || conn.ended) conn = new Conn(port)
    const result = await conn.exchange(req.bytes, req.method === 'HEAD', timeoutMs)
    if (result.answer && wantsClose(result.answer)) {
      result.closed = true
      conn.close()
      conn = null
    }
    out.push(result)
    if (result.error) {
      conn?.close()
      conn = null
    }
  }
  conn?.close()
  return out
}
