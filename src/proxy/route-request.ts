// Phases 1 and 2, shared by plain requests (handle.ts) and upgrades (upgrade.ts): match a route in
// the table snapshot, then decide the variant, recording both on the request context.
import { randomUUID } from 'node:crypto'
import { type DecideDeps, type Decision, decide } from '../routing/decide.js'
import type { RouteTable } from '../routing/table.js'
import type { RequestContext } from './context.js'
import { upstreamRequestHeaders } from './headers.js'
import type { NodeRequestView } from './request-view.js'

const decideDeps: DecideDeps = { random: Math.random, newId: randomUUID }

/** The decision for a matched request, or null when no route matches (the caller answers 404). */
export function routeRequest(table: RouteTable, view: NodeRequestView, ctx: RequestContext): Decision | null {
  const route = table.find(view.host, view.path)
  if (route === null) return null
  ctx.route = route
  const decision = decide(route.policy, route.weight.canary, view, decideDeps)
  ctx.variant = decision.variant
  ctx.reason = decision.reason
  return decision
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
  })
}
