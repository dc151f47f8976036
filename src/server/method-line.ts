// Pure byte work for forwarding custom method tokens (see custom-methods.ts): where a request that
// node:http's parser (llhttp) refused with HPE_INVALID_METHOD starts, and a rewriter that gives its
// request line a method llhttp knows while carrying the real one in a marker header.

/**
 * Every method llhttp's request parser matches (HTTP, WebDAV, RTSP, ...). llhttp reads a method
 * byte by byte along these names and fails at the first byte no name continues with; the parser
 * model below relies on that, and test/custom-methods.test.ts checks it against the running Node.
 */
export const LLHTTP_METHODS = [
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL',
  'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT',
  'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PATCH',
  'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK', 'SOURCE', 'PRI', 'DESCRIBE', 'ANNOUNCE', 'SETUP', 'PLAY',
  'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'REDIRECT', 'RECORD', 'FLUSH', 'QUERY',
] // biome-ignore format: a word list

const NAMES = new Set(LLHTTP_METHODS)
const PREFIXES = new Set<string>()
for (const m of LLHTTP_METHODS) for (let i = 0; i <= m.length; i++) PREFIXES.add(m.slice(0, i))
const LONGEST = Math.max(...LLHTTP_METHODS.map((m) => m.length))
const METHOD_BYTES = new Set(LLHTTP_METHODS.flatMap((m) => [...m].map((c) => c.charCodeAt(0))))

const CR = 13
const LF = 10
const SP = 32

/** RFC 9110 tchar. */
export function isTchar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    (c !== 0x22 && c !== 0x28 && c !== 0x29 && c !== 0x2c && c !== 0x2f && c >= 0x21 && c <= 0x2f) ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  )
}

/** Would llhttp, reading `prefix` as the start of a method, fail exactly at the byte `next`? */
export function failsAt(prefix: string, next: number): boolean {
  if (!PREFIXES.has(prefix)) return false
  if (next === SP && NAMES.has(prefix)) return false
  return !PREFIXES.has(prefix + String.fromCharCode(next))
}

/**
 * Where the refused request starts in `raw`, given llhttp failed at `errorAt` and the request began
 * in this buffer; null when that cannot be told for sure. The previous request on the connection
 * ends with LF unless it had a Content-Length body (`bodyBefore`), whose last bytes can be anything:
 * then the start must be the only one that llhttp's matching could have failed at `errorAt`.
 */
export function findRequestStart(raw: Buffer, errorAt: number, bodyBefore: boolean): number | null {
  if (errorAt < 0 || errorAt >= raw.length) return null
  const next = raw[errorAt]!
  let run = errorAt
  while (run > 0 && errorAt - run < LONGEST && METHOD_BYTES.has(raw[run - 1]!)) run--
  let found: number | null = null
  for (let s = run; s <= errorAt; s++) {
    if (!bodyBefore && s > 0 && raw[s - 1] !== LF && raw[s - 1] !== CR) continue
    if (!failsAt(raw.toString('latin1', s, errorAt), next)) continue
    if (found !== null) return null
    found = s
  }
  return found
}

/** A method token sent as its own word: longer ones are refused (400). */
export const MAX_METHOD_LENGTH = 64

/**
 * Rewrites the first request line of a byte stream: `BREW /pot HTTP/1.1\r\n` becomes
 * `POST /pot HTTP/1.1\r\n<marker>: <value>\r\n`; everything after that line passes unchanged.
 * When the method is not a token (or too long), it emits a lone NUL instead and drops the rest, so
 * that the parser refuses the request as a bad one.
 */
export class RequestLineRewriter {
  #state: 'method' | 'line' | 'pass' | 'refused' = 'method'
  #method = ''

  constructor(
    readonly substitute: string,
    readonly marker: (method: string) => string,
    readonly out: (chunk: Buffer) => void,
  ) {}

  write(chunk: Buffer): void {
    let at = 0
    if (this.#state === 'method') {
      while (at < chunk.length && chunk[at] !== SP) {
        const c = chunk[at]!
        if (!isTchar(c) || this.#method.length >= MAX_METHOD_LENGTH) {
          this.#refuse()
          return
        }
        this.#method += String.fromCharCode(c)
        at++
      }
      if (at === chunk.length) return
      if (this.#method.length === 0) {
        this.#refuse()
        return
      }
      this.out(Buffer.from(this.substitute, 'latin1'))
      this.#state = 'line'
    }
    if (this.#state === 'line') {
      const lf = chunk.indexOf(LF, at)
      if (lf === -1) {
        if (at < chunk.length) this.out(chunk.subarray(at))
        return
      }
      this.out(chunk.subarray(at, lf + 1))
      this.out(Buffer.from(`${this.marker(this.#method)}\r\n`, 'latin1'))
      this.#state = 'pass'
      at = lf + 1
    }
    if (this.#state === 'pass' && at < chunk.length) this.out(at === 0 ? chunk : chunk.subarray(at))
  }

  #refuse(): void {
    this.#state = 'refused'
    this.out(Buffer.from([0]))
  }
}
