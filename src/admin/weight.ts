// Setting a route's live canary weight: the one path the admin API (PUT /api/routes/NAME/weight)
// and the programmatic API (`setWeight` in src/index.ts) share. Validates, then hands the weight to
// the rollout manager, which pauses a running rollout.

import type { CompiledRoute } from '../core/pipeline.js'
import type { RolloutManager } from '../rollout/controller.js'
import type { TableHolder } from '../routing/holder.js'
import type { Logger } from '../telemetry/logger.js'
import { AdminError } from './server.js'

export interface WeightDeps {
  holder: TableHolder
  rollouts: RolloutManager
  logger: Logger
}

export function findRoute(holder: TableHolder, name: string | undefined): CompiledRoute {
  const route = name === undefined ? undefined : holder.current.byName.get(name)
  if (!route) throw new AdminError(404, `no route named ${JSON.stringify(name ?? '')}`, 'name')
  return route
}

/** Throws AdminError (404 unknown route, 400 bad weight); returns the route as it is afterwards. */
export function setCanaryWeight(
  deps: WeightDeps,
  name: string | undefined,
  canary: unknown,
  by = 'the admin API',
): CompiledRoute {
  const route = findRoute(deps.holder, name)
  if (typeof canary !== 'number' || !Number.isFinite(canary) || canary < 0 || canary > 100) {
    throw new AdminError(400, 'canary must be a number from 0 to 100', 'canary')
  }
  if (canary > 0 && route.canary === null) {
    throw new AdminError(400, `route ${route.name} has no canary endpoints (routes[].canary)`, 'canary')
  }
  deps.rollouts.setWeight(route.name, canary)
  deps.logger.info({ route: route.name, canary }, `canary weight set by ${by}`)
  return findRoute(deps.holder, route.name)
}
