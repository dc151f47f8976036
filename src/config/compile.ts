// Validated config → immutable RouteTable. Runs once per config (start, reload); nothing here runs
// per request. Pools come from the shared `Pools`, so a new table reuses the old connections.
import { type CompiledRoute, type FaultPhase, type MirrorPhase, WeightCell } from '../core/pipeline.js'
import { compileHosts } from '../routing/match-route.js'
import { compileMatcher } from '../routing/matcher.js'
import { RouteTable } from '../routing/table.js'
import type { Balancer as BalancerType } from '../upstream/endpoint.js'
import { Balancer, Endpoint } from '../upstream/endpoint.js'
import { HealthRegistry, type VariantHealth } from '../upstream/health.js'
import type { Pools } from '../upstream/pools.js'
import { compileRetry } from '../upstream/retry.js'
import type { Config, RouteConfig, UpstreamConfig, Variant } from './schema.js'

export interface CompileOptions {
  pools: Pools
  /** Endpoint health kept across tables (a fresh one when absent); pruned to this config's endpoints. */
  health?: HealthRegistry
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
  const health = opts.health ?? new HealthRegistry()
  const routes = config.routes.map((r) => compileRoute(r, opts, health))
  const live = new Set<VariantHealth>()
  for (const r of routes) {
    live.add(r.primary.health)
    if (r.canary !== null) live.add(r.canary.health)
  }
  health.retain(live)
  return new RouteTable(routes, config)
}

function compileRoute(r: RouteConfig, opts: CompileOptions, health: HealthRegistry): CompiledRoute {
  const variant = (name: Variant, cfg: UpstreamConfig): BalancerType => {
    const group = health.variant(r.name, name)
    const endpoints = cfg.endpoints.map((raw) => {
      const u = new URL(raw)
      const basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
      const pool = opts.pools.get(u.origin, { connectTimeout: r.timeouts.connect })
      return new Endpoint(raw, u.origin, u.host, basePath, pool, health.endpoint(group, raw))
    })
    group.members = [...new Set(endpoints.map((e) => e.health))]
    group.outlier = cfg.outlierDetection
    group.maxInFlight = cfg.maxInFlight ?? null
    return new Balancer(endpoints, r.balance, group)
  }
  const sticky = r.split.sticky
  const canary = r.canary ? variant('canary', r.canary) : null
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
    primary: variant('primary', r.primary),
    canary,
    assignCookie:
      sticky?.assign && sticky.cookie
        ? { name: sticky.cookie, maxAgeSeconds: Math.floor(sticky.maxAge / 1000) }
        : null,
    timeouts: r.timeouts,
    exposeVariant: r.exposeVariant,
    retry: compileRetry(r.retry),
    failover: r.failover,
    faults: opts.phases?.faults?.(r) ?? null,
    mirror: canary !== null ? (opts.phases?.mirror?.(r, canary) ?? null) : null,
    config: r,
  })
}
