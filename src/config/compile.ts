// Validated config → immutable RouteTable. Runs once per config (start, reload); nothing here runs
// per request. Pools come from the shared `Pools`, so a new table reuses the old connections.
import type { FaultPhase, MirrorPhase } from '../core/pipeline.js'
import { type CompiledRoute, WeightCell } from '../core/pipeline.js'
import { compileHosts } from '../routing/match-route.js'
import { compileMatcher } from '../routing/matcher.js'
import { RouteTable } from '../routing/table.js'
import type { Balancer as BalancerType } from '../upstream/endpoint.js'
import { Balancer, Endpoint } from '../upstream/endpoint.js'
import type { Pools } from '../upstream/pools.js'
import type { Config, RouteConfig } from './schema.js'

export interface CompileOptions {
  pools: Pools
  /** The live weight to keep for a route (a reload keeps runtime weight changes); config's otherwise. */
  weightFor?: (route: RouteConfig) => number
  /** Builders for the optional phases (faults, mirror); a phase is null when absent. */
  phases?: PhaseFactories
}

export interface PhaseFactories {
  faults?: (route: RouteConfig) => FaultPhase | null
  mirror?: (route: RouteConfig, canary: BalancerType) => MirrorPhase | null
}

export function compile(config: Config, opts: CompileOptions): RouteTable {
  const routes = config.routes.map((r) => compileRoute(r, opts))
  return new RouteTable(routes, config)
}

function compileRoute(r: RouteConfig, opts: CompileOptions): CompiledRoute {
  const variant = (endpoints: readonly string[]): BalancerType =>
    new Balancer(
      endpoints.map((raw) => {
        const u = new URL(raw)
        const basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
        return new Endpoint(
          raw,
          u.origin,
          u.host,
          basePath,
          opts.pools.get(u.origin, { connectTimeout: r.timeouts.connect }),
        )
      }),
      r.balance,
    )
  const sticky = r.split.sticky
  const canary = r.canary ? variant(r.canary.endpoints) : null
  return Object.freeze({
    name: r.name,
    match: { hosts: compileHosts(r.match.hosts), pathPrefix: r.match.pathPrefix ?? null },
    policy: Object.freeze({
      hasCanary: r.canary !== undefined,
      overrides: r.overrides.map((o) => ({ match: compileMatcher(o.when), to: o.to })),
      sticky: sticky
        ? {
            source: sticky.header !== undefined ? ('header' as const) : ('cookie' as const),
            name: sticky.header !== undefined ? sticky.header.toLowerCase() : (sticky.cookie as string),
            assign: sticky.assign,
          }
        : null,
    }),
    weight: new WeightCell(opts.weightFor ? opts.weightFor(r) : r.split.canary),
    primary: variant(r.primary.endpoints),
    canary,
    assignCookie:
      sticky?.assign && sticky.cookie
        ? { name: sticky.cookie, maxAgeSeconds: Math.floor(sticky.maxAge / 1000) }
        : null,
    timeouts: r.timeouts,
    exposeVariant: r.exposeVariant,
    faults: opts.phases?.faults?.(r) ?? null,
    mirror: canary !== null ? (opts.phases?.mirror?.(r, canary) ?? null) : null,
    config: r,
  })
}
