// The compiled, immutable route table a request reads once (its routes: core/pipeline.ts).
import type { Config, Variant } from '../config/schema.js'
import type { CompiledRoute } from '../core/pipeline.js'
import type { Balancer } from '../upstream/endpoint.js'
import { routeMatches } from './match-route.js'

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
