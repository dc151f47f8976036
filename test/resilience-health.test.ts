// Active health checks take a failing endpoint out and bring it back; a canary that crashes during
// a rollout costs its weighted and sticky users at most consecutiveFailures errors per endpoint,
// fails over to the primary and aborts the rollout (check "health"), while explicit overrides still
// reach the dead canary. Real sockets, count-based, generous deadlines.
import t from 'tap'
import { request } from 'undici'
import { count, metric, sendMany } from './helpers/burst.js'
import { until } from './helpers/load.js'
import { startProxy } from './helpers/turnout.js'
import { deadUrl, startUpstream } from './helpers/upstream.js'

interface View {
  endpoints: { primary: Array<{ url: string; down: boolean | null; usable: boolean }> }
  rollout: { phase: string; reason: string; analysis: Array<{ check: string; result: string }> }
}

async function view(adminUrl: string, name: string): Promise<View> {
  return (await (await fetch(`${adminUrl}/api/routes/${name}`)).json()) as View
}

t.test('active health checks take a failing endpoint out and bring it back', async (t) => {
  let healthy = true
  const a = await startUpstream('a', (req, res) => {
    if (req.url === '/base/healthz') {
      res.writeHead(healthy ? 204 : 503)
      res.end()
      return
    }
    res.end('a')
  })
  const b = await startUpstream('b')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'api',
        primary: {
          endpoints: [`${a.url}/base`, b.url],
          healthCheck: {
            path: '/healthz',
            interval: '50ms',
            timeout: '2s',
            unhealthyThreshold: 2,
            healthyThreshold: 2,
          },
          outlierDetection: { enabled: false },
        },
      },
    ],
  })
  const aUrl = `${a.url}/base`
  const live = (s: { url: string }) => !s.url.endsWith('/healthz')
  t.ok(await until(() => a.seen.some((s) => s.url === '/base/healthz')), 'checks run from the start')
  t.match(a.seen.find((s) => s.url === '/base/healthz')!.headers, { 'user-agent': 'turnout-health' })
  t.ok(
    b.seen.some((s) => s.url === '/healthz'),
    'on every endpoint of the variant',
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_up', { endpoint: aUrl }), 1)

  healthy = false
  t.ok(
    await until(
      async () => (await view(turnout.adminUrl, 'api')).endpoints.primary[0]!.down === true,
      20_000,
    ),
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_up', { endpoint: aUrl }), 0)
  const before = a.seen.filter(live).length
  const out = await sendMany(turnout.url, 60, 6)
  t.equal(
    count(out, (x) => x.status === 200),
    60,
    'every request served',
  )
  t.equal(a.seen.filter(live).length, before, 'none reached the endpoint marked down')

  healthy = true
  t.ok(
    await until(
      async () => (await view(turnout.adminUrl, 'api')).endpoints.primary[0]!.down === false,
      20_000,
    ),
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_up', { endpoint: aUrl }), 1)
  const back = await sendMany(turnout.url, 60, 6)
  t.equal(
    count(back, (x) => x.status === 200),
    60,
  )
  t.ok(a.seen.filter(live).length > before, 'it gets traffic again')
  const fails = await metric(turnout.adminUrl, 'turnout_health_checks_total', {
    endpoint: aUrl,
    result: 'fail',
  })
  t.ok(fails !== null && fails >= 2, `failed checks counted in their own metric (${fails})`)
  t.equal(
    await metric(turnout.adminUrl, 'turnout_requests_total', { route: 'api' }),
    120,
    'health checks are not live requests',
  )

  // A reload that drops healthCheck stops the probes and their verdict.
  healthy = false
  t.ok(
    await until(
      async () => (await view(turnout.adminUrl, 'api')).endpoints.primary[0]!.down === true,
      20_000,
    ),
  )
  const r = turnout.config.routes[0]!
  turnout.apply({ ...turnout.config, routes: [{ ...r, primary: { ...r.primary, healthCheck: undefined } }] })
  t.equal((await view(turnout.adminUrl, 'api')).endpoints.primary[0]!.down, null, 'no longer checked')
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_up', { endpoint: aUrl }), null)
  const checks = a.seen.filter((s) => !live(s)).length
  const served = await sendMany(turnout.url, 20, 2)
  t.equal(
    count(served, (x) => x.status === 200),
    20,
  )
  t.ok(
    a.seen.filter(live).length > 0 && a.seen.filter((s) => !live(s)).length <= checks + 1,
    'probes stopped',
  )
})

t.test('canary crash mid-rollout: failover, at most consecutiveFailures per endpoint, abort', async (t) => {
  const primary = await startUpstream('primary')
  const c1 = await startUpstream('c1')
  const c2 = await startUpstream('c2')
  t.teardown(() => Promise.all([primary.close(), c1.close(), c2.close()]))
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'shop',
        primary: { endpoints: [primary.url] },
        canary: { endpoints: [c1.url, c2.url], outlierDetection: { maxEjectionPercent: 100 } },
        split: { canary: 0, sticky: { header: 'x-user' } },
        overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
        // minRequests out of reach: the step holds until the health check fails it.
        rollout: { steps: [20, 50], interval: '300ms', minRequests: 1_000_000, failureLimit: 2 },
      },
    ],
  })
  const start = await fetch(`${turnout.adminUrl}/api/routes/shop/rollout/start`, { method: 'POST' })
  t.equal(start.status, 200)
  const mixed = (i: number): Record<string, string> => (i % 2 === 0 ? {} : { 'x-user': `user-${i}` })
  const warm = await sendMany(turnout.url, 200, 10, { headers: mixed })
  t.equal(
    count(warm, (x) => x.status === 200),
    200,
  )
  t.ok(count(warm, (x) => x.variant === 'canary') > 0, 'the canary served some of it')

  await Promise.all([c1.close(), c2.close()])
  const crash = await sendMany(turnout.url, 400, 10, { headers: mixed })
  const failed = count(crash, (x) => x.status !== 200)
  t.ok(failed <= 10, `at most consecutiveFailures (5) per canary endpoint: ${failed} failed of 400`)
  const after = await sendMany(turnout.url, 200, 10, { headers: mixed })
  t.equal(
    count(after, (x) => x.status !== 200),
    0,
    'then none',
  )
  const failovers = await metric(turnout.adminUrl, 'turnout_failover_total', { route: 'shop' })
  t.ok(failovers !== null && failovers > 0, `canary-bound requests went to the primary (${failovers})`)

  const tester = await request(turnout.url, { headers: { 'x-canary': 'always' } })
  t.equal(tester.statusCode, 502, "x-canary: always still gets the canary's 502")
  t.match(JSON.parse(await tester.body.text()), { error: 'upstream_unavailable', variant: 'canary' })

  t.ok(await until(async () => (await view(turnout.adminUrl, 'shop')).rollout.phase === 'aborted', 20_000))
  const rollout = (await view(turnout.adminUrl, 'shop')).rollout
  t.match(rollout.reason, /health: the canary had no usable endpoint/)
  t.match(
    rollout.analysis.find((o) => o.check === 'health'),
    { check: 'health', result: 'fail' },
  )
  t.ok(
    ((await metric(turnout.adminUrl, 'turnout_analysis_checks_total', { check: 'health', result: 'fail' })) ??
      0) >= 2,
    'the health check failed failureLimit times',
  )
})

t.test('ejections survive table swaps; mirrors never count toward outlier state', async (t) => {
  const good = await startUpstream('good')
  t.teardown(good.close)
  const dead = await deadUrl()
  const deadCanary = await deadUrl()
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'api',
        primary: { endpoints: [good.url, dead] },
        canary: { endpoints: [deadCanary] },
        mirror: {},
      },
    ],
  })
  const first = await sendMany(turnout.url, 100, 5)
  t.ok(count(first, (x) => x.status !== 200) <= 5)
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejected', { endpoint: dead }), 1)
  t.equal(
    await metric(turnout.adminUrl, 'turnout_endpoint_ejections_total', { endpoint: deadCanary }),
    0,
    'a hundred mirrors to a dead canary ejected nothing',
  )
  t.ok(
    await until(
      async () => ((await metric(turnout.adminUrl, 'turnout_mirror_dropped_total', {})) ?? 0) >= 50,
    ),
  )

  const before = turnout.holder.current
  turnout.apply({ ...turnout.config, routes: [{ ...turnout.config.routes[0]!, exposeVariant: false }] })
  t.not(turnout.holder.current, before, 'a new table')
  const v = (await (await fetch(`${turnout.adminUrl}/api/routes/api`)).json()) as {
    endpoints: { primary: Array<{ usable: boolean; ejections: number }>; canary: Array<{ usable: boolean }> }
  }
  t.match(
    v.endpoints.primary,
    [{ usable: true }, { usable: false, ejections: 1 }],
    'still ejected after the swap',
  )
  t.match(v.endpoints.canary, [{ usable: true }])
  const after = await sendMany(turnout.url, 100, 5)
  t.equal(
    count(after, (x) => x.status !== 200),
    0,
    'nothing to learn again',
  )
})
