// Passive outlier detection, pure: what one answer does to an endpoint's ejection state. The caller
// supplies the time (ms) and how many endpoints of the variant are ejected, so every decision here is
// testable without timers or sockets. The per-request cost is a counter update.
import type { OutlierConfig } from '../config/schema.js'

/** An ejection lasts baseEjectionTime × the number of ejections so far, capped at this factor. */
export const MAX_EJECTION_FACTOR = 10

export interface OutlierState {
  /** Failures in a row (5xx answers, gateway errors). */
  consecutive: number
  /** Times this endpoint was ejected (the multiplier of the next ejection time). */
  ejections: number
  /** Date.now() ms until which the endpoint is ejected; 0 when it is not. */
  ejectedUntil: number
  /** Back after an ejection: the next failure ejects again at once. */
  probation: boolean
}

export function newOutlierState(): OutlierState {
  return { consecutive: 0, ejections: 0, ejectedUntil: 0, probation: false }
}

/** How long the `ejections`-th ejection lasts. */
export function ejectionMs(base: number, ejections: number): number {
  return base * Math.min(Math.max(ejections, 1), MAX_EJECTION_FACTOR)
}

/** May one more endpoint be ejected? At most maxPercent of `total`, but one always may. */
export function mayEject(ejectedNow: number, total: number, maxPercent: number): boolean {
  const allowed = Math.max(1, Math.floor((total * maxPercent) / 100 + 1e-9))
  return ejectedNow < allowed
}

/** Ends an ejection whose time has passed (the endpoint returns on probation). True while ejected. */
export function isEjected(s: OutlierState, now: number): boolean {
  if (s.ejectedUntil === 0) return false
  if (now < s.ejectedUntil) return true
  s.ejectedUntil = 0
  s.probation = true
  s.consecutive = 0
  return false
}

/** A good answer: the failure streak ends, and probation with it. */
export function recordSuccess(s: OutlierState): void {
  s.consecutive = 0
  s.probation = false
}

/**
 * A failure. Returns true when it ejects the endpoint now: on probation at once, else at
 * consecutiveFailures in a row, in both cases only if `mayEject` allows one more ejection.
 */
export function recordFailure(
  s: OutlierState,
  cfg: Pick<OutlierConfig, 'enabled' | 'consecutiveFailures' | 'baseEjectionTime' | 'maxEjectionPercent'>,
  now: number,
  ejectedOthers: number,
  total: number,
): boolean {
  s.consecutive++
  if (!cfg.enabled || s.ejectedUntil !== 0) return false
  if (!s.probation && s.consecutive < cfg.consecutiveFailures) return false
  if (!mayEject(ejectedOthers, total, cfg.maxEjectionPercent)) return false
  s.ejections++
  s.ejectedUntil = now + ejectionMs(cfg.baseEjectionTime, s.ejections)
  s.probation = false
  s.consecutive = 0
  return true
}
