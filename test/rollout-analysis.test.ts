import t from 'tap'
import type { AnalysisCheckConfig } from '../src/config/schema.js'
import { configSchema } from '../src/config/schema.js'
import { judge, overall } from '../src/rollout/analysis.js'
import { VariantWindow, type WindowStats } from '../src/rollout/window.js'
import { mulberry32, normal } from './helpers/random.js'

/** A finished interval of `requests` responses, the first `errors` of them 500s, latencies from `latency`. */
function interval(requests: number, errors: number, latency: (i: number) => number): WindowStats {
  const w = new VariantWindow({ random: mulberry32(requests) })
  for (let i = 0; i < requests; i++) w.record(i < errors ? 500 : 200, latency(i), false)
  return w.drain()
}
const flat = (ms: number) => () => ms
/** Lognormal latencies with the given median, deterministic per seed. */
function lognormal(seed: number, medianMs: number): (i: number) => number {
  const rand = mulberry32(seed)
  return () => medianMs * Math.exp(0.5 * normal(rand))
}
const OPTS = { minRequests: 100, weight: 20 }

t.test('errorRate: a max in percent, as a number or a string, inclusive', async (t) => {
  const primary = interval(400, 0, flat(10))
  for (const max of [1, '1%']) {
    const [ok] = judge([{ metric: 'errorRate', max }], { primary, canary: interval(100, 1, flat(10)) }, OPTS)
    t.same(ok, { check: 'errorRate', result: 'pass', value: 1, threshold: 1 }, `1% against max ${max}`)
    const [bad] = judge([{ metric: 'errorRate', max }], { primary, canary: interval(100, 2, flat(10)) }, OPTS)
    t.same(bad, { check: 'errorRate', result: 'fail', value: 2, threshold: 1 }, `2% against max ${max}`)
  }
  const halfPct = [{ metric: 'errorRate', max: '0.5%' }] satisfies AnalysisCheckConfig[]
  t.equal(judge(halfPct, { primary, canary: interval(200, 1, flat(10)) }, OPTS)[0]!.result, 'pass')
  t.equal(judge(halfPct, { primary, canary: interval(200, 2, flat(10)) }, OPTS)[0]!.result, 'fail')
  t.equal(judge(halfPct, { primary, canary: interval(400, 3, flat(10)) }, OPTS)[0]!.value, 0.75)
  // Upstream errors count as errors whatever the status.
  const w = new VariantWindow()
  for (let i = 0; i < 100; i++) w.record(200, 5, i < 3)
  const [up] = judge([{ metric: 'errorRate', max: 2 }], { primary, canary: w.drain() }, OPTS)
  t.same([up!.result, up!.value], ['fail', 3])
})

t.test('latencyP99: a max duration against the canary p99 in ms', async (t) => {
  const primary = interval(400, 0, flat(10))
  const canary = interval(1000, 0, (i) => (i < 985 ? 100 : 800)) // p99 = 800ms
  const [bad] = judge([{ metric: 'latencyP99', max: '500ms' }], { primary, canary }, OPTS)
  t.equal(bad!.result, 'fail')
  t.equal(bad!.threshold, 500)
  t.ok(Math.abs(bad!.value! - 800) / 800 <= 0.01, `p99 ${bad!.value}`)
  const [ok] = judge([{ metric: 'latencyP99', max: '1s' }], { primary, canary }, OPTS)
  t.same([ok!.result, ok!.threshold], ['pass', 1000])
  const fast = interval(1000, 0, (i) => (i < 995 ? 100 : 800)) // p99 = 100ms
  t.equal(judge([{ metric: 'latencyP99', max: '500ms' }], { primary, canary: fast }, OPTS)[0]!.result, 'pass')
})

t.test('errorRateVsPrimary: canary rate minus primary rate in percentage points', async (t) => {
  const primary = interval(1000, 10, flat(10)) // 1%
  const canary = interval(200, 6, flat(10)) // 3%
  const [ok] = judge([{ metric: 'errorRateVsPrimary', max: 2 }], { primary, canary }, OPTS)
  t.same(ok, { check: 'errorRateVsPrimary', result: 'pass', value: 2, threshold: 2 })
  const [bad] = judge([{ metric: 'errorRateVsPrimary', max: '1.5%' }], { primary, canary }, OPTS)
  t.same([bad!.result, bad!.value, bad!.threshold], ['fail', 2, 1.5])
  // A canary better than the primary is a negative difference.
  const [better] = judge(
    [{ metric: 'errorRateVsPrimary', max: 0 }],
    { primary, canary: interval(200, 0, flat(10)) },
    OPTS,
  )
  t.same([better!.result, better!.value], ['pass', -1])
  // A primary with almost no traffic gives no rate to compare with.
  const [thin] = judge(
    [{ metric: 'errorRateVsPrimary', max: 2 }],
    { primary: interval(5, 0, flat(10)), canary },
    OPTS,
  )
  t.same([thin!.result, thin!.value], ['inconclusive', null])
})

t.test('latencyVsPrimary: rank test with tolerance and confidence from the config', async (t) => {
  const primary = interval(2000, 0, lognormal(1, 100))
  const check = [
    { metric: 'latencyVsPrimary', tolerance: 10, confidence: 95 },
  ] satisfies AnalysisCheckConfig[]
  const [same] = judge(check, { primary, canary: interval(500, 0, lognormal(2, 100)) }, OPTS)
  t.equal(same!.result, 'pass')
  t.equal(same!.threshold, 1 - 0.95)
  t.ok(same!.value! > 0.05)
  const [slow] = judge(check, { primary, canary: interval(500, 0, lognormal(3, 130)) }, OPTS)
  t.equal(slow!.result, 'fail', `30% slower (p ${slow!.value})`)
  t.ok(slow!.value! < 0.05)
  // A tolerance of 50% accepts the same canary; defaults (10%, 95%) reject it.
  const loose = [{ metric: 'latencyVsPrimary', tolerance: 50 }] satisfies AnalysisCheckConfig[]
  t.equal(judge(loose, { primary, canary: interval(500, 0, lognormal(3, 130)) }, OPTS)[0]!.result, 'pass')
  const dflt = [{ metric: 'latencyVsPrimary' }] satisfies AnalysisCheckConfig[]
  const [d] = judge(dflt, { primary, canary: interval(500, 0, lognormal(3, 130)) }, OPTS)
  t.same([d!.result, d!.threshold], ['fail', 1 - 0.95])
  // Too few primary latencies: inconclusive, value null.
  const [thin] = judge(
    check,
    { primary: interval(10, 0, flat(10)), canary: interval(500, 0, flat(500)) },
    OPTS,
  )
  t.same([thin!.result, thin!.value], ['inconclusive', null])
})

t.test('vs-primary checks are left out at weight 100; absolute checks decide', async (t) => {
  const checks: AnalysisCheckConfig[] = [
    { metric: 'errorRate', max: 1 },
    { metric: 'errorRateVsPrimary', max: 1 },
    { metric: 'latencyVsPrimary', tolerance: 10 },
    { metric: 'latencyP99', max: '1s' },
  ]
  const canary = interval(500, 0, flat(50))
  const primary = interval(0, 0, flat(10))
  const full = judge(checks, { primary, canary }, { minRequests: 100, weight: 100 })
  t.same(
    full.map((r) => [r.check, r.result]),
    [
      ['errorRate', 'pass'],
      ['latencyP99', 'pass'],
    ],
  )
  t.equal(overall(full), 'pass')
  const partial = judge(checks, { primary, canary }, { minRequests: 100, weight: 99 })
  t.same(
    partial.map((r) => [r.check, r.result]),
    [
      ['errorRate', 'pass'],
      ['errorRateVsPrimary', 'inconclusive'],
      ['latencyVsPrimary', 'inconclusive'],
      ['latencyP99', 'pass'],
    ],
    'below 100 they apply (and with no primary traffic they cannot pass)',
  )
  t.equal(overall(partial), 'inconclusive')
})

t.test('fewer than minRequests canary requests: every check is inconclusive', async (t) => {
  const checks: AnalysisCheckConfig[] = [
    { metric: 'errorRate', max: 1 },
    { metric: 'errorRate', max: 50 },
    { metric: 'latencyP99', max: '1s' },
    { prometheus: { address: 'http://127.0.0.1:9090', query: 'up', max: 10, timeout: 5000 } },
  ]
  const primary = interval(1000, 0, flat(10))
  const canary = interval(99, 10, flat(10)) // 10% errors: would fail the first check
  const results = judge(checks, { primary, canary }, OPTS, new Map([[3, 1]]))
  t.same(
    results.map((r) => r.result),
    ['inconclusive', 'inconclusive', 'inconclusive', 'inconclusive'],
  )
  t.equal(overall(results), 'inconclusive', 'never success')
  t.ok(Math.abs(results[0]!.value! - (10 / 99) * 100) < 1e-9, 'the value is still reported')
  const enough = judge(checks, { primary, canary: interval(100, 10, flat(10)) }, OPTS, new Map([[3, 1]]))
  t.same(
    enough.map((r) => r.result),
    ['fail', 'pass', 'pass', 'pass'],
  )
  t.equal(overall(enough), 'fail')
  const none = judge(checks, { primary, canary: interval(0, 0, flat(10)) }, { minRequests: 0, weight: 10 })
  t.same(
    none.map((r) => [r.result, r.value]),
    [
      ['inconclusive', null],
      ['inconclusive', null],
      ['inconclusive', null],
      ['inconclusive', null],
    ],
    'no requests at all gives no values even with minRequests 0',
  )
})

t.test('Prometheus checks use the controller result for their index', async (t) => {
  const prom = (p: { max?: number; min?: number }): AnalysisCheckConfig => ({
    prometheus: { address: 'http://127.0.0.1:9090', query: 'q', timeout: 5000, ...p },
  })
  const checks = [
    { metric: 'errorRate', max: 5 },
    prom({ max: 0.5 }),
    prom({ min: 10 }),
    prom({ min: 1, max: 2 }),
  ]
  const interval1 = { primary: interval(500, 0, flat(10)), canary: interval(500, 0, flat(10)) }
  const r = judge(
    checks as AnalysisCheckConfig[],
    interval1,
    OPTS,
    new Map([
      [1, 0.4],
      [2, 9],
      [3, 3],
    ]),
  )
  t.same(r, [
    { check: 'errorRate', result: 'pass', value: 0, threshold: 5 },
    { check: 'prometheus', result: 'pass', value: 0.4, threshold: 0.5 },
    { check: 'prometheus', result: 'fail', value: 9, threshold: 10 },
    { check: 'prometheus', result: 'fail', value: 3, threshold: 2 },
  ])
  const edge = judge(
    checks as AnalysisCheckConfig[],
    interval1,
    OPTS,
    new Map([
      [1, 0.5],
      [2, 10],
      [3, 1],
    ]),
  )
  t.same(
    edge.map((x) => x.result),
    ['pass', 'pass', 'pass', 'pass'],
    'bounds are inclusive',
  )
  const missing = judge(checks as AnalysisCheckConfig[], interval1, OPTS, new Map([[1, null]]))
  t.same(
    missing.map((x) => [x.result, x.value]),
    [
      ['pass', 0],
      ['inconclusive', null],
      ['inconclusive', null],
      ['inconclusive', null],
    ],
  )
  t.same(
    judge(checks as AnalysisCheckConfig[], interval1, OPTS).map((x) => x.result),
    ['pass', 'inconclusive', 'inconclusive', 'inconclusive'],
    'no results map at all',
  )
})

t.test('checks as the config schema produces them', async (t) => {
  const cfg = configSchema.parse({
    routes: [
      {
        name: 'api',
        primary: { endpoints: ['http://127.0.0.1:3001'] },
        canary: { endpoints: ['http://127.0.0.1:3002'] },
        rollout: {
          steps: [10, 50, 100],
          analysis: [
            { metric: 'errorRate', max: '1%' },
            { metric: 'latencyP99', max: '500ms' },
            { metric: 'latencyVsPrimary', tolerance: '10%', confidence: '99%' },
          ],
        },
      },
    ],
  })
  const checks = cfg.routes[0]!.rollout!.analysis
  const primary = interval(2000, 0, lognormal(10, 100))
  const canary = interval(1000, 10, lognormal(11, 100)) // 1%: at the max
  const r = judge(checks, { primary, canary }, OPTS)
  t.same(
    r.map((x) => [x.check, x.result]),
    [
      ['errorRate', 'pass'],
      ['latencyP99', 'pass'],
      ['latencyVsPrimary', 'pass'],
    ],
  )
  t.ok(Math.abs(r[2]!.threshold! - 0.01) < 1e-12)
})

t.test('overall', async (t) => {
  t.equal(overall([]), 'pass', 'no checks: pass')
  t.equal(overall([{ result: 'pass' }, { result: 'pass' }]), 'pass')
  t.equal(overall([{ result: 'pass' }, { result: 'inconclusive' }]), 'inconclusive')
  t.equal(overall([{ result: 'inconclusive' }, { result: 'fail' }, { result: 'pass' }]), 'fail')
})
