// Keeping traffic flowing when endpoints fail, over real sockets: passive ejection of a dead endpoint
// (with and without retries), a blackholed endpoint with per-try timeouts, the retry budget under a
// 100%-failing variant, and the circuit breaker. Count-based: no timing assertions.
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { count, metric, sendMany } from './helpers/burst.js'
import { until } from './helpers/load.js'
import { memoryLogger, startProxy } from './helpers/turnout.js'
import { deadUrl, startUpstream } from './helpers/upstream.js'

async function routeView(adminUrl: string, name: string) {
  return (await (await fetch(`${adminUrl}/api/routes/${name}`)).json()) as {
    endpoints: { primary: Array<Record<string, unknown>>; canary: Array<Record<string, unknown>> | null }
  }
}

t.test('passive ejection: one of two primary endpoints refuses connections', async (t) => {
  const good = await startUpstream('good')
  t.teardown(good.close)
  const dead = await deadUrl()
  const turnout = await startProxy(t, { routes: [{ name: 'api', primary: { endpoints: [good.url, dead] } }] })
  const answers = await sendMany(turnout.url, 400, 20)
  const errors = count(answers, (a) => a.status !== 200)
  t.ok(errors >= 1, `the dead endpoint was tried (${errors} client errors)`)
  t.ok(errors <= 5, `at most consecutiveFailures (5) client errors in 400 requests, got ${errors}`)
  t.equal(
    count(answers, (a) => a.status !== 200 && a.status !== 502),
    0,
    'the errors are 502s',
  )
  const after = await sendMany(turnout.url, 200, 20)
  t.equal(
    count(after, (a) => a.status !== 200),
    0,
    'then none',
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejected', { endpoint: dead }), 1)
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejected', { endpoint: good.url }), 0)
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejections_total', { endpoint: dead }), 1)
  const view = await routeView(turnout.adminUrl, 'api')
  t.match(view.endpoints.primary, [
    { url: good.url, usable: true, ejectedUntil: null, ejections: 0, down: null, inFlight: 0 },
    { url: dead, usable: false, ejectedUntil: /^\d{4}-\d\d-\d\dT/, ejections: 1, down: null },
  ])
  t.equal(await metric(turnout.adminUrl, 'turnout_panic_total', { route: 'api' }), 0, 'never in panic')
})

t.test('passive ejection with retry on connect-failure: no client errors at all', async (t) => {
  const good = await startUpstream('good')
  t.teardown(good.close)
  const dead = await deadUrl()
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    {
      accessLog: { enabled: true, sample: 0 },
      routes: [
        {
          name: 'api',
          primary: { endpoints: [good.url, dead] },
          retry: { on: ['connect-failure'], backoff: '1ms' },
        },
      ],
    },
    { logger },
  )
  const answers = await sendMany(turnout.url, 400, 20)
  t.equal(
    count(answers, (a) => a.status !== 200),
    0,
    'zero client errors',
  )
  const retries = await metric(turnout.adminUrl, 'turnout_upstream_retries_total', {
    route: 'api',
    variant: 'primary',
    reason: 'connect-failure',
  })
  t.ok(retries !== null && retries >= 1, `retried on connect failures (${retries})`)
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejections_total', { endpoint: dead }), 1)
  const retried = lines.filter((l) => l.msg === 'request' && l.attempts !== undefined)
  t.ok(retried.length >= 1, 'retried requests are logged even with sample: 0')
  t.match(retried[0], { status: 200, attempts: 2, upstreams: [new URL(dead).host, new URL(good.url).host] })
})

/** Accepts connections and never answers. */
async function startBlackhole(t: Test): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('a blackholed endpoint: per-try timeouts, ejection, bounded client errors', async (t) => {
  const good = await startUpstream('good')
  t.teardown(good.close)
  const hole = await startBlackhole(t)
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'api',
        primary: { endpoints: [good.url, hole] },
        retry: { on: ['gateway-error'], perTryTimeout: '300ms', backoff: '1ms' },
      },
    ],
  })
  const answers = await sendMany(turnout.url, 200, 10)
  const errors = count(answers, (a) => a.status !== 200)
  t.ok(errors <= 5, `at most consecutiveFailures (5) client errors, got ${errors}`)
  t.equal(
    count(answers, (a) => a.status !== 200 && a.status !== 504),
    0,
    'any error is a 504',
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_endpoint_ejected', { endpoint: hole }), 1, 'ejected')
  const retries = await metric(turnout.adminUrl, 'turnout_upstream_retries_total', {
    reason: 'gateway-error',
  })
  t.ok(retries !== null && retries >= 1, `timed-out tries were retried (${retries})`)
  const after = await sendMany(turnout.url, 100, 10)
  t.equal(
    count(after, (a) => a.status !== 200),
    0,
    'then none',
  )
})

t.test('the retry budget holds under a 100%-failing variant', async (t) => {
  let maxRetrying = 0
  let group: { retriesInFlight: number } | undefined
  const failing = (name: string) =>
    startUpstream(name, (_req, res) => {
      maxRetrying = Math.max(maxRetrying, group?.retriesInFlight ?? 0)
      setTimeout(() => {
        res.writeHead(503, { 'content-type': 'text/plain' })
        res.end(`${name} is down`)
      }, 2)
    })
  const a = await failing('a')
  const b = await failing('b')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'api',
        primary: { endpoints: [a.url, b.url], outlierDetection: { enabled: false } },
        retry: { attempts: 5, on: ['gateway-error'], budget: '20%', backoff: '1ms' },
      },
    ],
  })
  group = turnout.holder.current.byName.get('api')!.primary.health
  const answers = await sendMany(turnout.url, 300, 30)
  t.equal(
    count(answers, (a) => a.status === 503 && /is down$/.test(a.body)),
    300,
    "the upstream's own 503s",
  )
  const retries = (await metric(turnout.adminUrl, 'turnout_upstream_retries_total', { route: 'api' })) ?? 0
  const exhausted =
    (await metric(turnout.adminUrl, 'turnout_retry_budget_exhausted_total', { route: 'api' })) ?? 0
  t.ok(exhausted > 0, `the budget turned retries down (${exhausted})`)
  t.ok(retries > 0, `some retries were made (${retries})`)
  t.ok(retries < 300 * 4, `no retry storm: ${retries} retries, not ${300 * 4}`)
  t.equal(a.seen.length + b.seen.length, 300 + retries, 'every retry is counted')
  t.ok(maxRetrying <= 6, `retries in flight stayed within 20% of 30 (6), max ${maxRetrying}`)
  t.equal(group.retriesInFlight, 0, 'the budget is all given back')
})

t.test('circuit breaker: past maxInFlight a 503 at once; other routes are still served', async (t) => {
  const held: Array<() => void> = []
  const slow = await startUpstream('slow', (_req, res) => {
    held.push(() => res.end('slow done'))
  })
  const fast = await startUpstream('fast')
  t.teardown(() => Promise.all([slow.close(), fast.close()]))
  const turnout = await startProxy(t, {
    routes: [
      { name: 'slow', match: { pathPrefix: '/slow' }, primary: { endpoints: [slow.url], maxInFlight: 5 } },
      { name: 'fast', primary: { endpoints: [fast.url] } },
    ],
  })
  const pending = Array.from({ length: 5 }, () => request(`${turnout.url}/slow`).then((r) => r.body.text()))
  t.ok(await until(() => slow.seen.length === 5), 'five requests held upstream')
  const over = await request(`${turnout.url}/slow`)
  t.equal(over.statusCode, 503)
  t.match(JSON.parse(await over.body.text()), { error: 'overloaded', route: 'slow', variant: 'primary' })
  t.equal(slow.seen.length, 5, 'the sixth never reached the upstream')
  const other = await sendMany(turnout.url, 50, 5, { path: '/other' })
  t.equal(
    count(other, (a) => a.status === 200),
    50,
    'the other route is served meanwhile',
  )
  t.equal(await metric(turnout.adminUrl, 'turnout_overload_rejections_total', { route: 'slow' }), 1)
  for (const release of held.splice(0)) release()
  t.same(await Promise.all(pending), Array(5).fill('slow done'))
  const again = request(`${turnout.url}/slow`)
  t.ok(await until(() => held.length === 1))
  held[0]!()
  const res = await again
  t.equal(res.statusCode, 200, 'in-flight slots are given back')
  await res.body.dump()
})

t.test(
  'a small request body is buffered so a retry can send it again; a chunked one is not retried',
  async (t) => {
    const refusing = await startUpstream('refusing', (_req, res) => {
      res.writeHead(503)
      res.end('busy')
    })
    const echo = await startUpstream('echo', (_req, res, body) => res.end(`echo:${body.toString()}`))
    t.teardown(() => Promise.all([refusing.close(), echo.close()]))
    const turnout = await startProxy(t, {
      routes: [
        {
          name: 'api',
          primary: { endpoints: [refusing.url, echo.url], outlierDetection: { enabled: false } },
          retry: { on: [503], backoff: '1ms', maxBodyBytes: '1KiB' },
        },
      ],
    })
    for (let i = 0; i < 4; i++) {
      const res = await request(turnout.url, { method: 'POST', body: `order-${i}` })
      t.equal(res.statusCode, 200, `POST ${i} answered`)
      t.equal(await res.body.text(), `echo:order-${i}`, 'the whole body reached the endpoint that answered')
    }
    t.equal(refusing.seen.length, 2, 'half of them were tried on the refusing endpoint first')
    t.same(
      refusing.seen.map((s) => s.body.toString()),
      ['order-0', 'order-2'],
      'with the same body the retry sent',
    )
    t.equal(await metric(turnout.adminUrl, 'turnout_upstream_retries_total', { reason: '503' }), 2)
    const statuses: number[] = []
    for (let i = 0; i < 2; i++) {
      const res = await request(turnout.url, {
        method: 'POST',
        body: Readable.from([Buffer.from('chunked')]),
      })
      statuses.push(res.statusCode)
      await res.body.dump()
    }
    t.same(statuses.sort(), [200, 503], 'a streamed (chunked) body is never retried')
  },
)
