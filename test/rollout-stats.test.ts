import { wilcoxonRankSum } from 'simple-statistics'
import t from 'tap'
import { latencyVsPrimary, MIN_SAMPLE, mannWhitneyGreater, normalUpperTail } from '../src/rollout/stats.js'
import { DEFAULT_SAMPLE_SIZE, RouteWindows, VariantWindow } from '../src/rollout/window.js'
import { mulberry32, normal } from './helpers/random.js'

// Latency distributions built on the seeded PRNG.
/** Lognormal latencies with median `medianMs` and log-sd `sigma`. */
function lognormal(rand: () => number, n: number, medianMs: number, sigma = 0.5): number[] {
  return Array.from({ length: n }, () => medianMs * Math.exp(sigma * normal(rand)))
}
/** Exponential latencies with mean `meanMs`, rounded to whole ms (lots of ties). */
function exponentialMs(rand: () => number, n: number, meanMs: number): number[] {
  return Array.from({ length: n }, () => Math.round(-meanMs * Math.log(1 - rand())))
}
function exactQuantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(q * (s.length - 1))]!
}

t.test('Mann-Whitney U matches SciPy (asymptotic, tie and continuity corrected)', async (t) => {
  const x = [12, 15, 15, 18, 20, 20, 20, 22, 25, 30, 31, 31, 35, 40, 41]
  const y = [10, 11, 12, 12, 14, 15, 16, 18, 18, 19, 20, 21, 24, 26]
  const r = mannWhitneyGreater(x, y)
  t.equal(r.u, 162.5)
  t.ok(Math.abs(r.pValue - 0.006302109896360133) < 1e-6, `p ${r.pValue}`)
  const back = mannWhitneyGreater(y, x)
  t.equal(back.u, 47.5)
  t.ok(Math.abs(back.pValue - 0.9944340076733618) < 1e-6, `p ${back.pValue}`)
  // Rank sum agrees with simple-statistics' independent implementation (U = R - n1(n1+1)/2).
  t.equal(r.u + (x.length * (x.length + 1)) / 2, wilcoxonRankSum(x, y))
  const noTies = mannWhitneyGreater([3.1, 4.7, 5.0, 2.2, 8.9, 6.1, 7.3], [2.0, 3.3, 1.9, 4.1, 2.8, 3.0])
  t.equal(noTies.u, 36)
  t.ok(Math.abs(noTies.pValue - 0.01915938157470678) < 1e-6, `p ${noTies.pValue}`)
  t.same(mannWhitneyGreater([5, 5, 5], [5, 5]), { u: 3, z: 0, pValue: 1 }, 'all tied: no evidence')
  t.throws(() => mannWhitneyGreater([], [1]), RangeError)
})

t.test('normal tail', async (t) => {
  t.ok(Math.abs(normalUpperTail(0) - 0.5) < 1e-7)
  t.ok(Math.abs(normalUpperTail(1.6448536269514722) - 0.05) < 1e-6)
  t.ok(Math.abs(normalUpperTail(-1.959963984540054) - 0.975) < 1e-6)
})

t.test('latencyVsPrimary on known distributions', async (t) => {
  const rand = mulberry32(42)
  const primary = lognormal(rand, 2000, 100)
  const same = lognormal(rand, 2000, 100)
  const eq = latencyVsPrimary(same, primary, 0.1, 0.95)
  t.equal(eq.result, 'pass', `equal distributions pass (p ${eq.value})`)
  t.ok(eq.value > 0.5, 'and the p-value is nowhere near significance')
  // Without tolerance the same samples still pass.
  t.equal(latencyVsPrimary(same, primary, 0, 0.95).result, 'pass')

  const slower = lognormal(rand, 2000, 130)
  const s = latencyVsPrimary(slower, primary, 0.1, 0.95)
  t.equal(s.result, 'fail', `30% slower fails (p ${s.value})`)
  t.ok(s.value < 0.001)
  // A moderate sample size still detects it.
  const s200 = latencyVsPrimary(lognormal(rand, 200, 130), lognormal(rand, 200, 100), 0.1, 0.95)
  t.equal(s200.result, 'fail', `30% slower fails with 200 values (p ${s200.value})`)

  const within = latencyVsPrimary(lognormal(rand, 2000, 105), primary, 0.1, 0.95)
  t.equal(within.result, 'pass', `5% slower is within a 10% tolerance (p ${within.value})`)
  t.equal(latencyVsPrimary(lognormal(rand, 2000, 105), primary, 0, 0.95).result, 'fail', 'but not within 0%')

  const faster = latencyVsPrimary(lognormal(rand, 2000, 70), primary, 0.1, 0.95)
  t.equal(faster.result, 'pass')
  t.ok(faster.value > 0.99)
})

t.test('latencyVsPrimary with heavy ties (whole-ms exponential latencies)', async (t) => {
  const rand = mulberry32(7)
  const primary = exponentialMs(rand, 2000, 20)
  t.equal(latencyVsPrimary(exponentialMs(rand, 2000, 20), primary, 0.1, 0.95).result, 'pass')
  t.equal(latencyVsPrimary(exponentialMs(rand, 2000, 26), primary, 0.1, 0.95).result, 'fail')
})

t.test('latencyVsPrimary: small samples are inconclusive, bad arguments throw', async (t) => {
  const rand = mulberry32(1)
  const few = lognormal(rand, MIN_SAMPLE - 1, 500)
  const many = lognormal(rand, 500, 100)
  const r = latencyVsPrimary(few, many, 0.1, 0.95)
  t.equal(r.result, 'inconclusive', 'a very slow canary with too few values is not a verdict')
  t.ok(Number.isNaN(r.value))
  t.equal(latencyVsPrimary(many, few, 0.1, 0.95).result, 'inconclusive')
  const withJunk = [...few, Number.NaN, Number.POSITIVE_INFINITY]
  t.equal(
    latencyVsPrimary(withJunk, many, 0.1, 0.95).result,
    'inconclusive',
    'non-finite values do not count',
  )
  t.equal(
    latencyVsPrimary(lognormal(rand, MIN_SAMPLE, 500), many, 0.1, 0.95).result,
    'fail',
    'exactly enough',
  )
  t.throws(() => latencyVsPrimary(many, many, -1, 0.95), RangeError)
  t.throws(() => latencyVsPrimary(many, many, 0.1, 95), RangeError)
  const copy = [...many]
  latencyVsPrimary(many, copy, 0.5, 0.95)
  t.same(copy, many, 'the primary sample is not modified')
})

t.test('window counts requests and errors', async (t) => {
  const w = new VariantWindow()
  w.record(200, 10, false)
  w.record(404, 12, false)
  w.record(499, 12, false)
  w.record(500, 30, false)
  w.record(502, 1, true)
  w.record(504, 5000, false)
  w.record(200, 40, true) // upstream error after the head was sent
  w.record(200, Number.NaN, false) // counted, but no latency
  const s = w.snapshot()
  t.equal(s.requests, 8)
  t.equal(s.errors, 4)
  t.equal(s.sample.length, 7)
  t.same(
    [...s.sample].sort((a, b) => a - b),
    [1, 10, 12, 12, 30, 40, 5000],
  )
  w.record(200, 1, false)
  t.equal(s.requests, 8, 'a snapshot does not move')
  t.equal(s.quantile(1), 5000, 'max is exact')
  t.equal(s.quantile(0), 1, 'min is exact')
  t.equal(w.snapshot().requests, 9)
  w.reset()
  const empty = w.snapshot()
  t.same([empty.requests, empty.errors, empty.p50, empty.p99, empty.sample], [0, 0, null, null, []])
  t.equal(empty.quantile(0.5), null)
})

t.test('sketch quantiles are within 1% of exact quantiles', async (t) => {
  const rand = mulberry32(99)
  const w = new VariantWindow({ random: mulberry32(5) })
  const values = lognormal(rand, 50_000, 80, 0.8)
  for (const v of values) w.record(200, v, false)
  const s = w.snapshot()
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = exactQuantile(values, q)
    const got = s.quantile(q)!
    t.ok(Math.abs(got - exact) / exact <= 0.011, `q${q}: sketch ${got} vs exact ${exact}`)
  }
  t.equal(s.p50, s.quantile(0.5))
  t.equal(s.p99, s.quantile(0.99))
  t.equal(s.quantile(1.5), null)
  t.equal(s.quantile(0), Math.min(...values))
  t.equal(s.quantile(1), Math.max(...values))
})

t.test('the latency sample stays bounded and is a fair sample', async (t) => {
  const w = new VariantWindow({ random: mulberry32(3) })
  for (let i = 0; i < 100_000; i++) w.record(200, i, false)
  const s = w.snapshot()
  t.equal(s.requests, 100_000)
  t.equal(s.sample.length, DEFAULT_SAMPLE_SIZE)
  // Values 0..99999 uniformly: a fair reservoir has a mean near 50000 and covers the whole range.
  const mean = s.sample.reduce((a, b) => a + b, 0) / s.sample.length
  t.ok(Math.abs(mean - 50_000) < 3000, `sample mean ${mean}`)
  t.ok(s.sample.filter((v) => v >= 90_000).length > 100, 'late values make it into the sample')
  t.ok(s.sample.filter((v) => v < 10_000).length > 100, 'early values stay in the sample')
  const small = new VariantWindow({ sampleSize: 10 })
  for (let i = 0; i < 1000; i++) small.record(200, 1, false)
  t.equal(small.snapshot().sample.length, 10)
  t.throws(() => new VariantWindow({ sampleSize: 0 }), RangeError)
})

t.test('RouteWindows.rotate hands over the interval and starts a new one', async (t) => {
  const r = new RouteWindows()
  for (let i = 0; i < 30; i++) r.primary.record(200, 10, false)
  for (let i = 0; i < 10; i++) r.canary.record(i < 2 ? 503 : 200, 20, false)
  const first = r.rotate()
  t.same(
    [first.primary.requests, first.primary.errors, first.canary.requests, first.canary.errors],
    [30, 0, 10, 2],
  )
  t.ok(Math.abs(first.canary.p99! - 20) / 20 <= 0.01)
  r.canary.record(200, 500, false)
  t.equal(first.canary.requests, 10, 'recording after rotate does not touch the finished interval')
  t.ok(Math.abs(first.canary.p99! - 20) / 20 <= 0.01, 'nor its sketch')
  const second = r.rotate()
  t.same([second.primary.requests, second.canary.requests, second.canary.errors], [0, 1, 0])
  t.ok(Math.abs(second.canary.p50! - 500) / 500 <= 0.01)
  t.equal(second.primary.p99, null)
})
