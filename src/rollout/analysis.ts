// Judges one finished rollout interval against the route's analysis checks (rollout.analysis) and
// folds the results into one verdict. Pure: the controller supplies the interval's window stats and,
// for Prometheus checks, the query results it fetched.
import type { AnalysisCheckConfig } from '../config/schema.js'
import { parseDuration, parsePercent } from '../config/units.js'
import { type CheckResult, latencyVsPrimary, MIN_SAMPLE } from './stats.js'
import type { WindowStats } from './window.js'

export type { CheckResult } from './stats.js'

export interface CheckOutcome {
  /** The metric name, or `prometheus`. */
  check: string
  result: CheckResult
  /** errorRate/errorRateVsPrimary: percent (points); latencyP99: ms; latencyVsPrimary: p-value. */
  value: number | null
  /** max for most checks; latencyVsPrimary: the significance level (fails when value < threshold). */
  threshold: number | null
}

/** Defaults when a latencyVsPrimary check leaves them out (config percentages, 0..100). */
export const DEFAULT_TOLERANCE = 10
export const DEFAULT_CONFIDENCE = 95

const VS_PRIMARY = new Set(['errorRateVsPrimary', 'latencyVsPrimary'])

/**
 * One outcome per applicable check, in config order. At weight 100 the checks that compare with the
 * primary are left out (the primary has no live traffic); the absolute checks decide. With fewer than
 * `minRequests` canary requests every check is inconclusive. `prometheusResults` is keyed by the
 * check's index in `checks`; a missing or null result is inconclusive.
 */
export function judge(
  checks: AnalysisCheckConfig[],
  interval: { primary: WindowStats; canary: WindowStats },
  opts: { minRequests: number; weight: number },
  prometheusResults?: Map<number, number | null>,
): CheckOutcome[] {
  const enough = interval.canary.requests >= opts.minRequests
  const out: CheckOutcome[] = []
  checks.forEach((c, index) => {
    if (c.metric && VS_PRIMARY.has(c.metric) && opts.weight >= 100) return
    const outcome = c.prometheus
      ? prometheus(c.prometheus, prometheusResults?.get(index))
      : metric(c, interval.canary, interval.primary)
    if (!enough) outcome.result = 'inconclusive'
    out.push(outcome)
  })
  return out
}

/**
 * The `health` check, judged whatever the traffic: a canary that had no usable endpoint during the
 * interval (`noUsable` requests found every canary endpoint ejected or down, or none is usable now)
 * fails it, so a crashed canary aborts the rollout even though failover moved its traffic away.
 * null while the canary is fine (the check is then left out of the outcomes).
 */
export function healthOutcome(noUsable: number, usableNow: boolean): CheckOutcome | null {
  if (noUsable === 0 && usableNow) return null
  return { check: 'health', result: 'fail', value: noUsable, threshold: 0 }
}

/** Any fail → fail; else any inconclusive → inconclusive; else (including no checks) pass. */
export function overall(results: ReadonlyArray<{ result: CheckResult }>): CheckResult {
  if (results.some((r) => r.result === 'fail')) return 'fail'
  if (results.some((r) => r.result === 'inconclusive')) return 'inconclusive'
  return 'pass'
}

function metric(c: AnalysisCheckConfig, canary: WindowStats, primary: WindowStats): CheckOutcome {
  const check = c.metric ?? 'unknown'
  switch (c.metric) {
    case 'errorRate':
      return atMost(check, errorRate(canary), percentOf(c.max))
    case 'latencyP99':
      return atMost(check, canary.p99, durationOf(c.max))
    case 'errorRateVsPrimary': {
      const p = primary.requests >= MIN_SAMPLE ? errorRate(primary) : null
      const k = errorRate(canary)
      return atMost(check, p === null || k === null ? null : k - p, percentOf(c.max))
    }
    case 'latencyVsPrimary': {
      const tolerance = (c.tolerance ?? DEFAULT_TOLERANCE) / 100
      const confidence = (c.confidence ?? DEFAULT_CONFIDENCE) / 100
      const r = latencyVsPrimary(canary.sample, primary.sample, tolerance, confidence)
      return {
        check,
        result: r.result,
        value: Number.isNaN(r.value) ? null : r.value,
        threshold: 1 - confidence,
      }
    }
    default:
      return { check, result: 'inconclusive', value: null, threshold: null }
  }
}

function prometheus(
  p: NonNullable<AnalysisCheckConfig['prometheus']>,
  value: number | null | undefined,
): CheckOutcome {
  const check = 'prometheus'
  const threshold = p.max ?? p.min ?? null
  if (value === null || value === undefined || Number.isNaN(value)) {
    return { check, result: 'inconclusive', value: null, threshold }
  }
  if (p.max !== undefined && value > p.max) return { check, result: 'fail', value, threshold: p.max }
  if (p.min !== undefined && value < p.min) return { check, result: 'fail', value, threshold: p.min }
  return { check, result: 'pass', value, threshold }
}

// Rounding slack so that e.g. 0.7% - 0.2% is not judged above a 0.5% max.
const EPSILON = 1e-9

/** pass when value <= threshold; inconclusive when either is unknown. */
function atMost(check: string, value: number | null, threshold: number | null): CheckOutcome {
  if (value === null || threshold === null) return { check, result: 'inconclusive', value, threshold }
  return { check, result: value <= threshold + EPSILON ? 'pass' : 'fail', value, threshold }
}

/** Share of responses that were errors, in percent; null with no requests. */
function errorRate(w: WindowStats): number | null {
  return w.requests > 0 ? (w.errors * 100) / w.requests : null
}

function percentOf(max: number | string | undefined): number | null {
  if (typeof max === 'number') return max >= 0 && max <= 100 ? max : null
  return typeof max === 'string' ? parsePercent(max) : null
}

/** A duration string, or a number of ms. */
function durationOf(max: number | string | undefined): number | null {
  if (typeof max === 'number') return max >= 0 ? max : null
  return typeof max === 'string' ? parseDuration(max) : null
}
