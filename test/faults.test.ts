import { once } from 'node:events'
import { connect } from 'node:net'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { Pool, request } from 'undici'
import { startTurnout, type Turnout } from '../src/app.js'
import { parseConfig } from '../src/config/load.js'
import type { RouteConfig } from '../src/config/schema.js'
import type { SampleUpstream } from '../src/demo/upstreams.js'
import { compileFaults, Faults, headerFault, parseAbortStatus } from '../src/faults/phase.js'
import type { RequestView } from '../src/routing/request-view.js'
import { mulberry32 } from './helpers/random.js'
import { until } from './helpers/until.js'
import { startSampleUpstreams } from './helpers/upstream.js'

// ---------- helpers ----------

/** Returns the given values in turn (then repeats the last). */
function sequence(...values: number[]): () => number {
  let i = 0
  return () => values[Math.min(i++, values.length - 1)]!
}

function view(headers: Record<string, string> = {}): RequestView {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return {
    host: 'example.test',
    path: '/',
    method: 'GET',
    header: (name) => lower[name],
    cookie: () => undefined,
  }
}

/** A validated route config with the given `faults:` value. */
function routeWith(faults: unknown): RouteConfig {
  const config = parseConfig(
    JSON.stringify({
      routes: [
        {
          name: 'r',
          primary: { endpoints: ['http://127.0.0.1:1'] },
          canary: { endpoints: ['http://127.0.0.1:2'] },
          faults,
        },
      ],
    }),
    'test',
  )
  return config.routes[0]!
}

function faultsOf(faults: unknown, random: () => number = Math.random): Faults {
  const phase = compileFaults(routeWith(faults), { random })
  if (!(phase instanceof Faults)) throw new Error('expected a fault phase')
  return phase
}

/** Binomial bounds at ±5 sigma: never flakes, still catches a wrong rate. */
function binomialBounds(n: number, p: number): [number, number] {
  const sigma = Math.sqrt(n * p * (1 - p))
  return [n * p - 5 * sigma, n * p + 5 * sigma]
}

// ---------- pure decisions ----------

t.test('no rules and no headers compile to no phase', async (t) => {
  const bare = parseConfig(
    JSON.stringify({ routes: [{ name: 'r', primary: { endpoints: ['http://127.0.0.1:1'] } }] }),
    'test',
  ).routes[0]!
  t.equal(compileFaults(bare), null)
  t.equal(compileFaults(routeWith([])), null)
  t.equal(compileFaults(routeWith({ allowHeaders: false, rules: [] })), null)
  t.type(compileFaults(routeWith({ allowHeaders: true })), Faults, 'headers alone need a phase')
  t.type(compileFaults(routeWith([{ variant: 'canary', abort: { status: 503 } }])), Faults)
})

t.test('a rule applies to its variant only; both means both', async (t) => {
  const canaryOnly = faultsOf([{ variant: 'canary', abort: { status: 503 } }])
  t.same(canaryOnly.decideFor('canary', view()), { kind: 'abort', status: 503 })
  t.equal(canaryOnly.decideFor('primary', view()), null)

  const primaryOnly = faultsOf([{ variant: 'primary', delay: { fixed: '250ms' } }])
  t.same(primaryOnly.decideFor('primary', view()), { kind: 'delay', ms: 250 })
  t.equal(primaryOnly.decideFor('canary', view()), null)

  const both = faultsOf([{ variant: 'both', abort: { status: 500 } }])
  t.same(both.decideFor('primary', view()), { kind: 'abort', status: 500 })
  t.same(both.decideFor('canary', view()), { kind: 'abort', status: 500 })
})

t.test('when: the rule fires only for matching requests (header and cookie matchers)', async (t) => {
  const f = faultsOf([
    { variant: 'canary', when: { header: 'X-Fault', equals: 'slow' }, delay: { fixed: '300ms' } },
    { variant: 'canary', when: { header: 'x-fault', matches: '^boom' }, abort: { status: 502 } },
  ])
  t.equal(f.decideFor('canary', view()), null)
  t.equal(f.decideFor('canary', view({ 'x-fault': 'fast' })), null)
  t.same(f.decideFor('canary', view({ 'x-fault': 'slow' })), { kind: 'delay', ms: 300 })
  t.same(f.decideFor('canary', view({ 'x-fault': 'boom!' })), { kind: 'abort', status: 502 })
  t.equal(f.decideFor('primary', view({ 'x-fault': 'slow' })), null)
})

t.test('percent rolls the injected dice: fires below the share, not at or above it', async (t) => {
  const rule = [{ variant: 'canary', abort: { status: 503, percent: 5 } }]
  t.same(faultsOf(rule, sequence(0.0499)).decideFor('canary', view()), { kind: 'abort', status: 503 })
  t.equal(faultsOf(rule, sequence(0.05)).decideFor('canary', view()), null)
  t.equal(faultsOf(rule, sequence(0.9)).decideFor('canary', view()), null)
  // 0% never fires and 100% always fires, whatever the dice say
  const never = faultsOf([{ variant: 'canary', abort: { status: 503, percent: 0 } }], sequence(0))
  t.equal(never.decideFor('canary', view()), null)
  const always = faultsOf([{ variant: 'canary', abort: { status: 503, percent: '100%' } }], sequence(0.99999))
  t.same(always.decideFor('canary', view()), { kind: 'abort', status: 503 })
})

t.test('an abort that fires wins over a delay, whatever the rule order', async (t) => {
  const rules = [
    { variant: 'canary', delay: { fixed: '300ms', percent: 50 } },
    { variant: 'canary', abort: { status: 503, percent: 5 } },
  ]
  // dice: abort roll 0.01 (fires) → abort, delay never rolled
  t.same(faultsOf(rules, sequence(0.01)).decideFor('canary', view()), { kind: 'abort', status: 503 })
  // abort roll 0.5 (no), delay roll 0.1 (fires)
  t.same(faultsOf(rules, sequence(0.5, 0.1)).decideFor('canary', view()), { kind: 'delay', ms: 300 })
  // neither
  t.equal(faultsOf(rules, sequence(0.5, 0.7)).decideFor('canary', view()), null)
  // one rule with both: the same precedence
  const oneRule = [{ variant: 'canary', delay: { fixed: '1s' }, abort: { status: 504, percent: 10 } }]
  t.same(faultsOf(oneRule, sequence(0.05)).decideFor('canary', view()), { kind: 'abort', status: 504 })
  t.same(faultsOf(oneRule, sequence(0.5)).decideFor('canary', view()), { kind: 'delay', ms: 1000 })
})

t.test('a min/max delay is drawn uniformly from the range', async (t) => {
  const rule = [{ variant: 'primary', delay: { min: '100ms', max: '900ms' } }]
  t.same(faultsOf(rule, sequence(0)).decideFor('primary', view()), { kind: 'delay', ms: 100 })
  t.same(faultsOf(rule, sequence(0.5)).decideFor('primary', view()), { kind: 'delay', ms: 500 })
  t.same(faultsOf(rule, sequence(0.99999)).decideFor('primary', view()), { kind: 'delay', ms: 900 })
  const f = faultsOf(rule, mulberry32(7))
  for (let i = 0; i < 1000; i++) {
    const d = f.decideFor('primary', view())
    if (d?.kind !== 'delay' || d.ms < 100 || d.ms > 900) {
      t.fail(`delay out of range: ${JSON.stringify(d)}`)
      break
    }
  }
})

t.test('5% aborts over 10,000 decisions land within the binomial bounds', async (t) => {
  for (const seed of [1, 2, 3]) {
    const f = faultsOf([{ variant: 'canary', abort: { status: 503, percent: '5%' } }], mulberry32(seed))
    let aborts = 0
    for (let i = 0; i < 10_000; i++) if (f.decideFor('canary', view())?.kind === 'abort') aborts++
    const [lo, hi] = binomialBounds(10_000, 0.05)
    t.ok(
      aborts >= lo && aborts <= hi,
      `seed ${seed}: ${aborts} aborts in [${lo.toFixed(0)}, ${hi.toFixed(0)}]`,
    )
  }
  // the same on real Math.random (±5 sigma: a false alarm about once in 3.5 million runs)
  const f = faultsOf([{ variant: 'canary', abort: { status: 503, percent: 5 } }])
  let aborts = 0
  for (let i = 0; i < 10_000; i++) if (f.decideFor('canary', view()) !== null) aborts++
  const [lo, hi] = binomialBounds(10_000, 0.05)
  t.ok(aborts >= lo && aborts <= hi, `Math.random: ${aborts} aborts`)
})

t.test('fault headers: validated, abort wins, ignored unless allowHeaders', async (t) => {
  t.equal(parseAbortStatus('503'), 503)
  t.equal(parseAbortStatus(' 200 '), 200)
  t.equal(parseAbortStatus('99'), null)
  t.equal(parseAbortStatus('600'), null)
  t.equal(parseAbortStatus('5O3'), null)
  t.equal(parseAbortStatus('503.0'), null)

  t.same(headerFault(view({ 'x-turnout-fault-abort': '503' })), { kind: 'abort', status: 503 })
  t.same(headerFault(view({ 'x-turnout-fault-delay': '200ms' })), { kind: 'delay', ms: 200 })
  t.same(headerFault(view({ 'x-turnout-fault-delay': '1.5s' })), { kind: 'delay', ms: 1500 })
  t.equal(headerFault(view({ 'x-turnout-fault-delay': 'abc' })), null)
  t.equal(headerFault(view({ 'x-turnout-fault-delay': '200' })), null, 'a unit is required')
  t.equal(headerFault(view({ 'x-turnout-fault-delay': '0ms' })), null)
  t.equal(headerFault(view({ 'x-turnout-fault-delay': '2h' })), null, 'over the 60 s cap')
  t.same(
    headerFault(view({ 'x-turnout-fault-delay': '200ms', 'x-turnout-fault-abort': '502' })),
    { kind: 'abort', status: 502 },
    'abort wins',
  )
  t.same(
    headerFault(view({ 'x-turnout-fault-delay': '200ms', 'x-turnout-fault-abort': 'nope' })),
    { kind: 'delay', ms: 200 },
    'an invalid abort leaves a valid delay',
  )

  const headers = { 'x-turnout-fault-abort': '503' }
  const rules = [{ variant: 'canary', delay: { fixed: '10ms' } }]
  t.equal(faultsOf(rules).decideFor('primary', view(headers)), null, 'list form never reads headers')
  t.equal(
    faultsOf({ allowHeaders: false, rules }).decideFor('primary', view(headers)),
    null,
    'allowHeaders: false ignores them',
  )
  const open = faultsOf({ allowHeaders: true, rules })
  t.same(open.decideFor('primary', view(headers)), { kind: 'abort', status: 503 }, 'any variant')
  t.same(open.decideFor('canary', view(headers)), { kind: 'abort', status: 503 }, 'header before rules')
  t.same(open.decideFor('canary', view({ 'x-turnout-fault-abort': '99' })), { kind: 'delay', ms: 10 })
  t.equal(open.decideFor('primary', view({ 'x-turnout-fault-abort': '99' })), null)
})

// ---------- through Turnout, on real sockets ----------

interface Harness {
  turnout: Turnout
  primary: SampleUpstream
  canary: SampleUpstream
  hits: { primary: number; canary: number }
  logs: Array<Record<string, unknown>>
}

async function harness(t: Test, route: Record<string, unknown>, accessLog = false): Promise<Harness> {
  const { primary, canary } = await startSampleUpstreams(t)
  const hits = { primary: 0, canary: 0 }
  primary.server.on('request', () => hits.primary++)
  canary.server.on('request', () => hits.canary++)
  const logs: Array<Record<string, unknown>> = []
  const logger = pino(
    { level: accessLog ? 'info' : 'silent' },
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  )
  const config = parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      accessLog: { enabled: accessLog },
      routes: [
        {
          name: 'default',
          primary: { endpoints: [primary.url] },
          canary: { endpoints: [canary.url] },
          overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
          ...route,
        },
      ],
    }),
    'test',
  )
  const turnout = await startTurnout({ config, logger })
  t.teardown(() => turnout.close())
  return { turnout, primary, canary, hits, logs }
}

const toCanary = { 'x-canary': 'always' }

/** Metric samples `name{labels} value` from a Prometheus text scrape, or null when /metrics is absent. */
async function scrape(h: Harness): Promise<Map<string, number> | null> {
  const res = await request(`${h.turnout.adminUrl}/metrics`)
  const text = await res.body.text()
  if (res.statusCode !== 200) return null
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sp = line.lastIndexOf(' ')
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)))
  }
  return out
}

function sample(m: Map<string, number>, name: string, labels: Record<string, string>): number {
  for (const [key, value] of m) {
    if (!key.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) return value
  }
  return 0
}

t.test('abort: status, JSON body and x-turnout-fault: abort; the upstream is not called', async (t) => {
  const h = await harness(t, { faults: [{ variant: 'canary', abort: { status: 503 } }] }, true)

  const aborted = await request(`${h.turnout.url}/checkout`, { headers: toCanary })
  t.equal(aborted.statusCode, 503)
  t.equal(aborted.headers['x-turnout-fault'], 'abort')
  t.match(aborted.headers['content-type'], /application\/json/)
  t.same(await aborted.body.json(), { error: 'fault_injected', route: 'default', variant: 'canary' })
  t.equal(h.hits.canary, 0, 'the canary upstream was not called')

  const served = await request(`${h.turnout.url}/checkout`)
  t.equal(served.statusCode, 200)
  t.equal(served.headers['x-turnout-fault'], undefined)
  t.equal(((await served.body.json()) as { service: string }).service, 'primary')
  t.equal(h.hits.primary, 1)

  await until('two access-log lines', () => h.logs.filter((l) => l.msg === 'request').length >= 2)
  const abortLine = h.logs.find((l) => l.msg === 'request' && l.status === 503)
  t.equal(abortLine?.fault, 'abort', 'the access log marks the fault')
  t.equal(abortLine?.variant, 'canary')

  const m = await scrape(h)
  if (m === null) t.pass('turnout_faults_injected_total', { skip: 'no GET /metrics yet' })
  else {
    t.equal(
      sample(m, 'turnout_faults_injected_total', { route: 'default', variant: 'canary', kind: 'abort' }),
      1,
    )
  }
})

t.test('a 50% 300 ms canary delay: delayed answers say so, only the canary is slowed', async (t) => {
  const h = await harness(t, { faults: [{ variant: 'canary', delay: { fixed: '300ms', percent: 50 } }] })
  const n = 40
  const send = async (headers: Record<string, string>) => {
    const res = await request(`${h.turnout.url}/api/time`, { headers })
    const body = (await res.body.json()) as { service: string }
    return { status: res.statusCode, fault: res.headers['x-turnout-fault'], service: body.service }
  }
  const canary = await Promise.all(Array.from({ length: n }, () => send(toCanary)))
  const primary = await Promise.all(Array.from({ length: n }, () => send({})))

  t.ok(
    canary.every((r) => r.status === 200 && r.service === 'canary'),
    'delayed requests are still served',
  )
  const delayed = canary.filter((r) => r.fault === 'delay').length
  t.ok(
    canary.every((r) => r.fault === undefined || r.fault === 'delay'),
    'no other fault header',
  )
  const [lo, hi] = binomialBounds(n, 0.5)
  t.ok(delayed >= lo && delayed <= hi, `${delayed} of ${n} canary answers delayed`)
  t.equal(primary.filter((r) => r.fault !== undefined).length, 0, 'the primary is never delayed')
  t.equal(h.hits.canary, n)
  t.equal(h.hits.primary, n)

  const m = await scrape(h)
  if (m === null) {
    t.pass('latency histogram and fault counter', { skip: 'no GET /metrics yet' })
    return
  }
  t.equal(
    sample(m, 'turnout_faults_injected_total', { route: 'default', variant: 'canary', kind: 'delay' }),
    delayed,
  )
  t.equal(sample(m, 'turnout_faults_injected_total', { variant: 'primary', kind: 'delay' }), 0)
  // observations above the largest bucket bound under 300 ms: every delayed canary request, and no primary one
  const slow = (variant: string) => {
    let bound = -1
    for (const key of m.keys()) {
      const le = /^turnout_request_duration_seconds_bucket\{.*le="([0-9.e+-]+)"/.exec(key)
      if (le && Number(le[1]) < 0.3 && Number(le[1]) > bound) bound = Number(le[1])
    }
    const total = sample(m, 'turnout_request_duration_seconds_count', { route: 'default', variant })
    const fast = sample(m, 'turnout_request_duration_seconds_bucket', {
      route: 'default',
      variant,
      le: String(bound),
    })
    return { total, slow: total - fast, bound }
  }
  const c = slow('canary')
  const p = slow('primary')
  t.ok(c.bound > 0, `a histogram bucket below 300 ms exists (${c.bound}s)`)
  t.equal(c.total, n)
  t.equal(p.total, n)
  t.ok(c.slow >= delayed, `canary: ${c.slow} observations above ${c.bound}s, ${delayed} delayed`)
  t.ok(p.slow <= 2, `primary: ${p.slow} observations above ${p.bound}s`)
})

t.test('a client that goes away during a delay never reaches the upstream', async (t) => {
  const h = await harness(t, { faults: [{ variant: 'canary', delay: { fixed: '300ms' } }] }, true)
  const route = h.turnout.holder.current.routes[0]!
  const phase = route.faults!
  const decide = phase.decide.bind(phase)
  let decided = () => {}
  const seen = new Promise<void>((resolve) => {
    decided = resolve
  })
  phase.decide = (ctx, req) => {
    const d = decide(ctx, req)
    decided()
    return d
  }

  const socket = connect(h.turnout.proxyAddress.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /slow HTTP/1.1\r\nhost: localhost\r\nx-canary: always\r\n\r\n')
  await seen
  socket.destroy()

  await until('an access-log line', () => h.logs.some((l) => l.msg === 'request'))
  const line = h.logs.find((l) => l.msg === 'request')
  t.equal(line?.aborted, true, 'logged as aborted by the client')
  t.equal(line?.fault, 'delay')
  await new Promise((r) => setTimeout(r, 700)) // well past the 300 ms delay
  t.equal(h.hits.canary, 0, 'the upstream was never called')

  // control: the same request, waited for, does reach the upstream after its delay
  const res = await request(`${h.turnout.url}/slow`, { headers: toCanary })
  await res.body.dump()
  t.equal(res.headers['x-turnout-fault'], 'delay')
  t.equal(h.hits.canary, 1)
})

t.test(
  '5% canary aborts over 2,000 keep-alive requests: binomial bounds, upstream sees the rest',
  async (t) => {
    const h = await harness(t, {
      split: { canary: 100 },
      faults: [{ variant: 'canary', abort: { status: 503, percent: 5 } }],
    })
    const pool = new Pool(h.turnout.url, { connections: 8 })
    t.teardown(() => pool.close())
    const n = 2000
    let aborts = 0
    let others = 0
    let next = 0
    const worker = async () => {
      while (next < n) {
        next++
        const res = await pool.request({ path: '/api/items', method: 'GET' })
        await res.body.dump()
        if (res.statusCode === 503 && res.headers['x-turnout-fault'] === 'abort') aborts++
        else if (res.statusCode === 200 && res.headers['x-turnout-fault'] === undefined) others++
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    const [lo, hi] = binomialBounds(n, 0.05)
    t.equal(aborts + others, n, 'every answer is either an injected abort or a served 200')
    t.ok(
      aborts >= lo && aborts <= hi,
      `${aborts} aborts of ${n}, bounds [${lo.toFixed(0)}, ${hi.toFixed(0)}]`,
    )
    t.equal(h.hits.canary, n - aborts, 'aborted requests never reached the canary')
    t.equal(h.hits.primary, 0)
  },
)

t.test('fault headers: ignored without allowHeaders, honoured (and validated) with it', async (t) => {
  const closed = await harness(t, { faults: { allowHeaders: false, rules: [] } })
  const r1 = await request(`${closed.turnout.url}/`, { headers: { 'x-turnout-fault-abort': '503' } })
  await r1.body.dump()
  t.equal(r1.statusCode, 200)
  t.equal(r1.headers['x-turnout-fault'], undefined)
  const r2 = await request(`${closed.turnout.url}/`, { headers: { 'x-turnout-fault-delay': '200ms' } })
  await r2.body.dump()
  t.equal(r2.headers['x-turnout-fault'], undefined)
  t.equal(closed.hits.primary, 2)

  const listForm = await harness(t, { faults: [{ variant: 'canary', delay: { fixed: '1ms' } }] })
  const r3 = await request(`${listForm.turnout.url}/`, { headers: { 'x-turnout-fault-abort': '503' } })
  await r3.body.dump()
  t.equal(r3.statusCode, 200, 'the list form never honours fault headers')

  const open = await harness(t, { faults: { allowHeaders: true } })
  const a = await request(`${open.turnout.url}/`, { headers: { 'x-turnout-fault-abort': '503' } })
  t.equal(a.statusCode, 503)
  t.equal(a.headers['x-turnout-fault'], 'abort')
  await a.body.dump()
  t.equal(open.hits.primary, 0, 'the abort header answers locally')
  const d = await request(`${open.turnout.url}/`, { headers: { 'x-turnout-fault-delay': '200ms' } })
  await d.body.dump()
  t.equal(d.statusCode, 200)
  t.equal(d.headers['x-turnout-fault'], 'delay')
  const bad = await request(`${open.turnout.url}/`, {
    headers: { 'x-turnout-fault-abort': '99', 'x-turnout-fault-delay': 'soon' },
  })
  await bad.body.dump()
  t.equal(bad.statusCode, 200, 'invalid values are ignored')
  t.equal(bad.headers['x-turnout-fault'], undefined)
  t.equal(open.hits.primary, 2)
})
