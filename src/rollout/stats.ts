// The rank test behind the latencyVsPrimary check: a one-sided Mann-Whitney U (Wilcoxon rank-sum)
// test of "the canary's latencies tend to be larger than the primary's, scaled by (1 + tolerance)".
// No npm package offers this with a p-value and tie handling (simple-statistics' wilcoxonRankSum gives
// only the rank sum; @stdlib's wilcoxon is the paired signed-rank test), so the normal approximation
// is done here: mid-ranks for ties, tie-corrected variance, continuity correction, matching SciPy's
// mannwhitneyu(method='asymptotic'). The normal tail comes from simple-statistics' errorFunction.
import { errorFunction } from 'simple-statistics'

/** Fewer values than this in either sample → inconclusive (the normal approximation is poor). */
export const MIN_SAMPLE = 20

export interface RankSumResult {
  /** Mann-Whitney U of x (pairs where x > y, ties counting one half). */
  u: number
  /** Standardised U, continuity-corrected towards the null. */
  z: number
  /** One-sided p-value for "x tends to be larger than y". */
  pValue: number
}

/**
 * One-sided Mann-Whitney U test that `x` is stochastically larger than `y`.
 * Both samples must be non-empty and hold finite numbers.
 */
export function mannWhitneyGreater(x: readonly number[], y: readonly number[]): RankSumResult {
  const n1 = x.length
  const n2 = y.length
  if (n1 === 0 || n2 === 0) throw new RangeError('both samples must be non-empty')
  const a = Float64Array.from(x).sort()
  const b = Float64Array.from(y).sort()
  const n = n1 + n2
  // Walk both sorted samples in step, one group of equal values at a time: the group takes ranks
  // pos+1 .. pos+t, so each member gets the mid-rank pos + (t+1)/2.
  let i = 0
  let j = 0
  let pos = 0
  let rankSumX = 0
  let tieTerm = 0 // Σ (t³ - t) over groups of ties
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!
    let inX = 0
    while (i < n1 && a[i] === v) {
      i++
      inX++
    }
    let inY = 0
    while (j < n2 && b[j] === v) {
      j++
      inY++
    }
    const t = inX + inY
    rankSumX += inX * (pos + (t + 1) / 2)
    tieTerm += t * t * t - t
    pos += t
  }
  const u = rankSumX - (n1 * (n1 + 1)) / 2
  const mean = (n1 * n2) / 2
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)))
  if (!(variance > 0)) return { u, z: 0, pValue: 1 } // every value tied: no evidence either way
  const z = (u - mean - 0.5) / Math.sqrt(variance)
  return { u, z, pValue: normalUpperTail(z) }
}

/** P(Z > z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  return Math.min(1, Math.max(0, 0.5 * (1 - errorFunction(z / Math.SQRT2))))
}

export type CheckResult = 'pass' | 'fail' | 'inconclusive'

/**
 * Is the canary slower than the primary beyond `tolerance` (a fraction, 0.10 = 10%)? Fails when the
 * canary's latencies are larger than the primary's times (1 + tolerance) at the given `confidence`
 * (0.95 → fail when p < 0.05). `value` is the one-sided p-value (NaN when inconclusive). Non-finite
 * values are ignored; fewer than MIN_SAMPLE values on either side → inconclusive.
 */
export function latencyVsPrimary(
  canarySample: number[],
  primarySample: number[],
  tolerance: number,
  confidence: number,
): { result: CheckResult; value: number } {
  if (!(tolerance > -1) || !Number.isFinite(tolerance))
    throw new RangeError('tolerance must be a fraction > -1')
  if (!(confidence >= 0 && confidence <= 1)) throw new RangeError('confidence must be from 0 to 1')
  const canary = canarySample.filter(Number.isFinite)
  const primary = primarySample.filter(Number.isFinite)
  if (canary.length < MIN_SAMPLE || primary.length < MIN_SAMPLE)
    return { result: 'inconclusive', value: Number.NaN }
  const scale = 1 + tolerance
  for (let k = 0; k < primary.length; k++) primary[k] = primary[k]! * scale
  const { pValue } = mannWhitneyGreater(canary, primary)
  return { result: pValue < 1 - confidence ? 'fail' : 'pass', value: pValue }
}
