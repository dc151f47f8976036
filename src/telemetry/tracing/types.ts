// The tracing handle as the rest of Turnout sees it. Types only: importing them loads no SDK.
import type { Observer, RequestContext } from '../../core/pipeline.js'
import type { Endpoint } from '../../upstream/endpoint.js'
import type { TracingSettings } from './settings.js'

export interface TracingHandle {
  readonly settings: TracingSettings
  readonly observer: Observer
  /** Opens a CLIENT span for a mirrored request (child of the live SERVER span), or null. */
  startMirrorSpan(ctx: RequestContext, info: MirrorSpanInfo): MirrorSpanHandle | null
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
}

export interface MirrorSpanInfo {
  route: string
  variant: 'primary' | 'canary'
  endpoint: Endpoint
  method: string
  path: string
}

export interface MirrorSpanHandle {
  readonly headers: readonly string[]
  end(outcome: { status: number; dropReason: string | null; error: Error | null }): void
}

export interface TracingDeps {
  /** Spans that could not be delivered. */
  onDropped: (count: number) => void
  /** Internal errors of the tracer (never thrown into the request path). */
  onError?: (err: unknown) => void
}
