// Optional per-route phases that plug into the request path. A route compiles each to an object or
// null, so an unused phase costs one null check per request (as fastify resolves hooks at ready time).
import type { Readable } from 'node:stream'
import type { RequestView } from '../routing/request-view.js'
import type { RequestContext } from './context.js'

export type FaultDecision = { kind: 'delay'; ms: number } | { kind: 'abort'; status: number }

/** Fault injection: runs after the variant is decided, before the upstream is called. */
export interface FaultPhase {
  decide(ctx: RequestContext, req: RequestView): FaultDecision | null
}

/** Sees the primary's response as it streams to the client (mirror comparison). Must never throw. */
export interface ResponseTap {
  head(status: number, headers: readonly string[]): void
  chunk(buf: Buffer): void
  end(): void
  /** The live response failed or the client went away: discard what was captured. */
  abort(): void
}

/** Mirroring: runs for requests the primary serves live, at the same time as the forward. */
export interface MirrorPhase {
  /** Fires the mirror (never awaited); returns a tap for comparison, or null. */
  start(ctx: RequestContext, req: RequestView): ResponseTap | null
  /**
   * Optional (routes that mirror request bodies): called right after start() with the live request
   * body; returns the stream to forward instead (a pass-through copying chunks for the mirror), or
   * `body` itself when this request's mirror does not need it. Never changes the live flow control.
   */
  teeBody?(ctx: RequestContext, body: Readable): Readable
}
