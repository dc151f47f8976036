// OpenTelemetry traces end to end: client → Turnout → upstream on loopback, with a real OTLP/HTTP
// receiver collecting what Turnout exports; plus the settings (config block + OTEL_* env) directly.
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startTurnout, type Turnout } from '../src/app.js'
import { main } from '../src/cli/main.js'
import { parseConfig } from '../src/config/load.js'
import { redactQuery, redactTarget } from '../src/telemetry/redact.js'
import { splitHostPort } from '../src/telemetry/tracing/observer.js'
import {
  parseKeyPairs,
  resolveTracingSettings,
  TelemetryConfigError,
} from '../src/telemetry/tracing/settings.js'
import { memoryLogger } from './helpers/turnout.js'
import { until } from './helpers/until.js'
import { freePort, startUpstream, type TestUpstream } from './helpers/upstream.js'

// ---------- helpers ----------

type AnyValue = {
  stringValue?: string
  intValue?: number | string
  boolValue?: boolean
  doubleValue?: number
}
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: Array<{ key: string; value: AnyValue }>
  status?: { code?: number; message?: string }
}
interface Received {
  path: string
  contentType: string
  body: Buffer
}

const SERVER = 2
const CLIENT = 3
const STATUS_ERROR = 2

function attr(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const v = span.attributes.find((a) => a.key === key)?.value
  if (v === undefined) return undefined
  if (v.stringValue !== undefined) return v.stringValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.boolValue !== undefined) return v.boolValue
  return v.doubleValue
}

/** A loopback OTLP/HTTP receiver: records every POST; `hold` parks answers until `release()`. */
async function startReceiver(t: Test, opts: { hold?: boolean; status?: number } = {}) {
  const received: Received[] = []
  const parked: ServerResponse[] = []
  let holding = opts.hold ?? false
  const status = opts.status ?? 200
  const answer = (res: ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(status === 200 ? '{}' : '{"code":3,"message":"refused"}')
  }
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        contentType: req.headers['content-type'] ?? '',
        body: Buffer.concat(chunks),
      })
      if (holding) parked.push(res)
      else answer(res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const spans = (): OtlpSpan[] =>
    received.flatMap((r) => {
      const doc = JSON.parse(r.body.toString('utf8')) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>
      }
      return doc.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
    })
  return {
    url,
    received,
    spans,
    parked,
    release() {
      holding = false
      for (const r of parked.splice(0)) answer(r)
    },
  }
}

async function start(
  t: Test,
  routes: unknown[],
  tracing: Record<string, unknown> | undefined,
  env: Record<string, string>,
  extra: Record<string, unknown> = {},
): Promise<Turnout> {
  const config = parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      accessLog: { enabled: false },
      ...(tracing ? { tracing } : {}),
      routes,
      ...extra,
    }),
    'test',
  )
  const turnout = await startTurnout({ config, logger: pino({ level: 'silent' }), env })
  t.teardown(() => turnout.close())
  return turnout
}

function route(primary: TestUpstream, canary: TestUpstream, extra: Record<string, unknown> = {}) {
  return {
    name: 'shop',
    primary: { endpoints: [primary.url] },
    canary: { endpoints: [canary.url] },
    overrides: [{ when: { header: 'x-canary', equals: '1' }, to: 'canary' }],
    ...extra,
  }
}

async function upstreams(t: Test): Promise<{ primary: TestUpstream; canary: TestUpstream }> {
  const primary = await startUpstream('primary')
  const canary = await startUpstream('canary')
  t.teardown(async () => {
    await primary.close()
    await canary.close()
  })
  return { primary, canary }
}

async function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { headers })
  await res.body.dump()
  return res.statusCode
}

async function droppedSpans(turnout: Turnout): Promise<number> {
  const res = await request(`${turnout.adminUrl}/metrics`)
  const text = await res.body.text()
  const m = /^turnout_telemetry_dropped_spans_total (\S+)$/m.exec(text)
  return m ? Number(m[1]) : Number.NaN
}

function traceparents(rawHeaders: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'traceparent') out.push(rawHeaders[i + 1]!)
  }
  return out
}

const FAST = { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '20' }
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

// ---------- end to end ----------

t.test('SERVER and CLIENT spans, attributes, and the trace continued to the upstream', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(t, [route(primary, canary)], { enabled: true, endpoint: receiver.url }, FAST)

  const status = await get(`${turnout.url}/item/7?a=1&sig=secret`, {
    'x-canary': '1',
    traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
    tracestate: 'vendor=abc',
    'user-agent': 'tracing-test/1',
  })
  t.equal(status, 200)
  const spans = await until('two spans', () => (receiver.spans().length >= 2 ? receiver.spans() : undefined))
  t.equal(spans.length, 2)
  t.equal(receiver.received[0]!.path, '/v1/traces')
  t.match(receiver.received[0]!.contentType, /^application\/json/)
  const server = spans.find((s) => s.kind === SERVER)!
  const client = spans.find((s) => s.kind === CLIENT)!
  t.ok(server && client, 'one SERVER and one CLIENT span')

  // structure: client's trace → SERVER (child of the client's span) → CLIENT (child of SERVER)
  t.equal(server.traceId, CLIENT_TRACE)
  t.equal(server.parentSpanId, CLIENT_SPAN)
  t.equal(client.traceId, CLIENT_TRACE)
  t.equal(client.parentSpanId, server.spanId)
  t.not(client.spanId, server.spanId)

  // SERVER attributes
  t.equal(server.name, 'GET')
  t.equal(attr(server, 'http.request.method'), 'GET')
  t.equal(attr(server, 'http.response.status_code'), 200)
  t.equal(attr(server, 'url.path'), '/item/7')
  t.equal(attr(server, 'url.query'), 'a=1&sig=REDACTED')
  t.equal(attr(server, 'url.scheme'), 'http')
  t.equal(attr(server, 'server.address'), '127.0.0.1')
  t.equal(attr(server, 'server.port'), Number(new URL(turnout.url).port))
  t.equal(attr(server, 'network.peer.address'), '127.0.0.1')
  t.equal(attr(server, 'client.address'), '127.0.0.1')
  t.equal(attr(server, 'network.protocol.version'), '1.1')
  t.equal(attr(server, 'user_agent.original'), 'tracing-test/1')
  t.equal(attr(server, 'turnout.route'), 'shop')
  t.equal(attr(server, 'turnout.variant'), 'canary')
  t.equal(attr(server, 'turnout.decision'), 'override')
  t.equal(server.status?.code ?? 0, 0, 'SERVER status unset on 200')

  // CLIENT attributes
  t.equal(client.name, 'GET')
  t.equal(attr(client, 'http.request.method'), 'GET')
  t.equal(attr(client, 'http.response.status_code'), 200)
  t.equal(attr(client, 'server.address'), '127.0.0.1')
  t.equal(attr(client, 'server.port'), canary.port)
  t.equal(attr(client, 'url.full'), `${canary.url}/item/7?a=1&sig=REDACTED`)
  t.equal(attr(client, 'turnout.route'), 'shop')
  t.equal(attr(client, 'turnout.variant'), 'canary')
  t.equal(attr(client, 'turnout.decision'), undefined, 'decision only on SERVER')

  // propagation: exactly one traceparent upstream, naming the CLIENT span, sampled; tracestate kept
  t.equal(canary.seen.length, 1)
  t.same(traceparents(canary.seen[0]!.rawHeaders), [`00-${CLIENT_TRACE}-${client.spanId}-01`])
  t.equal(canary.seen[0]!.headers.tracestate, 'vendor=abc')
  t.equal(primary.seen.length, 0)

  // resource
  const doc = JSON.parse(receiver.received[0]!.body.toString('utf8')) as {
    resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] } }>
  }
  const resource = { attributes: doc.resourceSpans[0]!.resource.attributes } as OtlpSpan
  t.equal(attr(resource, 'service.name'), 'turnout')
})

t.test('a request without trace context starts a trace the upstream joins', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(
    t,
    [route(primary, canary)],
    { enabled: true, endpoint: receiver.url, serviceName: 'edge' },
    FAST,
  )
  t.equal(await get(`${turnout.url}/plain`), 200)
  const spans = await until('two spans', () => (receiver.spans().length >= 2 ? receiver.spans() : undefined))
  const server = spans.find((s) => s.kind === SERVER)!
  const client = spans.find((s) => s.kind === CLIENT)!
  t.equal(server.parentSpanId ?? '', '', 'SERVER is a root span')
  t.equal(attr(server, 'turnout.decision'), 'weight')
  t.equal(attr(server, 'turnout.variant'), 'primary')
  t.equal(attr(server, 'url.query'), undefined)
  t.same(traceparents(primary.seen[0]!.rawHeaders), [`00-${server.traceId}-${client.spanId}-01`])
  const doc = JSON.parse(receiver.received[0]!.body.toString('utf8')) as {
    resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] } }>
  }
  t.equal(attr({ attributes: doc.resourceSpans[0]!.resource.attributes } as OtlpSpan, 'service.name'), 'edge')
})

t.test('upstream failure: error status on both spans with error.type', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const deadPort = await freePort()
  const receiver = await startReceiver(t)
  const turnout = await start(
    t,
    [
      {
        name: 'api',
        primary: { endpoints: [primary.url] },
        canary: { endpoints: [`http://127.0.0.1:${deadPort}`] },
        overrides: [{ when: { header: 'x-canary', equals: '1' }, to: 'canary' }],
      },
    ],
    { enabled: true, endpoint: receiver.url },
    FAST,
  )
  t.equal(await get(`${turnout.url}/x`, { 'x-canary': '1' }), 502)
  const spans = await until('two spans', () => (receiver.spans().length >= 2 ? receiver.spans() : undefined))
  const server = spans.find((s) => s.kind === SERVER)!
  const client = spans.find((s) => s.kind === CLIENT)!
  t.equal(attr(server, 'http.response.status_code'), 502)
  t.equal(attr(server, 'error.type'), 'connect')
  t.equal(server.status?.code, STATUS_ERROR)
  t.equal(attr(client, 'error.type'), 'connect')
  t.equal(client.status?.code, STATUS_ERROR)
  t.equal(attr(client, 'http.response.status_code'), undefined, 'no upstream status')
  t.equal(attr(client, 'turnout.variant'), 'canary')
})

t.test('5xx from the upstream marks both spans as errors', async (t) => {
  const primary = await startUpstream('primary', (_req, res) => {
    res.writeHead(503)
    res.end()
  })
  const canary = await startUpstream('canary')
  t.teardown(async () => {
    await primary.close()
    await canary.close()
  })
  const receiver = await startReceiver(t)
  const turnout = await start(t, [route(primary, canary)], { enabled: true, endpoint: receiver.url }, FAST)
  t.equal(await get(`${turnout.url}/x`), 503)
  const spans = await until('two spans', () => (receiver.spans().length >= 2 ? receiver.spans() : undefined))
  for (const s of spans) {
    t.equal(attr(s, 'http.response.status_code'), 503)
    t.equal(attr(s, 'error.type'), '503')
    t.equal(s.status?.code, STATUS_ERROR)
  }
})

t.test('default protocol is OTLP http/protobuf', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(t, [route(primary, canary)], undefined, {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
    OTEL_BSP_SCHEDULE_DELAY: '20',
  })
  t.equal(await get(`${turnout.url}/x`, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }), 200)
  const r = await until('an export', () => receiver.received[0])
  t.equal(r.path, '/custom/traces', 'the full traces URL from the env is used as is')
  t.equal(r.contentType, 'application/x-protobuf')
  t.ok(r.body.includes(Buffer.from(CLIENT_TRACE, 'hex')), 'the trace id is in the protobuf')
  t.ok(r.body.includes(Buffer.from('turnout.route')), 'attributes are in the protobuf')
})

t.test('unsampled requests export nothing but still propagate the trace (sampled flag off)', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(
    t,
    [route(primary, canary)],
    { enabled: true, endpoint: receiver.url, sampleRatio: 0 },
    FAST,
  )
  for (let i = 0; i < 3; i++) t.equal(await get(`${turnout.url}/x`), 200)
  await turnout.close() // flushes whatever was queued
  t.equal(receiver.received.length, 0, 'no export')
  t.equal(primary.seen.length, 3)
  for (const seen of primary.seen) {
    const tp = traceparents(seen.rawHeaders)
    t.equal(tp.length, 1)
    t.match(tp[0], /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
  }
})

t.test('tracing off: the client traceparent passes through untouched', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(t, [route(primary, canary)], undefined, {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SDK_DISABLED: 'true',
  })
  const tp = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`
  t.equal(await get(`${turnout.url}/x`, { traceparent: tp }), 200)
  await turnout.close()
  t.same(traceparents(primary.seen[0]!.rawHeaders), [tp])
  t.equal(receiver.received.length, 0)
})

t.test('a mirrored request gets its own CLIENT span in the same trace', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const turnout = await start(
    t,
    [route(primary, canary, { mirror: { percent: 100 } })],
    { enabled: true, endpoint: receiver.url },
    FAST,
  )
  t.equal(await get(`${turnout.url}/m`, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }), 200)
  const spans = await until('three spans', () =>
    receiver.spans().length >= 3 ? receiver.spans() : undefined,
  )
  const server = spans.find((s) => s.kind === SERVER)!
  const mirror = spans.find((s) => attr(s, 'turnout.mirror') === true)!
  t.ok(mirror, 'a mirror span')
  t.equal(mirror.kind, CLIENT)
  t.equal(mirror.traceId, CLIENT_TRACE)
  t.equal(mirror.parentSpanId, server.spanId)
  t.equal(attr(mirror, 'turnout.variant'), 'canary')
  t.equal(attr(mirror, 'server.port'), canary.port)
  await until('the mirror reached the canary', () => canary.seen.length === 1)
  t.same(traceparents(canary.seen[0]!.rawHeaders), [`00-${CLIENT_TRACE}-${mirror.spanId}-01`])
})

/**
 * A raw upstream that resets its first connection once the request head arrived (before any byte of
 * answer: Turnout's one-retry-on-reset path) and answers 200 on later ones; records each head.
 */
async function resetOnceUpstream(t: Test): Promise<{ url: string; heads: string[] }> {
  const heads: string[] = []
  const sockets: Socket[] = []
  const server = createNetServer((socket) => {
    sockets.push(socket)
    const first = sockets.length === 1
    let buf = ''
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1')
      if (!buf.includes('\r\n\r\n')) return
      heads.push(buf)
      buf = ''
      if (first) socket.resetAndDestroy()
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, heads }
}

function traceparentIn(head: string): string | undefined {
  return /^traceparent: (.*)$/im.exec(head)?.[1]?.trim()
}

t.test("a retried request names each attempt's own CLIENT span upstream", async (t) => {
  const upstream = await resetOnceUpstream(t)
  const receiver = await startReceiver(t)
  const turnout = await start(
    t,
    [{ name: 'flaky', primary: { endpoints: [upstream.url] } }],
    { enabled: true, endpoint: receiver.url },
    FAST,
  )
  t.equal(
    await get(`${turnout.url}/r`, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }),
    200,
    'the retry answered',
  )
  t.equal(upstream.heads.length, 2, 'two attempts reached the upstream')
  const spans = await until('three spans', () =>
    receiver.spans().length >= 3 ? receiver.spans() : undefined,
  )
  const server = spans.find((s) => s.kind === SERVER)!
  const clients = spans.filter((s) => s.kind === CLIENT)
  t.equal(clients.length, 2, 'one CLIENT span per attempt')
  const first = clients.find((s) => attr(s, 'http.request.resend_count') === undefined)!
  const second = clients.find((s) => attr(s, 'http.request.resend_count') === 1)!
  t.ok(first && second, 'the first attempt and the resend')
  t.equal(attr(first, 'error.type'), 'reset')
  t.equal(attr(second, 'http.response.status_code'), 200)
  for (const c of clients) t.equal(c.parentSpanId, server.spanId)
  const sent = upstream.heads.map(traceparentIn)
  t.same(sent, [`00-${CLIENT_TRACE}-${first.spanId}-01`, `00-${CLIENT_TRACE}-${second.spanId}-01`])
  t.not(sent[0], sent[1], 'the retry carries a different parent span id')
  for (const head of upstream.heads) t.equal(head.match(/^traceparent:/gim)?.length, 1, 'one traceparent')
})

t.test('access log and spans redact signed-URL query values the same way', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t)
  const { logger, lines } = memoryLogger()
  const config = parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      tracing: { enabled: true, endpoint: receiver.url },
      routes: [route(primary, canary)],
    }),
    'test',
  )
  const turnout = await startTurnout({ config, logger, env: FAST })
  t.teardown(() => turnout.close())
  const target = '/dl/file?a=1&Signature=s3cr3t&X-Goog-Signature=g00g&sig=abc&AWSAccessKeyId=AKIA'
  t.equal(await get(`${turnout.url}${target}`), 200)
  const spans = await until('two spans', () => (receiver.spans().length >= 2 ? receiver.spans() : undefined))
  const server = spans.find((s) => s.kind === SERVER)!
  const client = spans.find((s) => s.kind === CLIENT)!
  const line = await until('the access log line', () => lines.find((l) => l.msg === 'request'))
  const expected =
    '/dl/file?a=1&Signature=REDACTED&X-Goog-Signature=REDACTED&sig=REDACTED&AWSAccessKeyId=REDACTED'
  t.equal(line.path, expected)
  t.equal(`/dl/file?${attr(server, 'url.query')}`, expected)
  t.equal(attr(client, 'url.full'), `${primary.url}${expected}`)
  const logged = JSON.stringify(lines)
  for (const secret of ['s3cr3t', 'g00g', 'abc', 'AKIA'])
    t.notOk(logged.includes(secret), `${secret} not logged`)
  t.equal(primary.seen[0]!.url, target, 'the upstream still gets the real query')
})

// ---------- a collector that is down or stuck ----------

t.test('a down endpoint never fails requests; its spans are counted as dropped', async (t) => {
  const { primary, canary } = await upstreams(t)
  const deadPort = await freePort()
  const turnout = await start(
    t,
    [route(primary, canary)],
    { enabled: true, endpoint: `http://127.0.0.1:${deadPort}` },
    {
      ...FAST,
      OTEL_EXPORTER_OTLP_TIMEOUT: '300',
    },
  )
  for (let i = 0; i < 20; i++) t.equal(await get(`${turnout.url}/x`), 200)
  // 20 requests × (SERVER + CLIENT), each in a failed export batch
  let dropped = 0
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    dropped = await droppedSpans(turnout)
    if (dropped >= 40) break
    await new Promise((r) => setTimeout(r, 50))
  }
  t.equal(dropped, 40)
})

t.test('a stuck collector: queue overflow is counted, then the failed batches too', async (t) => {
  const { primary, canary } = await upstreams(t)
  const receiver = await startReceiver(t, { hold: true, status: 400 })
  const turnout = await start(
    t,
    [route(primary, canary)],
    { enabled: true, endpoint: receiver.url },
    {
      ...FAST,
      OTEL_BSP_MAX_QUEUE_SIZE: '2',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
    },
  )
  for (let i = 0; i < 10; i++) t.equal(await get(`${turnout.url}/x`), 200)
  // one batch of 2 is out (held), 2 more wait in the queue, the other 16 overflowed
  await until('the first export', () => receiver.received.length === 1)
  let overflowed = 0
  const first = Date.now() + 10_000
  while (Date.now() < first && overflowed < 16) {
    overflowed = await droppedSpans(turnout)
    await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(overflowed, 16)
  t.equal(receiver.received.length, 1, 'nothing else was sent while the first export is held')
  receiver.release() // the collector now refuses (400): both held-back batches fail
  const deadline = Date.now() + 30_000
  let dropped = 16
  while (Date.now() < deadline && dropped < 20) {
    dropped = await droppedSpans(turnout)
    await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(dropped, 20)
})

// ---------- settings ----------

t.test('settings: off by default, on by config or by an endpoint variable', async (t) => {
  t.equal(resolveTracingSettings(undefined, {}).enabled, false)
  t.equal(resolveTracingSettings({}, {}).enabled, false)
  const base = resolveTracingSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })
  t.equal(base.enabled, true)
  t.equal(base.url, 'http://c:4318/v1/traces')
  t.equal(base.protocol, 'http/protobuf')
  t.equal(base.sampler, 'parentbased_always_on')
  t.equal(base.serviceName, 'turnout')
  t.equal(
    resolveTracingSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).url,
    'http://c:4318/v1/traces',
  )
  t.equal(
    resolveTracingSettings(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://d:9999/traces',
    }).url,
    'http://d:9999/traces',
  )
  // the config block wins
  const cfg = resolveTracingSettings(
    { endpoint: 'http://cfg:4318', sampleRatio: 0.25, serviceName: 'edge' },
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318',
      OTEL_TRACES_SAMPLER: 'always_off',
      OTEL_SERVICE_NAME: 'env-name',
    },
  )
  t.equal(cfg.enabled, true)
  t.equal(cfg.url, 'http://cfg:4318/v1/traces')
  t.equal(cfg.sampler, 'parentbased_traceidratio')
  t.equal(cfg.ratio, 0.25)
  t.equal(cfg.serviceName, 'edge')
  t.equal(
    resolveTracingSettings({ enabled: false }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).enabled,
    false,
  )
  t.equal(
    resolveTracingSettings({ enabled: false }, { OTEL_TRACES_SAMPLER: 'bogus' }).enabled,
    false,
    'tracing.enabled: false ignores the environment',
  )
  t.equal(resolveTracingSettings({ enabled: true }, { OTEL_SDK_DISABLED: 'true' }).enabled, true)
  t.equal(resolveTracingSettings({ enabled: true }, {}).url, 'http://localhost:4318/v1/traces')
  t.equal(
    resolveTracingSettings(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_SDK_DISABLED: 'TRUE',
    }).enabled,
    false,
  )
  const env = resolveTracingSettings(undefined, {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_TRACES_SAMPLER: 'traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.1',
    OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,deployment.environment=prod',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20x',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
  })
  t.equal(env.protocol, 'http/json', 'the traces-specific protocol wins')
  t.equal(env.sampler, 'traceidratio')
  t.equal(env.ratio, 0.1)
  t.equal(env.serviceName, 'from-attrs')
  t.equal(env.resourceAttributes['deployment.environment'], 'prod')
  t.equal(env.headers.authorization, 'Bearer x')
  t.equal(env.timeoutMillis, 2500)
})

t.test('settings: an unreadable OTEL_* value is an error naming it', async (t) => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/xml' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'],
    [{ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER'],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, 'OTEL_TRACES_SAMPLER_ARG'],
    [
      { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    [{ OTEL_SDK_DISABLED: 'maybe' }, 'OTEL_SDK_DISABLED'],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '10s' }, 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '-1' }, 'OTEL_BSP_MAX_QUEUE_SIZE'],
  ]
  for (const [env, name] of bad) {
    t.throws(
      () => resolveTracingSettings(undefined, env),
      { name: 'TelemetryConfigError', variable: name, message: new RegExp(`^${name}: `) },
      name,
    )
  }
  // the ratio argument is only read by the ratio samplers
  t.equal(
    resolveTracingSettings(undefined, { OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'x' })
      .ratio,
    1,
  )
})

t.test('startup fails naming the variable; `turnout` exits 1', async (t) => {
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  const text = JSON.stringify({
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    routes: [{ name: 'r', primary: { endpoints: [upstream.url] } }],
  })
  await t.rejects(
    startTurnout({
      config: parseConfig(text, 'test'),
      logger: pino({ level: 'silent' }),
      env: { OTEL_TRACES_SAMPLER: 'sometimes' },
    }),
    TelemetryConfigError,
  )
  const dir = mkdtempSync(join(tmpdir(), 'turnout-otel-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'turnout.json')
  writeFileSync(file, text)
  const err: string[] = []
  const code = await main(['--config', file], {
    out: () => {},
    err: (s) => err.push(s),
    env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
  })
  t.equal(code, 1)
  t.match(err.join('\n'), /OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/)
})

t.test('helpers', async (t) => {
  t.equal(
    redactQuery('a=1&Signature=x&b=2&X-Goog-Signature=y&AWSAccessKeyId=z'),
    'a=1&Signature=REDACTED&b=2&X-Goog-Signature=REDACTED&AWSAccessKeyId=REDACTED',
  )
  t.equal(redactQuery('design=1&signature=kept'), 'design=1&signature=kept')
  t.equal(redactTarget('/p?x=1&sig=a'), '/p?x=1&sig=REDACTED')
  t.equal(redactTarget('/p/sig=a'), '/p/sig=a', 'only the query is redacted')
  t.equal(redactTarget('/p'), '/p')
  // OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS: W3C Baggage lists, as the SDK reads them
  t.same(parseKeyPairs(' a = 1 ,b=x%20y;meta=1,=novalue,nokey,c=,d=%E0%A4%A,e==f'), {
    a: '1',
    b: 'x y',
    e: '=f',
  })
  t.same(parseKeyPairs(undefined), {})
  t.same(splitHostPort('example.com:8080'), { host: 'example.com', port: 8080 })
  t.same(splitHostPort('example.com'), { host: 'example.com', port: null })
  t.same(splitHostPort('[::1]:9000'), { host: '::1', port: 9000 })
})
