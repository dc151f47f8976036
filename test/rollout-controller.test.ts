// The rollout controller end to end: real sample upstreams behind an in-process Turnout, steady
// traffic, intervals of a few hundred ms.
import t, { type Test } from 'tap'
import type { RolloutStatus } from '../src/rollout/controller.js'
import { stepsFor } from '../src/rollout/controller.js'
import { startLoad, until } from './helpers/load.js'
import { type ConfigObject, startSampleShop } from './helpers/turnout.js'

async function setup(
  t: Test,
  rollout: ConfigObject,
  route: ConfigObject = {},
  canaryExtra: ConfigObject = {},
) {
  const { primary, canary, turnout } = await startSampleShop(
    t,
    {
      overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
      rollout,
      ...route,
    },
    canaryExtra,
  )
  const changes: RolloutStatus[] = []
  turnout.rollouts.onChange((_route, s) => changes.push({ ...s }))
  const controller = turnout.rollouts.get('shop')!
  return { primary, canary, turnout, changes, controller }
}

t.test('steps: explicit, or stepWeight up to maxWeight, always ending at 100', async (t) => {
  t.same(stepsFor({ steps: [5, 10, 25, 50, 100] }), [5, 10, 25, 50, 100])
  t.same(stepsFor({ steps: [5, 50] }), [5, 50, 100])
  t.same(stepsFor({ stepWeight: 10, maxWeight: 50 }), [10, 20, 30, 40, 50, 100])
  t.same(stepsFor({ stepWeight: 25 }), [25, 50, 75, 100])
  t.same(stepsFor({ stepWeight: 30, maxWeight: 50 }), [30, 100])
  t.same(stepsFor({ stepWeight: 0.1, maxWeight: 0.3 }), [0.1, 0.2, 0.3, 100])
})

t.test('a healthy canary is promoted through every step to succeeded', async (t) => {
  const { turnout, changes, controller } = await setup(t, {
    steps: [10, 50],
    interval: '300ms',
    minRequests: 10,
    failureLimit: 1,
    analysis: [
      { metric: 'errorRate', max: '1%' },
      { metric: 'latencyP99', max: '2s' },
      { metric: 'errorRateVsPrimary', max: '1%' },
    ],
  })
  t.equal(controller.status().phase, 'idle')
  const load = startLoad(turnout.url, { workers: 4 })
  t.teardown(() => load.stop())
  controller.start()
  t.same([controller.status().phase, controller.status().weight], ['progressing', 10], 'first step at once')
  t.ok(await until(() => controller.phase === 'succeeded', 20_000), 'succeeded')
  await load.stop()
  const weights = changes.map((c) => c.weight).filter((w, i, all) => i === 0 || all[i - 1] !== w)
  t.same(weights, [10, 50, 100], 'every step, in order')
  t.same(
    changes.map((c) => c.phase).filter((p, i, all) => i === 0 || all[i - 1] !== p),
    ['progressing', 'promoting', 'succeeded'],
  )
  const last = controller.status()
  t.equal(last.weight, 100)
  t.equal(turnout.holder.current.byName.get('shop')!.weight.canary, 100, 'the live weight')
  t.equal(last.failures, 0)
  t.match(last.reason, /canary endpoints now serve all traffic/)
  t.same(
    last.analysis.map((a) => [a.check, a.result]),
    [
      ['errorRate', 'pass'],
      ['latencyP99', 'pass'],
    ],
    'at 100% the checks against the primary are left out',
  )
  t.ok(load.counts.variants.canary > 0 && load.counts.variants.primary > 0)
})

t.test(
  'a canary returning 500s is aborted within failureLimit intervals; then only overrides reach it',
  async (t) => {
    const { turnout, changes, controller, canary } = await setup(
      t,
      {
        steps: [20, 50],
        interval: '300ms',
        minRequests: 10,
        failureLimit: 2,
        analysis: [{ metric: 'errorRate', max: '5%' }],
      },
      { split: { canary: 0, sticky: { header: 'x-user' } } },
      // This test is about the analysis: a half-failing canary is not ejected (which would fail
      // the health check first, depending on how the 500s fall).
      { outlierDetection: { enabled: false } },
    )
    canary.failRate = 0.5
    const load = startLoad(turnout.url, { workers: 4 })
    t.teardown(() => load.stop())
    controller.start()
    t.ok(await until(() => controller.phase === 'aborted', 15_000), 'aborted')
    // Inconclusive intervals (too few requests on a busy machine) hold the step and are not failures.
    const failed = changes.filter((c) => /analysis failed/.test(c.reason))
    t.equal(failed.length, 2, 'two failed intervals, the second one aborts')
    t.match(failed[0]!.reason, /analysis failed at 20%.*errorRate.*failure 1 of 2, holding the step/)
    t.match(failed[1]!.reason, /failure 2 of 2: failureLimit reached/)
    t.equal(failed[1]!.phase, 'aborted')
    t.notOk(
      changes.some((c) => /analysis passed/.test(c.reason)),
      'no interval passed',
    )
    t.notOk(
      changes.some((c) => c.weight === 50),
      'never advanced',
    )
    const s = controller.status()
    t.same([s.phase, s.weight, s.failures], ['aborted', 0, 2])
    t.equal(s.analysis[0]!.result, 'fail')
    t.ok(s.analysis[0]!.value! > 5)
    t.equal(turnout.holder.current.byName.get('shop')!.weight.canary, 0)

    // After the abort: no canary traffic (sticky users included), but overrides still reach it.
    load.reset()
    const sticky = startLoad(turnout.url, { workers: 2, headers: { 'x-user': 'u-1' } })
    t.ok(await until(() => load.counts.sent >= 50 && sticky.counts.sent >= 20, 15_000), 'traffic continued')
    await sticky.stop()
    const after = await load.stop()
    t.ok(after.sent >= 50, `traffic continued (${after.sent})`)
    t.equal(after.variants.canary, 0, 'no canary traffic')
    t.equal(sticky.counts.variants.canary, 0, 'no sticky canary traffic')
    canary.failRate = 0
    const res = await fetch(`${turnout.url}/`, { headers: { 'x-canary': 'always' } })
    await res.arrayBuffer()
    t.equal(res.headers.get('x-turnout-variant'), 'canary', 'overrides still work')
  },
)

t.test('a slow canary fails latencyP99 and latencyVsPrimary', async (t) => {
  const { turnout, controller, canary } = await setup(t, {
    steps: [50],
    interval: '600ms',
    minRequests: 20,
    failureLimit: 1,
    analysis: [
      { metric: 'latencyP99', max: '15ms' },
      { metric: 'latencyVsPrimary', tolerance: '10%', confidence: '95%' },
    ],
  })
  canary.delayMs = 30
  const load = startLoad(turnout.url, { workers: 6 })
  t.teardown(() => load.stop())
  controller.start()
  t.ok(await until(() => controller.phase === 'aborted', 15_000), 'aborted')
  await load.stop()
  const byCheck = Object.fromEntries(controller.status().analysis.map((a) => [a.check, a]))
  t.equal(byCheck.latencyP99?.result, 'fail')
  t.ok(byCheck.latencyP99!.value! >= 30, `p99 ${byCheck.latencyP99?.value}`)
  t.equal(byCheck.latencyVsPrimary?.result, 'fail')
  t.ok(byCheck.latencyVsPrimary!.value! < 0.05, `p-value ${byCheck.latencyVsPrimary?.value}`)
  t.ok(Math.abs(byCheck.latencyVsPrimary!.threshold! - 0.05) < 1e-9, 'significance level 5%')
})

t.test('too little traffic never promotes', async (t) => {
  const { turnout, controller, changes } = await setup(t, {
    steps: [50],
    interval: '200ms',
    minRequests: 100_000,
    analysis: [{ metric: 'errorRate', max: '1%' }],
  })
  const load = startLoad(turnout.url, { workers: 1, pauseMs: 5 })
  t.teardown(() => load.stop())
  controller.start()
  t.ok(await until(() => changes.filter((c) => /inconclusive/.test(c.reason)).length >= 4, 10_000))
  await load.stop()
  const s = controller.status()
  t.same([s.phase, s.step, s.weight, s.failures], ['progressing', 0, 50, 0], 'held at the first step')
  t.match(s.reason, /inconclusive.*fewer than minRequests \(100000\)/)
  t.same(
    s.analysis.map((a) => a.result),
    ['inconclusive'],
  )
  t.notOk(
    changes.some((c) => c.weight === 100),
    'never reached 100',
  )
})

t.test('commands: pause, resume, promote, abort and manual weight', async (t) => {
  const { turnout, controller } = await setup(t, {
    steps: [10, 20, 30],
    interval: '1h',
    minRequests: 0,
  })
  t.throws(() => controller.pause(), /no rollout is running/)
  t.throws(() => controller.resume(), /idle, not paused/)
  controller.start()
  t.throws(() => controller.start(), /already progressing/)
  controller.pause()
  t.equal(controller.phase, 'paused')
  t.throws(() => controller.pause(), /already paused/)
  turnout.rollouts.setWeight('shop', 3)
  t.same([controller.status().phase, controller.status().weight], ['paused', 3])
  controller.resume()
  t.same(
    [controller.status().phase, controller.status().weight],
    ['progressing', 10],
    'back to the step weight',
  )
  turnout.rollouts.setWeight('shop', 15)
  t.same([controller.status().phase, controller.status().weight], ['paused', 15], 'manual weight pauses')
  t.match(controller.status().reason, /weight set to 15% by the admin API: rollout paused/)
  controller.promote()
  t.same(
    [controller.status().phase, controller.status().weight, controller.status().step],
    ['promoting', 100, 3],
  )
  controller.abort()
  t.same([controller.status().phase, controller.status().weight], ['aborted', 0])
  controller.start()
  t.same(
    [controller.status().phase, controller.status().weight, controller.status().failures],
    ['progressing', 10, 0],
  )
})
