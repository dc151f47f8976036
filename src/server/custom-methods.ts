// Custom method tokens (`BREW`, `X-CUSTOM`, `FOO_BAR`): RFC 9110 allows any token, but node:http's
// parser (llhttp) knows a fixed list and refuses the rest with HPE_INVALID_METHOD. Turnout then
// takes the connection over from that request on:
//  - it finds where the refused request starts in the parser's buffer (method-line.ts), which needs
//    to know that the request began in that buffer: a per-connection parser hook (kOnMessageBegin,
//    which node:http itself resets when a parser is reused) records the read it began in;
//  - from there the client's bytes are fed to a fresh node:http parser through a Duplex shim
//    (`server.emit('connection', shim)`, node:http's documented way to inject a connection), with
//    the request line's method replaced by POST and the real method carried in a marker header whose
//    name is random per process and whose value is a one-time nonce: a client cannot forge it, and
//    it is removed before the request is seen by the rest of Turnout;
//  - the shim's answers reach the socket only after the earlier answers on the connection are
//    complete (the segments below keep that order), and a later custom method repeats the takeover.
// When the start cannot be told for sure, or the method is not a token, the request gets the usual 400.
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import { createRequire } from 'node:module'
import { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { findRequestStart, isTchar, RequestLineRewriter } from './method-line.js'
import { afterOpenResponses, lastRequestOn, onNewRequest } from './open-responses.js'

/** The known method the rewritten request line carries (any with a body and no special meaning). */
const SUBSTITUTE = 'POST'
/** Per-process random marker header name; requests that carry it never reach a handler with it. */
const MARKER = `x-turnout-method-${randomBytes(12).toString('hex')}`
const BEGAN = Symbol('turnout.beganAt')

type Parser = Record<number | symbol, unknown> & { socket?: { bytesRead?: number } | null }

function onMessageBeginIndex(): number | null {
  try {
    const common = createRequire(import.meta.url)('_http_common') as {
      HTTPParser?: { kOnMessageBegin?: unknown }
    }
    const index = common.HTTPParser?.kOnMessageBegin
    return typeof index === 'number' ? index : null
  } catch {
    return null
  }
}
const kOnMessageBegin = onMessageBeginIndex()

/** False when this Node has no parser hook to build on: custom methods then keep getting 400. */
export const customMethodsSupported = kOnMessageBegin !== null

function markBegin(this: Parser): void {
  this[BEGAN] = this.socket?.bytesRead
}

const realSetTimeout = Socket.prototype.setTimeout
const takeovers = new WeakMap<object, Takeover>()

/** One injected connection: a segment of the client connection, from a taken-over request on. */
export class ConnectionShim extends Duplex {
  /** Bytes fed to the parser so far (the parser hook compares it). */
  bytesRead = 0
  readonly #nonces = new Map<string, string>()
  readonly #queue: Array<{ chunk: Buffer; done: () => void }> = []
  #head = false
  #final: (() => void) | null = null
  #destroyed = false
  /** Answers complete and the parser failed: closing it must not touch the client socket. */
  retired = false

  constructor(
    readonly real: Socket,
    readonly takeover: Takeover,
  ) {
    super({ allowHalfOpen: true })
  }

  get remoteAddress() {
    return this.real.remoteAddress
  }
  get remotePort() {
    return this.real.remotePort
  }
  get remoteFamily() {
    return this.real.remoteFamily
  }
  get localAddress() {
    return this.real.localAddress
  }
  get localPort() {
    return this.real.localPort
  }

  /** node:http's keep-alive and idle timeouts apply to the client socket, from the current segment only. */
  setTimeout(ms: number): this {
    if (this.takeover.input === this) realSetTimeout.call(this.real, ms)
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }

  // Input is delivered as 'data' events, synchronously, the way node:http reads a socket; pausing
  // the shim pauses the client socket.
  override pause(): this {
    this.real.pause()
    return this
  }
  override resume(): this {
    this.real.resume()
    return this
  }
  override _read(): void {}

  feed(chunk: Buffer): void {
    this.bytesRead += chunk.length
    this.emit('data', chunk)
  }

  nonceFor(method: string): string {
    const nonce = randomBytes(12).toString('hex')
    this.#nonces.set(nonce, method)
    return nonce
  }

  /** Gives a request parsed here its real method and removes the marker header. */
  claim(req: IncomingMessage): void {
    const raw = req.rawHeaders
    if (raw[0]?.toLowerCase() === MARKER) {
      const method = this.#nonces.get(raw[1] ?? '')
      if (method !== undefined) {
        this.#nonces.delete(raw[1]!)
        req.method = method
      }
    }
    if (!raw.some((h, i) => i % 2 === 0 && h.toLowerCase() === MARKER)) return
    // node:http builds these from rawHeaders with the parsed count: build them first, then remove
    // the marker from all three.
    const headers = req.headers
    const distinct = req.headersDistinct
    delete headers[MARKER]
    delete distinct[MARKER]
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === MARKER) raw.splice(i, 2)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    if (this.#head) this.#send(chunk, done)
    else this.#queue.push({ chunk, done })
  }

  override _final(done: () => void): void {
    this.#final = done
    if (this.#head) this.#finish()
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#destroyed = true
    if (this.#head && !this.retired) this.#finish()
    done(err)
  }

  /** Earlier answers on the connection are complete: this segment's output goes out now. */
  becomeHead(): void {
    this.#head = true
    for (const { chunk, done } of this.#queue.splice(0)) this.#send(chunk, done)
    if (this.#final !== null || this.#destroyed) this.#finish()
  }

  #send(chunk: Buffer, done: () => void): void {
    if (!this.real.writable) {
      done()
      return
    }
    // Write errors surface as the client socket's close, which tears every segment down.
    this.real.write(chunk, () => done())
  }

  /** Ended or destroyed: the client connection ends after this segment's output. */
  #finish(): void {
    const final = this.#final
    this.#final = null
    if (!this.real.writable) {
      final?.()
      if (this.#destroyed) this.real.destroy()
      return
    }
    this.real.end(() => {
      final?.()
      this.real.destroy()
    })
  }
}

/** The client connection after its first takeover: segments answer in order, head first. */
class Takeover {
  readonly segments: Array<{ connection: Duplex; done: boolean }> = []
  input!: ConnectionShim
  #feed: RequestLineRewriter | null = null

  constructor(
    readonly real: Socket,
    readonly server: Server,
  ) {
    takeovers.set(real, this)
    this.segments.push({ connection: real, done: false })
    // node:http's own reader and end handler serve the failed parser only.
    for (const name of ['data', 'end'] as const)
      for (const l of real.listeners(name) as Array<(...args: unknown[]) => void>)
        if (l.name === `bound socketOn${name === 'data' ? 'Data' : 'End'}`) real.removeListener(name, l)
    // Adding a data listener makes node:http stop consuming the socket in C++.
    real.on('data', (chunk: Buffer) => this.#feed?.write(chunk))
    real.on('end', () => this.input.emit('end'))
    real.on('close', () => {
      for (const s of this.segments)
        if (s.connection instanceof ConnectionShim) {
          s.connection.retired = true
          s.connection.destroy()
        }
    })
    // A keep-alive timer armed by the failed parser must not cut the requests that follow.
    realSetTimeout.call(real, 0)
    real.setTimeout = function (this: Socket) {
      return this
    } as Socket['setTimeout']
  }

  /** `failed` refused a custom method whose request starts with `rest`: a new segment takes it from there. */
  continueAfter(failed: Duplex, rest: Buffer): void {
    const shim = new ConnectionShim(this.real, this)
    takeovers.set(shim, this)
    this.segments.push({ connection: shim, done: false })
    this.input = shim
    this.server.emit('connection', shim)
    this.#feed = new RequestLineRewriter(
      SUBSTITUTE,
      (method) => `${MARKER}: ${shim.nonceFor(method)}`,
      (chunk) => shim.feed(chunk),
    )
    afterOpenResponses(failed, null, () => this.#segmentDone(failed))
    this.#feed.write(rest)
  }

  #segmentDone(connection: Duplex): void {
    const segment = this.segments.find((s) => s.connection === connection)
    if (segment) segment.done = true
    while (this.segments[0]?.done) {
      const old = this.segments.shift()!.connection
      if (old instanceof ConnectionShim) {
        old.retired = true
        old.destroy()
      }
      const head = this.segments[0]?.connection
      if (head instanceof ConnectionShim) head.becomeHead()
    }
  }
}

function hadLengthBody(req: IncomingMessage | null): boolean {
  if (req === null) return false
  const raw = req.rawHeaders
  let length = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (name === 'transfer-encoding') return false
    if (name === 'content-length' && raw[i + 1]!.trim() !== '0') length = true
  }
  return length
}

/**
 * The proxy listener's hooks: `onConnection` after node:http has set a connection up, `claim` for
 * each request, and `takeOver` for a clientError (true when it took the request over).
 */
export function customMethods(server: Server) {
  onNewRequest((req) => {
    if (req.socket instanceof ConnectionShim) req.socket.claim(req)
  })
  return {
    onConnection(socket: Duplex): void {
      const parser = (socket as Duplex & { parser?: Parser }).parser
      if (parser && kOnMessageBegin !== null) parser[kOnMessageBegin] = markBegin
    },
    takeOver(err: NodeJS.ErrnoException & { rawPacket?: unknown; bytesParsed?: unknown }, socket: Duplex) {
      if (kOnMessageBegin === null || err.code !== 'HPE_INVALID_METHOD') return false
      const raw = err.rawPacket
      const at = err.bytesParsed
      const parser = (socket as Duplex & { parser?: Parser }).parser
      if (!Buffer.isBuffer(raw) || typeof at !== 'number' || !parser) return false
      // The refused request must have begun in the buffer the parser failed in.
      if (parser[BEGAN] !== (socket as Duplex & { bytesRead?: number }).bytesRead) return false
      const start = findRequestStart(raw, at, hadLengthBody(lastRequestOn(socket)))
      if (start === null || raw[start] === 32) return false
      for (let i = start; i < raw.length && raw[i] !== 32; i++) if (!isTchar(raw[i]!)) return false
      let takeover = takeovers.get(socket)
      if (takeover === undefined) {
        if (!(socket instanceof Socket)) return false
        takeover = new Takeover(socket, server)
      } else if (takeover.input !== socket) return false
      takeover.continueAfter(socket, raw.subarray(start))
      return true
    },
  }
}

export function isInjected(socket: Duplex): boolean {
  return socket instanceof ConnectionShim
}
