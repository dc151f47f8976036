// The mirror phase of one compiled route. For a request the primary serves live, start() decides
// (method, share, body, in-flight bound) and fires a copy at a canary endpoint through the mirror's
// own pools, in the same tick as the live forward and never awaited. Nothing here can reach the live
// request: no shared pool, timeout or abort; every failure is caught and counted.
//
//  share      deterministic, per route: the n-th eligible request is mirrored when
//             selected*100 < eligible*percent (Traefik's counter): exact shares, no RNG.
//  bound      mirrors + noise replays outstanding per route ≤ maxInFlight, else dropped (in_flight_limit).
//  bodies     only with mirror.unsafe: the live body is teed through a pass-through (teeBody) into a
//             buffer of at most mirror.maxBodyBytes; the mirror is sent when the body is complete.
//             A Content-Length over the limit is refused up front; a chunked body passing it is
//             abandoned (both body_too_large). Without unsafe, a request with a body is not mirrored
//             (body_too_large: the limit is 0). Flow control stays the live path's: the tee only
//             copies references to chunks as they pass.
//  compare    start() returns a ResponseTap feeding a bounded capture of the primary's answer; when
//             it and the canary's are complete they are compared, classified against the noise
//             windows, counted, and kept in the route's DiffRing when not a match.
//  noise      for the `noise` share of compared safe, body-less requests, the request is replayed to
//             another primary endpoint (when there is one) once the live answer's head is in, and
//             primary-vs-primary differences feed the classifier. Unsafe requests are never replayed
//             to the primary (that would duplicate writes in production).
import type { Readable } from 'node:stream'
import { Transform, type TransformCallback } from 'node:stream'
import type { MirrorConfig, RouteConfig, Variant } from '../config/schema.js'
import type { MirrorPhase, RequestContext, ResponseTap } from '../core/pipeline.js'
import { upstreamRequestHeaders } from '../http/headers.js'
import type { RequestView } from '../routing/request-view.js'
import type { Balancer, Endpoint } from '../upstream/endpoint.js'
import { type CapturedResponse, ResponseCapture } from './capture.js'
import { compareResponses, type FieldDiff } from './compare.js'
import { decodedPair } from './decode.js'
import { type ExchangeResult, MirrorExchange } from './exchange.js'
import { diffKey } from './noise.js'
import type { MirrorPools } from './pools.js'
import type { DropReason, MirrorRecorder, MirrorSpan } from './recorder.js'
import { RouteMirrorState } from './state.js'

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export interface MirrorDeps {
  pools: MirrorPools
  /** Per-route state by route name; survives reloads. */
  states: Map<string, RouteMirrorState>
  /** Read on every use, so it can be connected after the phases are compiled. */
  recorder: MirrorRecorder
  trustForwarded: boolean
  /** Unexpected internal errors (never the mirror's upstream failures, which are counted). */
  onInternalError?: (err: unknown) => void
}

/** phases.mirror for compile(): null when the route has no mirror (or a 0% share). */
export function createMirrorPhase(
  route: RouteConfig,
  canary: Balancer,
  deps: MirrorDeps,
): MirrorPhase | null {
  const m = route.mirror
  if (m === undefined || m.percent <= 0) return null
  let state = deps.states.get(route.name)
  if (state === undefined) {
    state = new RouteMirrorState(route.name)
    deps.states.set(route.name, state)
  }
  state.configure(m)
  return new RoutePhase(route, m, canary, state, deps)
}

class RoutePhase implements MirrorPhase {
  readonly #methods: ReadonlySet<string>
  readonly #connectTimeout: number
  /** Body bytes a capture keeps (0 when bodies are not compared: nothing is kept). */
  readonly captureBytes: number
  /** Headers the captures keep: the compared ones and content-encoding (for decoding bodies). */
  readonly wanted: readonly string[]
  /** Requests whose mirror waits for the live body (start() → teeBody()). */
  readonly #pendingBodies = new WeakMap<RequestContext, PendingBody>()

  constructor(
    readonly route: RouteConfig,
    readonly m: MirrorConfig,
    readonly canary: Balancer,
    readonly state: RouteMirrorState,
    readonly deps: MirrorDeps,
  ) {
    this.#methods = new Set(m.methods)
    this.#connectTimeout = Math.min(route.timeouts.connect, m.timeout)
    if (m.unsafe) this.teeBody = (ctx, body) => this.#teeBody(ctx, body)
    this.captureBytes = m.compare?.body ? m.compare.maxBodyBytes : 0
    this.wanted = m.compare ? [...new Set([...m.compare.headers, 'content-encoding'])] : []
  }

  start(ctx: RequestContext, view: RequestView): ResponseTap | null {
    try {
      return this.#start(ctx, view)
    } catch (err) {
      this.#internal(err)
      return null
    }
  }

  /** Only on routes with mirror.unsafe (the handler skips the call otherwise). */
  readonly teeBody?: (ctx: RequestContext, body: Readable) => Readable

  #teeBody(ctx: RequestContext, body: Readable): Readable {
    const pending = this.#pendingBodies.get(ctx)
    if (pending === undefined) return body
    this.#pendingBodies.delete(ctx)
    try {
      return pending.tee(body)
    } catch (err) {
      this.#internal(err)
      pending.cancel()
      return body
    }
  }

  #start(ctx: RequestContext, view: RequestView): ResponseTap | null {
    const m = this.m
    const s = this.state
    const method = view.method
    if (!this.#methods.has(method)) return null
    s.eligible++
    if (s.selected * 100 >= s.eligible * m.percent) return null
    s.selected++
    if (this.deps.pools.closed) return null

    const contentLength = view.header('content-length')
    const chunked = view.header('transfer-encoding') !== undefined
    const hasBody = chunked || (contentLength !== undefined && contentLength !== '0')
    if (hasBody && (!m.unsafe || (!chunked && Number(contentLength) > m.maxBodyBytes))) {
      this.#drop('body_too_large')
      return null
    }
    if (s.inFlight >= m.maxInFlight) {
      this.#drop('in_flight_limit')
      return null
    }
    const endpoint = this.canary.pick()
    if (this.deps.pools.skipped(endpoint.origin)) {
      this.#drop('upstream_error') // it refused the last connections: not even tried
      return null
    }
    s.inFlight++

    const target = (view as { target?: string }).target ?? view.path
    const comparison = m.compare ? new Comparison(this, method, target) : null
    const send = (body: Buffer | null): void => {
      this.#send(ctx, 'canary', endpoint, method, target, body, (r) => comparison?.canaryDone(r.captured))
    }
    if (hasBody) {
      const pending = new PendingBody(this, send)
      this.#pendingBodies.set(ctx, pending)
      // The body never completed (client gone, answer before the upload ended): give the slot back.
      ctx.res?.once('close', () => pending.cancel())
    } else {
      send(null)
    }
    if (comparison === null) return null
    return comparison.tap(ctx, !hasBody && SAFE.has(method) && this.#noiseChosen())
  }

  #noiseChosen(): boolean {
    const noise = this.m.compare?.noise ?? 0
    if (noise <= 0) return false
    const s = this.state
    s.compared++
    if (s.replayed * 100 >= s.compared * noise) return false
    s.replayed++
    return true
  }

  /** Replays the request to a primary endpoint (another than the live one when there is one). */
  replay(ctx: RequestContext, target: string, onDone: (captured: CapturedResponse | null) => void): void {
    const route = ctx.route
    if (route === null || this.deps.pools.closed) return
    if (this.state.inFlight >= this.m.maxInFlight) {
      this.#drop('in_flight_limit')
      return
    }
    const live = ctx.endpoint
    const endpoint = live !== null ? route.primary.other(live) : route.primary.pick()
    if (this.deps.pools.skipped(endpoint.origin)) {
      this.#drop('upstream_error')
      return
    }
    this.state.inFlight++
    this.#send(ctx, 'primary', endpoint, ctx.req.method ?? 'GET', target, null, (r) => onDone(r.captured))
  }

  /** Sends one exchange; the caller has taken an in-flight slot, given back here when it ends. */
  #send(
    ctx: RequestContext,
    variant: Variant,
    endpoint: Endpoint,
    method: string,
    target: string,
    body: Buffer | null,
    onDone: (r: ExchangeResult) => void,
  ): void {
    const deps = this.deps
    const path = endpoint.basePath + target
    let span: MirrorSpan | null = null
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.state.inFlight--
    }
    try {
      const recorder = deps.recorder
      if (recorder.mirrorStart !== undefined) {
        try {
          span = recorder.mirrorStart(ctx, { route: this.route.name, variant, endpoint, method, path })
        } catch (err) {
          this.#internal(err)
        }
      }
      const headers = upstreamRequestHeaders(ctx.req.rawHeaders, {
        clientAddress: ctx.req.socket.remoteAddress ?? '',
        proto: 'http',
        trustForwarded: deps.trustForwarded,
        variant,
        extra: span?.headers ?? ctx.upstreamHeaders,
      })
      headers.push('x-turnout-mirror', '1')
      const capture = this.m.compare ? new ResponseCapture(this.captureBytes) : null
      new MirrorExchange({
        pool: deps.pools.get(endpoint.origin, this.#connectTimeout),
        path,
        method,
        headers,
        body,
        timeout: this.m.timeout,
        capture,
        wanted: this.wanted,
        done: (r) => {
          release()
          deps.pools.report(endpoint.origin, r.connectFailed)
          this.#record(variant, r, span)
          onDone(r)
        },
      }).start()
    } catch (err) {
      release()
      this.#internal(err)
    }
  }

  #record(variant: Variant, r: ExchangeResult, span: MirrorSpan | null): void {
    const recorder = this.deps.recorder
    try {
      if (r.reason === null) recorder.request(this.route.name, variant, r.status, r.durationSeconds)
      else if (!this.deps.pools.closed) recorder.dropped(this.route.name, r.reason)
      span?.end({
        status: r.status,
        dropReason: r.reason,
        error: r.error,
        durationSeconds: r.durationSeconds,
      })
    } catch (err) {
      this.#internal(err)
    }
  }

  #drop(reason: DropReason): void {
    try {
      this.deps.recorder.dropped(this.route.name, reason)
    } catch (err) {
      this.#internal(err)
    }
  }

  /** A body that passed the limit mid-stream. */
  dropBody(): void {
    this.#drop('body_too_large')
  }

  releaseSlot(): void {
    this.state.inFlight--
  }

  /** Compares the primary's and the canary's answers; classification, metrics, samples. */
  async compareCanary(
    method: string,
    target: string,
    a: CapturedResponse,
    b: CapturedResponse,
  ): Promise<void> {
    const cfg = this.m.compare!
    try {
      const [p, c] = await decodedPair(a, b, cfg.maxBodyBytes)
      const diffs = compareResponses(p, c, cfg)
      const s = this.state
      const classifier = s.classifier
      classifier.recordCanary(diffs.map(diffKey))
      s.canaryComparisons++
      const result = classifier.classify(diffs)
      const recorder = this.deps.recorder
      recorder.comparison(this.route.name, result)
      if (result === 'match') return
      let fields: readonly FieldDiff[] = diffs
      if (result === 'mismatch') {
        for (const f of classifier.mismatchFields(diffs)) recorder.mismatch(this.route.name, f)
        fields = diffs.filter((d) => !classifier.isNoise(diffKey(d)))
      }
      s.ring.record({ method, path: target, fields, classification: result })
    } catch (err) {
      this.#internal(err)
    }
  }

  /** Compares the live primary answer with a replayed one: the noise baseline. */
  async comparePair(a: CapturedResponse, b: CapturedResponse): Promise<void> {
    const cfg = this.m.compare!
    try {
      const [p, q] = await decodedPair(a, b, cfg.maxBodyBytes)
      const diffs = compareResponses(p, q, cfg)
      this.state.classifier.recordPrimaryPair(diffs.map(diffKey))
      this.state.pairComparisons++
    } catch (err) {
      this.#internal(err)
    }
  }

  #internal(err: unknown): void {
    try {
      this.deps.onInternalError?.(err)
    } catch {
      // nothing may escape
    }
  }
}

/** A mirror waiting for the live request body, teed as it streams to the primary. */
class PendingBody {
  #chunks: Buffer[] = []
  #bytes = 0
  /** 'waiting' → 'sent' | 'abandoned' | 'cancelled' */
  #state: 'waiting' | 'sent' | 'abandoned' | 'cancelled' = 'waiting'

  constructor(
    readonly phase: RoutePhase,
    readonly send: (body: Buffer) => void,
  ) {}

  tee(body: Readable): Readable {
    const tee = new BodyTee(this)
    // pipe() does not forward errors: a failing body (size limit, client reset) must still fail the
    // live upstream request, exactly as without the tee.
    body.once('error', (err) => tee.destroy(err))
    return body.pipe(tee)
  }

  chunk(buf: Buffer): void {
    if (this.#state !== 'waiting') return
    this.#bytes += buf.length
    if (this.#bytes > this.phase.m.maxBodyBytes) {
      this.#chunks = []
      this.#state = 'abandoned'
      this.phase.releaseSlot()
      this.phase.dropBody()
      return
    }
    this.#chunks.push(buf)
  }

  end(): void {
    if (this.#state !== 'waiting') return
    this.#state = 'sent'
    const body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes)
    this.#chunks = []
    this.send(body) // the send's exchange gives the slot back
  }

  /** The body will never complete: no mirror, the slot is given back (not counted as a drop). */
  cancel(): void {
    if (this.#state !== 'waiting') return
    this.#state = 'cancelled'
    this.#chunks = []
    this.phase.releaseSlot()
  }
}

class BodyTee extends Transform {
  constructor(readonly pending: PendingBody) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.pending.chunk(chunk)
    } catch {
      // the copy is best effort; the live body always passes
    }
    cb(null, chunk)
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.pending.end()
    } catch {
      // as above
    }
    cb()
  }
}

/** Joins the primary's live answer with the mirror's (and a noise replay's) for comparison. */
class Comparison {
  #primary: CapturedResponse | null = null
  #canary: CapturedResponse | null = null
  #replay: CapturedResponse | null = null
  #dead = false

  constructor(
    readonly phase: RoutePhase,
    readonly method: string,
    readonly target: string,
  ) {}

  tap(ctx: RequestContext, replay: boolean): ResponseTap {
    const capture = new ResponseCapture(this.phase.captureBytes)
    const wanted = this.phase.wanted
    return {
      head: (status, headers) => {
        try {
          capture.head(status, headers, wanted)
          if (replay && !this.#dead) {
            // The live endpoint is known now: replay to another one.
            this.phase.replay(ctx, this.target, (c) => this.#replayDone(c))
          }
        } catch {
          this.#dead = true
        }
      },
      chunk: (buf) => capture.chunk(buf),
      end: () => {
        if (this.#dead) return
        try {
          this.#primary = capture.finish()
        } catch {
          this.#dead = true
          return
        }
        this.#maybeCompare()
      },
      abort: () => {
        this.#dead = true
        this.#canary = null
        this.#replay = null
      },
    }
  }

  canaryDone(captured: CapturedResponse | null): void {
    this.#canary = captured
    this.#maybeCompare()
  }

  #replayDone(captured: CapturedResponse | null): void {
    this.#replay = captured
    this.#maybeCompare()
  }

  #maybeCompare(): void {
    if (this.#dead || this.#primary === null) return
    if (this.#canary !== null) {
      const c = this.#canary
      this.#canary = null
      void this.phase.compareCanary(this.method, this.target, this.#primary, c)
    }
    if (this.#replay !== null) {
      const r = this.#replay
      this.#replay = null
      void this.phase.comparePair(this.#primary, r)
    }
  }
}
