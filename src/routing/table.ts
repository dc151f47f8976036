// The compiled, immutable route table a request reads once, and the small mutable cell that holds a
// route's live canary weight (the only thing the admin API and the rollout controller change in
// place; everything else changes by swapping the whole table).
import type { Config, RouteConfig, Variant } from '../config/schema.js'
import type { FaultPhase, MirrorPhase } from '../proxy/phases.js'
import type { RetryPolicy } from '../proxy/retry.js'
import type { Balancer } from '../upstream/endpoint.js'
import type { SplitPolicy } from './decide.js'
import { type RouteMatch, routeMatches } from './match-route.js'

export class WeightCell {
  constructor(public canary: number) {}
}

export interface StickyCookie {
  name: string
  maxAgeSeconds: number
}

export interface CompiledRoute {
  readonly name: string
  readonly match: RouteMatch
  readonly policy: SplitPolicy
  readonly weight: WeightCell
  readonly primary: Balancer
  readonly canary: Balancer | null
  /** Set when Turnout assigns sticky ids itself. */
  readonly assignCookie: StickyCookie | null
  readonly timeouts: { readonly connect: number; readonly response: number; readonly idle: number }
  readonly exposeVariant: boolean
  /** retry: compiled (the default policy when the route has none). */
  readonly retry: RetryPolicy
  /** Canary-bound weighted and sticky requests go to the primary while the canary has no usable endpoint. */
  readonly failover: boolean
  /** Optional phases, null when the route does not use them. */
  readonly faults: FaultPhase | null
  readonly mirror: MirrorPhase | null
  /** The validated route config, for the admin API and the extension phases. */
  readonly config: RouteConfig
}

export class RouteTable {
  readonly byName: ReadonlyMap<string, CompiledRoute>
  constructor(
    readonly routes: readonly CompiledRoute[],
    readonly config: Config,
  ) {
    this.byName = new Map(routes.map((r) => [r.name, r]))
    Object.freeze(this)
  }

  find(host: string, path: string): CompiledRoute | null {
    for (const r of this.routes) if (routeMatches(r.match, host, path)) return r
    return null
  }
}

export function balancerFor(route: CompiledRoute, variant: Variant): Balancer {
  return variant === 'canary' && route.canary !== null ? route.canary : route.primary
}
