// Runtime state: what the admin API and the rollout controllers changed since the config was read
// (live canary weights, rollout progress). A cluster primary keeps the leader worker's latest copy
// and hands it to every worker it (re)starts, so a worker crash does not undo an emergency
// "canary to 0" or put a rollout back to the file's weight.
import type { RouteTable } from '../routing/table.js'
import type { RolloutState } from './state-file.js'

export interface RuntimeWeight {
  /** The live canary weight. */
  canary: number
  /** The route's split.canary in the config it was set under. */
  configured: number
}

export interface RuntimeState {
  weights: Record<string, RuntimeWeight>
  rollouts: Record<string, RolloutState>
}

export const EMPTY_RUNTIME: RuntimeState = { weights: {}, rollouts: {} }

export function captureWeights(table: RouteTable): Record<string, RuntimeWeight> {
  const out: Record<string, RuntimeWeight> = {}
  for (const r of table.routes) out[r.name] = { canary: r.weight.canary, configured: r.config.split.canary }
  return out
}

/**
 * Puts kept weights on a fresh table, by route name. Like a reload, a route whose split.canary in
 * the config differs from the one the weight was set under takes the config's weight; so does a
 * route without canary endpoints now.
 */
export function restoreWeights(table: RouteTable, weights: Readonly<Record<string, RuntimeWeight>>): void {
  for (const route of table.routes) {
    const kept = weights[route.name]
    if (kept === undefined || kept.configured !== route.config.split.canary) continue
    if (kept.canary > 0 && route.canary === null) continue
    route.weight.canary = kept.canary
  }
}
