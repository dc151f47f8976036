// The rollout's own vocabulary, a leaf module: its phases and the recording handle the controller
// reports to. Telemetry imports these (to label turnout_rollout_phase and friends); nothing here
// imports from telemetry.
import type { CheckResult } from './stats.js'

export const ROLLOUT_PHASES = [
  'idle',
  'waiting',
  'progressing',
  'paused',
  'promoting',
  'succeeded',
  'aborted',
] as const
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number]

/** What a rollout records (telemetry's Metrics implements it; cheap, never throws). */
export interface RolloutMetrics {
  /** The rollout of a route entered `phase` (the gauge is 1 for it and 0 for the other phases). */
  rolloutPhase(route: string, phase: RolloutPhase): void
  /** The rollout's current step (0-based). */
  rolloutStep(route: string, step: number): void
  /** One analysis check was judged for an interval. `check` is the check's configured name. */
  analysisCheck(route: string, check: string, result: CheckResult): void
}

export const noopRolloutMetrics: RolloutMetrics = {
  rolloutPhase() {},
  rolloutStep() {},
  analysisCheck() {},
}
