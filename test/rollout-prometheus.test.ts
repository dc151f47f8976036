// The prometheus analysis check against a real Prometheus server scraping Turnout's /metrics.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { startSampleUpstream } from '../src/demo/upstreams.js'
import { queryPrometheus, resultValue } from '../src/rollout/prometheus.js'
import { startLoad, until } from './helpers/load.js'
import { prometheusAvailable, startPrometheus } from './helpers/prometheus.js'
import { startProxy } from './helpers/turnout.js'

t.test('query results: a scalar or the first vector sample; empty, NaN and others are null', async (t) => {
  t.same(resultValue('scalar', [1700000000, '0.25']), { value: 0.25, error: null })
  t.same(resultValue('vector', [{ metric: {}, value: [1700000000, '3'] }]), { value: 3, error: null })
  t.same(resultValue('vector', []).value, null)
  t.same(resultValue('vector', [{ metric: {}, value: [1, 'NaN'] }]).value, null)
  t.match(resultValue('matrix', []), { value: null, error: /unsupported result type matrix/ })
  const refused = await queryPrometheus('http://127.0.0.1:1', 'up', 2000)
  t.same(refused.value, null)
  t.type(refused.error, 'string')
})

const errorRatio = (route: string) =>
  `(sum(turnout_requests_total{route="${route}",variant="canary",code=~"5.."}) or vector(0))` +
  ` / sum(turnout_requests_total{route="${route}",variant="canary"})`

t.test(
  'rollouts judged by a real Prometheus server scraping Turnout',
  { skip: !prometheusAvailable && 'no /usr/bin/prometheus (apt-get install prometheus)' },
  async (t) => {
    const primary = await startSampleUpstream({ name: 'primary' })
    const good = await startSampleUpstream({ name: 'good' })
    const bad = await startSampleUpstream({ name: 'bad', failRate: 0.5 })
    t.teardown(() => Promise.all([primary.close(), good.close(), bad.close()]))
    const route = (name: string, canary: string, address: string) => ({
      name,
      match: { pathPrefix: `/${name}` },
      primary: { endpoints: [primary.url] },
      // Outlier detection would eject the 50%-failing canary and fail the rollout on its health
      // check first; this test is about the Prometheus check.
      canary: { endpoints: [canary], outlierDetection: { enabled: false } },
      rollout: {
        steps: [50],
        interval: '1s',
        minRequests: 5,
        failureLimit: 1,
        analysis: [{ prometheus: { address, query: errorRatio(name), max: 0.01, timeout: '2s' } }],
      },
    })
    // The Prometheus address is only known after Turnout is up: start with a placeholder, then apply.
    const turnout = await startProxy(t, { routes: [route('good', good.url, 'http://127.0.0.1:1')] })
    const prom = await startPrometheus(t, [`127.0.0.1:${turnout.adminAddress.port}`])
    turnout.apply(
      parseConfig(
        JSON.stringify({
          listen: '127.0.0.1:0',
          admin: { listen: '127.0.0.1:0' },
          accessLog: { enabled: false },
          routes: [
            route('good', good.url, prom.url),
            route('bad', bad.url, prom.url),
            route('blind', good.url, 'http://127.0.0.1:1'),
          ],
        }),
        'test',
      ),
    )
    const loads = ['good', 'bad', 'blind'].map((name) =>
      startLoad(turnout.url, { workers: 2, path: `/${name}/x` }),
    )
    t.teardown(() => Promise.all(loads.map((l) => l.stop())))
    for (const name of ['good', 'bad', 'blind']) turnout.rollouts.get(name)!.start()
    t.ok(
      await until(async () => {
        const r = await prom.query(`sum(turnout_requests_total{variant="canary"}) by (route)`)
        return Array.isArray(r.result) && r.result.length >= 2
      }, 20_000),
      'Prometheus scrapes the canaries of Turnout (50% each)',
    )
    const goodRollout = turnout.rollouts.get('good')!
    const badRollout = turnout.rollouts.get('bad')!
    const blind = turnout.rollouts.get('blind')!
    t.ok(await until(() => badRollout.phase === 'aborted', 20_000), 'the failing canary is aborted')
    t.ok(await until(() => goodRollout.phase === 'succeeded', 20_000), 'the healthy canary succeeds')
    const badCheck = badRollout.status().analysis[0]!
    t.equal(badCheck.check, 'prometheus')
    t.equal(badCheck.result, 'fail')
    t.ok(badCheck.value! > 0.2 && badCheck.value! < 0.8, `error ratio from Prometheus: ${badCheck.value}`)
    t.equal(badCheck.threshold, 0.01)
    const goodCheck = goodRollout.status().analysis[0]!
    t.same([goodCheck.result, goodCheck.value], ['pass', 0])
    t.same(
      [blind.phase, blind.status().weight],
      ['progressing', 50],
      'an unreachable Prometheus never advances',
    )
    t.same(
      blind.status().analysis.map((a) => [a.check, a.result, a.value]),
      [['prometheus', 'inconclusive', null]],
    )
    const metrics = await (await fetch(`${turnout.adminUrl}/metrics`)).text()
    t.match(metrics, /turnout_analysis_checks_total\{route="bad",check="prometheus",result="fail"\} 1/)
    t.match(
      metrics,
      /turnout_analysis_checks_total\{route="blind",check="prometheus",result="inconclusive"\} [1-9]/,
    )
    t.match(metrics, /turnout_rollout_phase\{route="good",phase="succeeded"\} 1/)
    t.match(metrics, /turnout_rollout_phase\{route="good",phase="progressing"\} 0/)
    t.match(metrics, /turnout_rollout_step\{route="good"\} 1/)
    t.match(metrics, /turnout_canary_weight\{route="bad"\} 0/)
    t.match(metrics, /turnout_canary_weight\{route="good"\} 100/)
  },
)
