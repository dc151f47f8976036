// The mirror module as the app wires it: created once per Turnout, it owns the mirror's connection
// pools and the per-route state (noise windows, diff samples, counters) that survive reloads, builds
// each route's phase for compile() (`phases.mirror`), serves the diff samples on the admin listener,
// and closes its pools at shutdown.
import { AdminError, type AdminServer, sendJson } from '../admin/server.js'
import type { RouteConfig } from '../config/schema.js'
import type { MirrorPhase } from '../core/pipeline.js'
import type { TableHolder } from '../routing/holder.js'
import type { Balancer } from '../upstream/endpoint.js'
import type { DiffList } from './diff-ring.js'
import { createMirrorPhase, type MirrorDeps } from './phase.js'
import { MirrorPools } from './pools.js'
import { type MirrorRecorder, noopMirrorRecorder } from './recorder.js'
import type { RouteMirrorState } from './state.js'

export type { DropReason, MirrorOutcome, MirrorRecorder, MirrorSendInfo, MirrorSpan } from './recorder.js'

export interface MirrorOptions {
  /** Metrics (and the optional span hook); settable later through `mirror.recorder`. */
  recorder?: MirrorRecorder
  trustForwarded: boolean
  onInternalError?: (err: unknown) => void
}

export class Mirror {
  readonly #deps: MirrorDeps

  constructor(opts: MirrorOptions) {
    this.#deps = {
      pools: new MirrorPools(),
      states: new Map(),
      recorder: opts.recorder ?? noopMirrorRecorder,
      trustForwarded: opts.trustForwarded,
      onInternalError: opts.onInternalError,
    }
  }

  get recorder(): MirrorRecorder {
    return this.#deps.recorder
  }

  /** Connects the metrics (and span hook); takes effect for the next mirror. */
  set recorder(r: MirrorRecorder) {
    this.#deps.recorder = r
  }

  /** `phases.mirror` for compile(). */
  readonly phase = (route: RouteConfig, canary: Balancer): MirrorPhase | null =>
    createMirrorPhase(route, canary, this.#deps)

  /** The route's mirror state (counters, noise windows, samples), or undefined. */
  state(route: string): RouteMirrorState | undefined {
    return this.#deps.states.get(route)
  }

  /** The diff samples of a route, newest first; empty for a route without comparison. */
  diffs(route: string): DiffList {
    return this.#deps.states.get(route)?.ring.list() ?? { route, diffs: [] }
  }

  /**
   * GET /api/routes/:name/mirror/diffs on the admin listener (404 JSON for an unknown route), and
   * forgetting the state of routes a reload removed.
   */
  mount(admin: AdminServer, holder: TableHolder): void {
    admin.route('GET', '/api/routes/:name/mirror/diffs', ({ res, params }) => {
      const name = params.name!
      if (!holder.current.byName.has(name)) throw new AdminError(404, `unknown route "${name}"`)
      sendJson(res, 200, this.diffs(name))
    })
    holder.onSwap((next) => {
      for (const name of this.#deps.states.keys()) {
        if (next.byName.get(name)?.mirror == null) this.#deps.states.delete(name)
      }
    })
  }

  /** Cuts outstanding mirrors and closes the mirror's connections. */
  close(): Promise<void> {
    return this.#deps.pools.destroy()
  }
}
