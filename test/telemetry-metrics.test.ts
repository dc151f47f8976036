// Prometheus metrics: real requests through Turnout (real upstreams, real sockets), then a real scrape
// of GET /metrics on the admin listener; promtool and a real Prometheus server where installed.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import type { Turnout } from '../src/app.js'
import { DURATION_BUCKETS, TurnoutMetrics } from '../src/telemetry/metrics.js'
import { PROMETHEUS_BIN as PROMETHEUS, startPrometheus } from './helpers/prometheus.js'
import { startProxy } from './helpers/turnout.js'
import { freePort, startUpstream } from './helpers/upstream.js'

// ---------- helpers ----------

type Sample = { name: string; labels: Record<string, string>; value: number }

/** Parses the Prometheus text format (the subset prom-client writes). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`unparsable line: ${line}`)
    const labels: Record<string, string> = {}
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** The value of the one sample with that name and (at least) those labels; undefined when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
  return found[0]?.value
}

async function scrapeOnce(
  turnout: Turnout,
): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await request(`${turnout.adminUrl}/metrics`)
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode} ${text}`)
  return { text, samples: parseExposition(text), contentType: String(res.headers['content-type']) }
}

/** A scrape taken once every finished request has been accounted for (no request in flight). */
async function scrape(turnout: Turnout): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  let s = await scrapeOnce(turnout)
  for (let i = 0; i < 200; i++) {
    if (s.samples.every((x) => x.name !== 'turnout_requests_in_flight' || x.value === 0)) break
    await new Promise((r) => setTimeout(r, 10))
    s = await scrapeOnce(turnout)
  }
  return s
}

async function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { headers })
  await res.body.dump()
  return res.statusCode
}

const CANARY = { 'x-canary': '1' }

async function twoVariants(
  t: Test,
  extra: Record<string, unknown> = {},
  config: Record<string, unknown> = {},
) {
  const held: ServerResponse[] = []
  const primary = await startUpstream('primary')
  const canary = await startUpstream('canary', (req, res) => {
    if (req.url === '/fail') {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end('boom')
    } else if (req.url === '/hold') {
      held.push(res)
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('ok')
    }
  })
  t.teardown(async () => {
    for (const r of held) r.end()
    await primary.close()
    await canary.close()
  })
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'shop',
        primary: { endpoints: [primary.url] },
        canary: { endpoints: [canary.url] },
        split: { canary: 10 },
        overrides: [{ when: { header: 'x-canary', equals: '1' }, to: 'canary' }],
        ...extra,
      },
    ],
    ...config,
  })
  return { turnout, held, primary, canary }
}

// ---------- live traffic ----------

t.test('counts per variant and status, durations, decisions; in-flight returns to 0', async (t) => {
  const { turnout } = await twoVariants(t)
  // weight 10 decides the unmarked requests: count what Turnout actually chose
  const unmarked = { primary: 0, canary: 0 }
  for (let i = 0; i < 20; i++) {
    const res = await request(`${turnout.url}/item`)
    await res.body.dump()
    unmarked[res.headers['x-turnout-variant'] as 'primary' | 'canary']++
  }
  for (let i = 0; i < 3; i++) t.equal(await get(`${turnout.url}/item`, CANARY), 200)
  t.equal(await get(`${turnout.url}/fail`, CANARY), 500)

  const { samples, contentType } = await scrape(turnout)
  t.match(contentType, /^text\/plain; version=0\.0\.4/)
  const req = (variant: string, code: string) =>
    value(samples, 'turnout_requests_total', { route: 'shop', variant, code }) ?? 0
  t.equal(req('primary', '200'), unmarked.primary)
  t.equal(req('canary', '200'), unmarked.canary + 3)
  t.equal(req('canary', '500'), 1)
  t.equal(req('primary', '500'), 0)
  t.equal(
    value(samples, 'turnout_request_duration_seconds_count', { route: 'shop', variant: 'canary' }),
    unmarked.canary + 4,
  )
  t.equal(
    value(samples, 'turnout_request_duration_seconds_bucket', {
      route: 'shop',
      variant: 'primary',
      le: '+Inf',
    }),
    unmarked.primary,
  )
  t.ok(
    (value(samples, 'turnout_request_duration_seconds_sum', { route: 'shop', variant: 'primary' }) ?? 0) > 0,
  )
  t.equal(
    value(samples, 'turnout_split_decisions_total', { route: 'shop', variant: 'canary', reason: 'override' }),
    4,
  )
  t.equal(
    value(samples, 'turnout_split_decisions_total', { route: 'shop', variant: 'primary', reason: 'weight' }),
    unmarked.primary,
  )
  t.equal(
    value(samples, 'turnout_split_decisions_total', { route: 'shop', variant: 'canary', reason: 'weight' }),
    unmarked.canary,
  )
  t.equal(value(samples, 'turnout_requests_in_flight', { route: 'shop', variant: 'primary' }), 0)
  t.equal(value(samples, 'turnout_requests_in_flight', { route: 'shop', variant: 'canary' }), 0)
  t.equal(
    value(samples, 'turnout_upstream_errors_total', { route: 'shop', variant: 'canary', kind: 'connect' }),
    0,
  )
  // default process metrics under the turnout_ prefix
  t.ok(samples.some((s) => s.name === 'turnout_process_cpu_user_seconds_total'))
  t.ok(samples.some((s) => s.name === 'turnout_nodejs_eventloop_lag_seconds'))
  t.ok(samples.some((s) => s.name.startsWith('turnout_nodejs_heap_size_')))
})

t.test('histogram buckets are cumulative and end at +Inf = count', async (t) => {
  const { turnout } = await twoVariants(t)
  for (let i = 0; i < 5; i++) await get(`${turnout.url}/x`, CANARY)
  const { samples } = await scrape(turnout)
  const buckets = samples.filter(
    (s) => s.name === 'turnout_request_duration_seconds_bucket' && s.labels.variant === 'canary',
  )
  t.same(
    buckets.map((b) => b.labels.le),
    [...DURATION_BUCKETS.map(String), '+Inf'],
  )
  for (let i = 1; i < buckets.length; i++) t.ok(buckets[i]!.value >= buckets[i - 1]!.value)
  t.equal(buckets.at(-1)!.value, 5)
})

t.test('in-flight counts a pending request under its variant', async (t) => {
  const { turnout, held } = await twoVariants(t)
  const pending = request(`${turnout.url}/hold`, { headers: CANARY })
  for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(held.length, 1, 'the upstream holds the request')
  let { samples } = await scrapeOnce(turnout)
  t.equal(value(samples, 'turnout_requests_in_flight', { route: 'shop', variant: 'canary' }), 1)
  t.equal(value(samples, 'turnout_requests_in_flight', { route: 'shop', variant: 'primary' }), 0)
  held[0]!.end('done')
  const res = await pending
  await res.body.dump()
  ;({ samples } = await scrape(turnout))
  t.equal(value(samples, 'turnout_requests_in_flight', { route: 'shop', variant: 'canary' }), 0)
  t.equal(value(samples, 'turnout_requests_total', { route: 'shop', variant: 'canary', code: '200' }), 1)
})

t.test(
  "a 502 Turnout answers itself counts under the variant it was sent to, with the error's kind",
  async (t) => {
    const primary = await startUpstream('primary')
    t.teardown(() => primary.close())
    const dead = await freePort()
    const turnout = await startProxy(t, {
      routes: [
        {
          name: 'api',
          primary: { endpoints: [primary.url] },
          canary: { endpoints: [`http://127.0.0.1:${dead}`] },
          overrides: [{ when: { header: 'x-canary', equals: '1' }, to: 'canary' }],
        },
      ],
    })
    t.equal(await get(`${turnout.url}/a`, CANARY), 502)
    t.equal(await get(`${turnout.url}/a`, CANARY), 502)
    t.equal(await get(`${turnout.url}/a`), 200)
    const { samples } = await scrape(turnout)
    t.equal(value(samples, 'turnout_requests_total', { route: 'api', variant: 'canary', code: '502' }), 2)
    t.equal(value(samples, 'turnout_requests_total', { route: 'api', variant: 'primary', code: '200' }), 1)
    t.equal(
      value(samples, 'turnout_requests_total', { route: 'api', variant: 'primary', code: '502' }),
      undefined,
    )
    t.equal(
      value(samples, 'turnout_upstream_errors_total', { route: 'api', variant: 'canary', kind: 'connect' }),
      2,
    )
    t.equal(
      value(samples, 'turnout_upstream_errors_total', { route: 'api', variant: 'primary', kind: 'connect' }),
      0,
    )
    t.equal(value(samples, 'turnout_requests_in_flight', { route: 'api', variant: 'canary' }), 0)
  },
)

t.test('the weight gauge follows every change of the live weight', async (t) => {
  const { turnout } = await twoVariants(t)
  let { samples } = await scrape(turnout)
  t.equal(value(samples, 'turnout_canary_weight', { route: 'shop' }), 10)
  turnout.holder.current.byName.get('shop')!.weight.canary = 25
  ;({ samples } = await scrape(turnout))
  t.equal(value(samples, 'turnout_canary_weight', { route: 'shop' }), 25)
  turnout.holder.current.byName.get('shop')!.weight.canary = 0
  ;({ samples } = await scrape(turnout))
  t.equal(value(samples, 'turnout_canary_weight', { route: 'shop' }), 0)
})

t.test('injected faults are counted by kind under their variant', async (t) => {
  const { turnout } = await twoVariants(t, { faults: [{ variant: 'canary', abort: { status: 503 } }] })
  t.equal(await get(`${turnout.url}/f`, CANARY), 503)
  t.equal(await get(`${turnout.url}/f`, CANARY), 503)
  const { samples } = await scrape(turnout)
  t.equal(
    value(samples, 'turnout_faults_injected_total', { route: 'shop', variant: 'canary', kind: 'abort' }),
    2,
  )
  t.equal(
    value(samples, 'turnout_faults_injected_total', { route: 'shop', variant: 'canary', kind: 'delay' }),
    0,
  )
  t.equal(value(samples, 'turnout_requests_total', { route: 'shop', variant: 'canary', code: '503' }), 2)
})

t.test('nothing from the request becomes a label', async (t) => {
  const { turnout, primary, canary } = await twoVariants(t)
  await get(`${turnout.url}/secret-path-4711?token=hunter2`, { 'x-user': 'alice-0815', ...CANARY })
  await get(`${turnout.url}/other-path-4712`, { 'user-agent': 'agent-0816' })
  await get(`${turnout.url}/fail`, CANARY)
  const { text, samples } = await scrape(turnout)
  for (const secret of ['secret-path', '4711', 'hunter2', 'alice', '0815', 'other-path', 'agent-0816']) {
    t.notOk(text.includes(secret), `${secret} is not in the scrape`)
  }
  const allowed: Record<string, Set<string>> = {
    route: new Set(['shop']),
    variant: new Set(['primary', 'canary']),
  }
  for (const s of samples.filter(
    (x) => x.name.startsWith('turnout_') && !x.name.startsWith('turnout_nodejs_'),
  )) {
    for (const [k, v] of Object.entries(s.labels)) {
      if (k === 'code') t.match(v, /^\d{1,3}$/, `${s.name} code`)
      else if (k === 'endpoint')
        t.ok([primary.url, canary.url].includes(v), `${s.name} endpoint from the config`)
      else if (allowed[k]) t.ok(allowed[k].has(v), `${s.name} ${k}=${v}`)
      else
        t.ok(
          ['kind', 'reason', 'le', 'result', 'field', 'phase', 'check'].includes(k),
          `${s.name} label ${k}`,
        )
    }
  }
})

t.test('metrics.enabled: false serves no /metrics', async (t) => {
  const { turnout } = await twoVariants(t, {}, { metrics: { enabled: false } })
  t.equal(await get(`${turnout.url}/x`), 200)
  const res = await request(`${turnout.adminUrl}/metrics`)
  await res.body.dump()
  t.equal(res.statusCode, 404)
})

// ---------- the recording handle ----------

t.test('the Metrics handle records mirror, reload, span and rollout families', async (t) => {
  const m = new TurnoutMetrics({ table: () => ({ routes: [] }), processMetrics: false })
  m.mirrorRequest('shop', 'canary', 200, 0.003)
  m.mirrorRequest('shop', 'canary', 200, 0.2)
  m.mirrorRequest('shop', 'primary', 500, 0.004)
  m.mirrorDropped('shop', 'timeout')
  m.mirrorComparison('shop', 'mismatch')
  m.mirrorComparison('shop', 'match')
  m.mirrorComparison('shop', 'match')
  m.mirrorMismatch('shop', 'body')
  m.configReload('success')
  m.configReload('error')
  m.configReload('error')
  m.droppedSpans(7)
  m.rolloutPhase('shop', 'progressing')
  m.rolloutStep('shop', 2)
  m.analysisCheck('shop', 'errorRate', 'pass')
  const s = parseExposition(await m.text())
  t.equal(value(s, 'turnout_mirror_requests_total', { route: 'shop', variant: 'canary', code: '200' }), 2)
  t.equal(value(s, 'turnout_mirror_requests_total', { route: 'shop', variant: 'primary', code: '500' }), 1)
  t.equal(value(s, 'turnout_mirror_request_duration_seconds_bucket', { variant: 'canary', le: '0.0025' }), 0)
  t.equal(value(s, 'turnout_mirror_request_duration_seconds_bucket', { variant: 'canary', le: '0.005' }), 1)
  t.equal(value(s, 'turnout_mirror_request_duration_seconds_bucket', { variant: 'canary', le: '0.25' }), 2)
  t.equal(value(s, 'turnout_mirror_request_duration_seconds_sum', { variant: 'canary' }), 0.203)
  t.equal(value(s, 'turnout_mirror_dropped_total', { route: 'shop', reason: 'timeout' }), 1)
  t.equal(value(s, 'turnout_mirror_dropped_total', { route: 'shop', reason: 'in_flight_limit' }), 0)
  t.equal(value(s, 'turnout_mirror_comparisons_total', { route: 'shop', result: 'match' }), 2)
  t.equal(value(s, 'turnout_mirror_comparisons_total', { route: 'shop', result: 'mismatch' }), 1)
  t.equal(value(s, 'turnout_mirror_mismatches_total', { route: 'shop', field: 'body' }), 1)
  t.equal(value(s, 'turnout_config_reloads_total', { result: 'success' }), 1)
  t.equal(value(s, 'turnout_config_reloads_total', { result: 'error' }), 2)
  t.equal(value(s, 'turnout_telemetry_dropped_spans_total', {}), 7)
  t.equal(value(s, 'turnout_rollout_phase', { route: 'shop', phase: 'progressing' }), 1)
  t.equal(value(s, 'turnout_rollout_phase', { route: 'shop', phase: 'idle' }), 0)
  t.equal(value(s, 'turnout_rollout_step', { route: 'shop' }), 2)
  t.equal(value(s, 'turnout_analysis_checks_total', { route: 'shop', check: 'errorRate', result: 'pass' }), 1)
  m.rolloutPhase('shop', 'aborted')
  const after = parseExposition(await m.text())
  t.equal(value(after, 'turnout_rollout_phase', { route: 'shop', phase: 'progressing' }), 0)
  t.equal(value(after, 'turnout_rollout_phase', { route: 'shop', phase: 'aborted' }), 1)
  // JSON view (what a cluster aggregator reads) carries the accumulated histogram too
  const json = await m.registry.getMetricsAsJSON()
  const hist = json.find((x) => x.name === 'turnout_mirror_request_duration_seconds')
  t.ok(hist && hist.values.length > 0)
})

// ---------- promtool and a real Prometheus ----------

const PROMTOOL = '/usr/bin/promtool'

const missing = (bin: string) =>
  existsSync(bin)
    ? false
    : `${bin} not found: install the Debian package prometheus (apt-get install -y prometheus)`

t.test('promtool check metrics passes on a real scrape', { skip: missing(PROMTOOL) }, async (t) => {
  const { turnout } = await twoVariants(t, {
    faults: [{ variant: 'primary', abort: { status: 503, percent: 50 } }],
  })
  for (let i = 0; i < 10; i++) {
    await get(`${turnout.url}/x`)
    await get(`${turnout.url}/x`, CANARY)
  }
  await get(`${turnout.url}/fail`, CANARY)
  const { text } = await scrape(turnout)
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`)
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint findings')
})

t.test('a real Prometheus scraping Turnout sees both variants', { skip: missing(PROMETHEUS) }, async (t) => {
  const { turnout } = await twoVariants(t, { split: { canary: 50 } })
  const prom = await startPrometheus(t, [new URL(turnout.adminUrl).host])

  // steady traffic on both variants while Prometheus scrapes
  let running = true
  const traffic = (async () => {
    while (running) {
      await get(`${turnout.url}/x`).catch(() => 0)
      await get(`${turnout.url}/x`, CANARY).catch(() => 0)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  t.teardown(async () => {
    running = false
    await traffic
  })

  const query = 'sum by (variant) (rate(turnout_requests_total[1m]))'
  let result: Array<{ metric: { variant?: string }; value: [number, string] }> = []
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && prom.exitCode === null) {
    try {
      result = (await prom.query(query)).result as typeof result
      if (result.length === 2 && result.every((r) => Number(r.value[1]) > 0)) break
    } catch {
      // no answer yet
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  t.equal(prom.exitCode, null, `prometheus is running (stderr: ${prom.stderr.slice(0, 2000)})`)
  t.same(result.map((r) => r.metric.variant).sort(), ['canary', 'primary'])
  for (const r of result) t.ok(Number(r.value[1]) > 0, `${r.metric.variant} rate ${r.value[1]} > 0`)
})
