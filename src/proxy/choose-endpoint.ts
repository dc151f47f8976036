// Which endpoint a request goes to once its variant is decided: a usable one (not ejected, not down);
// when the variant has none, canary-bound weighted and sticky requests fail over to the primary
// (failover: true), and otherwise the variant's endpoints are used all the same (panic mode).
import type { Variant } from '../config/schema.js'
import type { CompiledRoute, RequestContext } from '../core/pipeline.js'
import type { Reason } from '../routing/decide.js'
import { balancerFor } from '../routing/table.js'
import type { Balancer, Endpoint } from '../upstream/endpoint.js'

/** Pure: does a request for a variant with no usable endpoint go to the primary instead? */
export function shouldFailOver(variant: Variant, reason: Reason, failover: boolean): boolean {
  return failover && variant === 'canary' && reason !== 'override'
}

export interface Choice {
  balancer: Balancer
  endpoint: Endpoint
}

/** Picks the endpoint, failing over (ctx.variant becomes primary, ctx.failover true) when it must. */
export function chooseEndpoint(route: CompiledRoute, ctx: RequestContext): Choice {
  let balancer = balancerFor(route, ctx.variant)
  let endpoint = balancer.pickUsable()
  if (endpoint !== null) return { balancer, endpoint }
  balancer.health.noUsable++
  if (shouldFailOver(ctx.variant, ctx.reason, route.failover) && route.canary !== null) {
    balancer.health.failovers++
    ctx.variant = 'primary'
    ctx.failover = true
    balancer = route.primary
    endpoint = balancer.pickUsable()
    if (endpoint !== null) return { balancer, endpoint }
    balancer.health.noUsable++
  }
  balancer.health.panics++
  return { balancer, endpoint: balancer.pick() }
}

/**
 * A canary-bound request whose try failed to connect, when the canary has no usable endpoint left
 * (its endpoints were ejected while the request was on its way): the primary endpoint to re-send it
 * to, with ctx switched to the primary (ctx.switchedFrom keeps the variant it started as). Nothing
 * reached the canary, so this is the same failover a later request gets. null when it does not apply.
 */
export function failOverMidway(route: CompiledRoute, ctx: RequestContext): Endpoint | null {
  const canary = route.canary
  if (
    canary === null ||
    !shouldFailOver(ctx.variant, ctx.reason, route.failover) ||
    canary.health.hasUsable()
  )
    return null
  const endpoint = route.primary.pickUsable()
  if (endpoint === null) return null
  canary.health.noUsable++
  canary.health.failovers++
  ctx.switchedFrom = ctx.variant
  ctx.variant = 'primary'
  ctx.failover = true
  return endpoint
}
