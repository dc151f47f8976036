// Phases 1 and 2, shared by plain requests (handle.ts) and upgrades (upgrade.ts): match a route in
// the table snapshot, then decide the variant, recording both on the request context.
import { randomUUID } from 'node:crypto'
import type { CompiledRoute, RequestContext } from '../core/pipeline.js'
import { upstreamRequestHeaders } from '../http/headers.js'
import { type DecideDeps, type Decision, decide } from '../routing/decide.js'
import type { RouteTable } from '../routing/table.js'
import type { NodeRequestView } from './request-view.js'

const decideDeps: DecideDeps = { random: Math.random, newId: randomUUID }

/** Phase 1: the route for this request in the table snapshot, or null (the caller answers 404). */
export function matchRoute(
  table: RouteTable,
  view: NodeRequestView,
  ctx: RequestContext,
): CompiledRoute | null {
  const route = table.find(view.host, view.path)
  ctx.route = route
  return route
}

/**
 * Phase 2: the variant (override > sticky > weight), recorded on the context. Returns the sticky
 * Set-Cookie response header (flat name/value list) when a new sticky id was assigned, else null.
 */
export function decideVariant(
  route: CompiledRoute,
  view: NodeRequestView,
  ctx: RequestContext,
): string[] | null {
  const decision: Decision = decide(route.policy, route.weight.canary, view, decideDeps)
  ctx.variant = decision.variant
  ctx.reason = decision.reason
  const c = route.assignCookie
  if (decision.assignedId === null || c === null) return null
  return [
    'set-cookie',
    `${c.name}=${decision.assignedId}; Path=/; Max-Age=${c.maxAgeSeconds}; HttpOnly; SameSite=Lax`,
  ]
}

/** The local 404 body for a request no route matches. */
export function noRouteBody(view: NodeRequestView): Record<string, string> {
  return { error: 'no_route', host: view.host, path: view.path }
}

/** The header list sent upstream for this request: the client's, rewritten for the decided variant. */
export function upstreamHeadersFor(
  view: NodeRequestView,
  ctx: RequestContext,
  trustForwarded: boolean,
): string[] {
  return upstreamRequestHeaders(view.req.rawHeaders, {
    clientAddress: view.req.socket.remoteAddress ?? '',
    proto: 'http',
    trustForwarded,
    variant: ctx.variant,
    extra: ctx.upstreamHeaders,
    authority: view.authority,
  })
}
