// One mirror (or noise replay) exchange on the mirror's own pool: an undici dispatch whose handler
// never pauses the socket, feeds the answer to a ResponseCapture when comparing (bounded) or just
// lets it go, and so drains the response so the connection can be reused. Its own deadline: undici's
// headersTimeout/bodyTimeout plus an overall timer that aborts the exchange (the socket is destroyed).
// Every outcome reaches `done` exactly once; nothing here throws into the caller.

import type { Dispatcher, Pool } from 'undici'
import { TurnoutError } from '../core/errors.js'
import { classifyUpstreamError } from '../http/upstream-errors.js'
import type { CapturedResponse, ResponseCapture } from './capture.js'

export interface ExchangeResult {
  /** The upstream's status when the answer was read to the end; 0 otherwise. */
  status: number
  reason: 'timeout' | 'upstream_error' | null
  error: Error | null
  /** The connection to the upstream could not be made (refused, unreachable, connect timeout). */
  connectFailed: boolean
  durationSeconds: number
  /** The captured answer when a capture was given and the answer completed. */
  captured: CapturedResponse | null
}

export interface ExchangeOptions {
  pool: Pool
  path: string
  method: string
  headers: string[]
  body: Buffer | null
  timeout: number
  capture: ResponseCapture | null
  /** Lower-case header names the capture keeps. */
  wanted: readonly string[]
  done(result: ExchangeResult): void
}

export class MirrorTimeoutError extends TurnoutError {
  constructor(ms: number) {
    super('TURNOUT_ERR_MIRROR_TIMEOUT', `mirror got no complete answer within ${ms} ms`, 504)
  }
}

export class MirrorExchange implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | null = null
  #timer: NodeJS.Timeout | null = null
  #timedOut = false
  #finished = false
  #status = 0
  #start = 0

  constructor(readonly o: ExchangeOptions) {}

  start(): void {
    const o = this.o
    this.#start = performance.now()
    this.#timer = setTimeout(() => this.#onTimeout(), o.timeout)
    this.#timer.unref()
    try {
      o.pool.dispatch(
        {
          path: o.path,
          method: o.method as Dispatcher.HttpMethod,
          headers: o.headers,
          body: o.body,
          headersTimeout: o.timeout,
          bodyTimeout: o.timeout,
        },
        this,
      )
    } catch (err) {
      this.onError(err as Error)
    }
  }

  #onTimeout(): void {
    this.#timer = null
    if (this.#finished) return
    this.#timedOut = true
    // Not connected yet: onConnect aborts as soon as it can (connect is bounded by its own timeout).
    this.#abort?.(new MirrorTimeoutError(this.o.timeout))
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#timedOut) abort(new MirrorTimeoutError(this.o.timeout))
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true
    this.#status = statusCode
    const capture = this.o.capture
    if (capture !== null) {
      try {
        const flat: string[] = new Array(rawHeaders.length)
        for (let i = 0; i < rawHeaders.length; i++) flat[i] = rawHeaders[i]!.toString('latin1')
        capture.head(statusCode, flat, this.o.wanted)
      } catch {
        // a capture problem only loses the comparison, never the exchange
      }
    }
    return true
  }

  onData(chunk: Buffer): boolean {
    this.o.capture?.chunk(chunk)
    return true // never pause: the answer is read as fast as it comes and discarded
  }

  onComplete(): void {
    this.#finish(null)
  }

  onError(err: Error): void {
    this.#finish(err)
  }

  #finish(err: Error | null): void {
    if (this.#finished) return
    this.#finished = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const durationSeconds = (performance.now() - this.#start) / 1000
    let reason: ExchangeResult['reason'] = null
    const kind = err !== null ? classifyUpstreamError(err) : null
    if (kind !== null) reason = this.#timedOut || kind === 'timeout' ? 'timeout' : 'upstream_error'
    let captured: CapturedResponse | null = null
    if (err === null && this.o.capture !== null) {
      try {
        captured = this.o.capture.finish()
      } catch {
        captured = null
      }
    }
    try {
      this.o.done({
        status: err === null ? this.#status : 0,
        reason,
        error: err,
        connectFailed: kind === 'connect' || kind === 'dns',
        durationSeconds,
        captured,
      })
    } catch {
      // the caller's bookkeeping must not escape into undici
    }
  }
}
