// The control-plane API on the admin listener (token auth is the admin server's):
//   GET  /api/routes                              {"routes":[ROUTE...]}
//   GET  /api/routes/NAME                         ROUTE
//   PUT  /api/routes/NAME/weight                  {"canary": 25} → ROUTE (pauses a running rollout)
//   POST /api/routes/NAME/rollout/ACTION          start|pause|resume|promote|abort → ROUTE
// ROUTE = {"name","split":{"canary","sticky"},"overrides","mirror","rollout","endpoints"}; rollout is
// the controller's status ({"phase","step","weight","failures","reason","analysis"}) or null;
// endpoints is {"primary":[ENDPOINT...],"canary":[ENDPOINT...]|null}, ENDPOINT =
// {"url","usable","ejectedUntil","ejections","down","inFlight"} (ejectedUntil an ISO time or null;
// down null without healthCheck, else whether active checks marked it down).

import type { CompiledRoute } from '../core/pipeline.js'
import { RolloutConflict, type RolloutManager, type RolloutStatus } from '../rollout/controller.js'
import type { TableHolder } from '../routing/holder.js'
import type { Logger } from '../telemetry/logger.js'
import type { Balancer } from '../upstream/endpoint.js'
import { AdminError, type AdminServer, sendJson } from './server.js'
import { findRoute, setCanaryWeight } from './weight.js'

export interface RouteView {
  name: string
  split: { canary: number; sticky: unknown }
  overrides: unknown[]
  mirror: unknown
  rollout: RolloutStatus | null
  endpoints: { primary: EndpointView[]; canary: EndpointView[] | null }
}

export interface EndpointView {
  url: string
  /** Gets traffic: not ejected and not down. */
  usable: boolean
  ejectedUntil: string | null
  ejections: number
  down: boolean | null
  inFlight: number
}

function endpointViews(b: Balancer): EndpointView[] {
  return b.endpoints.map((e) => {
    const h = e.health
    const usable = h.usable()
    return {
      url: e.url,
      usable,
      ejectedUntil: h.ejectedUntil > 0 ? new Date(h.ejectedUntil).toISOString() : null,
      ejections: h.ejections,
      down: h.checked ? h.down : null,
      inFlight: h.inFlight,
    }
  })
}

export const ROLLOUT_ACTIONS = ['start', 'pause', 'resume', 'promote', 'abort'] as const
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number]

export function routeView(route: CompiledRoute, rollouts: RolloutManager): RouteView {
  return {
    name: route.name,
    split: { canary: route.weight.canary, sticky: route.config.split.sticky ?? null },
    overrides: route.config.overrides,
    mirror: route.config.mirror ?? null,
    rollout: route.config.rollout ? rollouts.status(route.name) : null,
    endpoints: {
      primary: endpointViews(route.primary),
      canary: route.canary !== null ? endpointViews(route.canary) : null,
    },
  }
}

export function mountRoutesApi(
  admin: AdminServer,
  deps: { holder: TableHolder; rollouts: RolloutManager; logger: Logger },
): void {
  const { holder, rollouts, logger } = deps
  const find = (name: string | undefined): CompiledRoute => findRoute(holder, name)

  admin.route('GET', '/api/routes', ({ res }) =>
    sendJson(res, 200, { routes: holder.current.routes.map((r) => routeView(r, rollouts)) }),
  )

  admin.route('GET', '/api/routes/:name', ({ res, params }) =>
    sendJson(res, 200, routeView(find(params.name), rollouts)),
  )

  admin.route('PUT', '/api/routes/:name/weight', ({ res, params, body }) => {
    find(params.name)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new AdminError(400, 'the body must be a JSON object like {"canary": 25}', 'body')
    }
    const canary = (body as Record<string, unknown>).canary
    const route = setCanaryWeight({ holder, rollouts, logger }, params.name, canary)
    sendJson(res, 200, routeView(route, rollouts))
  })

  admin.route('POST', '/api/routes/:name/rollout/:action', ({ res, params }) => {
    const route = find(params.name)
    const action = params.action as RolloutAction
    if (!ROLLOUT_ACTIONS.includes(action)) {
      throw new AdminError(
        404,
        `unknown rollout action ${JSON.stringify(params.action)}: use ${ROLLOUT_ACTIONS.join(', ')}`,
        'action',
      )
    }
    const controller = rollouts.get(route.name)
    if (!controller) throw new AdminError(409, `route ${route.name} has no rollout: block`, 'rollout')
    try {
      controller[action]()
    } catch (err) {
      if (err instanceof RolloutConflict) throw new AdminError(409, err.message, 'phase')
      throw err
    }
    sendJson(res, 200, routeView(find(route.name), rollouts))
  })
}
