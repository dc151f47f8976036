// The mirror phase over real sockets: what the canary receives, what the client never sees, the
// in-flight bound and drops, bodies (unsafe only), slow/never/down canaries on one client keep-alive
// connection, comparison results, noise replays, the diffs API and the wiring in startTurnout.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { Client, request } from 'undici'
import { AdminServer } from '../src/admin/server.js'
import { compile } from '../src/config/compile.js'
import { ConfigError, parseConfig } from '../src/config/load.js'
import { noopObserver, type Observer } from '../src/core/pipeline.js'
import type { CapturedResponse } from '../src/mirror/capture.js'
import { decodedPair } from '../src/mirror/decode.js'
import { Mirror, type MirrorOutcome, type MirrorRecorder } from '../src/mirror/index.js'
import { CONNECT_FAILURES, MirrorPools } from '../src/mirror/pools.js'
import { createRequestHandler } from '../src/proxy/handle.js'
import { TableHolder } from '../src/routing/holder.js'
import { Pools } from '../src/upstream/pools.js'
import { startProxy } from './helpers/turnout.js'
import { until } from './helpers/until.js'
import { deadUrl, type Handler, startUpstream, type TestUpstream } from './helpers/upstream.js'

type Obj = Record<string, unknown>

class Counting implements MirrorRecorder {
  readonly counts = new Map<string, number>()
  #bump(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }
  request(route: string, variant: string, code: number): void {
    this.#bump(`request ${route} ${variant} ${code}`)
  }
  dropped(route: string, reason: string): void {
    this.#bump(`dropped ${route} ${reason}`)
  }
  comparison(route: string, result: string): void {
    this.#bump(`comparison ${route} ${result}`)
  }
  mismatch(route: string, field: string): void {
    this.#bump(`mismatch ${route} ${field}`)
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0
  }
}

interface Harness {
  url: string
  adminUrl: string
  mirror: Mirror
  rec: Counting
  holder: TableHolder
  pools: Pools
  /** Client connections the proxy accepted. */
  connections(): number
  internalErrors: unknown[]
}

interface HarnessOptions {
  observer?: Observer
  recorder?: Counting
  maxBodySize?: number
}

const parseRoutes = (routes: Obj[]) => parseConfig(JSON.stringify({ listen: '127.0.0.1:0', routes }), 'test')

/**
 * The request handler as app.ts builds it, with the mirror module wired through compile's phases and
 * a counting recorder, on 127.0.0.1:0 (plus an admin listener with the diffs route).
 */
async function startHarness(t: Test, routes: Obj[], opts: HarnessOptions = {}) {
  const config = parseRoutes(routes)
  const rec = opts.recorder ?? new Counting()
  const internalErrors: unknown[] = []
  const mirror = new Mirror({
    recorder: rec,
    trustForwarded: false,
    onInternalError: (e) => internalErrors.push(e),
  })
  const pools = new Pools()
  const holder = new TableHolder(compile(config, { pools, phases: { mirror: mirror.phase } }))
  const server: Server = createServer(
    { keepAliveTimeout: 30_000 },
    createRequestHandler({
      holder,
      observer: opts.observer ?? noopObserver,
      trustForwarded: false,
      maxBodySize: opts.maxBodySize ?? null,
      bodyIdleTimeout: 30_000,
      draining: () => false,
      refused: () => {},
    }),
  )
  let connections = 0
  server.on('connection', () => connections++)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const admin = new AdminServer({
    token: null,
    protectHealth: false,
    protectMetrics: false,
    logger: pino({ level: 'silent' }),
    ready: () => true,
  })
  mirror.mount(admin, holder)
  admin.server.listen(0, '127.0.0.1')
  await once(admin.server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    admin.server.closeAllConnections()
    admin.server.close()
    await pools.destroy()
    await mirror.close()
  })
  const h: Harness = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    adminUrl: `http://127.0.0.1:${(admin.server.address() as AddressInfo).port}`,
    mirror,
    rec,
    holder,
    pools,
    connections: () => connections,
    internalErrors,
  }
  return h
}

async function upstream(t: Test, name: string, handler?: Handler): Promise<TestUpstream> {
  const u = await startUpstream(name, handler)
  t.teardown(() => u.close())
  return u
}

/** The route most tests use: `shop` from `primary` to `canary`, with `extra` (its mirror block…). */
const shop = (primary: TestUpstream, canary: TestUpstream, extra: Obj): Obj => ({
  name: 'shop',
  primary: { endpoints: [primary.url] },
  canary: { endpoints: [canary.url] },
  ...extra,
})

/** Default `primary` and `canary` upstreams behind the harness, with `shop` between them. */
async function startShop(t: Test, extra: Obj, opts: HarnessOptions = {}) {
  const primary = await upstream(t, 'primary')
  const canary = await upstream(t, 'canary')
  const h = await startHarness(t, [shop(primary, canary, extra)], opts)
  return { primary, canary, h }
}

const mirrored = (u: TestUpstream) => u.seen.filter((s) => s.headers['x-turnout-mirror'] === '1')

t.test(
  'a mirrored GET reaches the canary as the client sent it; the client sees only the primary',
  async (t) => {
    const primary = await upstream(t, 'primary')
    const canary = await upstream(t, 'canary', (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json', 'x-upstream': 'canary' })
      res.end('{"canary":true}')
    })
    const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    // Stands in for the tracing observer, which puts the live request's traceparent here.
    const observer: Observer = {
      ...noopObserver,
      requestStart: (ctx) => (ctx.upstreamHeaders = ['traceparent', TRACEPARENT]),
    }
    const h = await startHarness(t, [shop(primary, canary, { mirror: {} })], { observer })
    const res = await request(`${h.url}/api/items?q=1&sort=price%20desc`, {
      headers: {
        host: 'shop.example',
        'x-custom': 'kept',
        accept: 'application/json',
        'x-turnout-mirror': '0',
        authorization: 'Bearer abc',
      },
    })
    const text = await res.body.text()
    t.equal(res.statusCode, 200, 'the primary status, not the canary 500')
    t.equal(res.headers['x-upstream'], 'primary')
    t.equal(res.headers['x-turnout-variant'], 'primary')
    t.same(JSON.parse(text), { upstream: 'primary', method: 'GET', url: '/api/items?q=1&sort=price%20desc' })

    await until('the mirror reached the canary', () => canary.seen.length === 1)
    const live = primary.seen[0]!
    const copy = canary.seen[0]!
    t.equal(copy.method, 'GET')
    t.equal(copy.url, '/api/items?q=1&sort=price%20desc', 'same path and query')
    t.equal(copy.headers.host, 'shop.example', 'original Host')
    t.equal(copy.headers['x-turnout-mirror'], '1', 'marked, whatever the client sent')
    t.equal(live.headers['x-turnout-mirror'], undefined, 'the live request is not marked')
    t.equal(copy.headers['x-turnout-variant'], 'canary')
    t.equal(copy.headers.traceparent, TRACEPARENT, 'same trace context as the live request')
    const strip = (h: IncomingMessage['headers'], drop: string[]) =>
      Object.fromEntries(Object.entries(h).filter(([k]) => !drop.includes(k)))
    t.same(
      strip(copy.headers, ['x-turnout-mirror', 'x-turnout-variant']),
      strip(live.headers, ['x-turnout-variant']),
      'every other header is the one the live request carries',
    )
    await until('the mirror answer counted', () => h.rec.get('request shop canary 500') === 1)
    t.equal(h.mirror.state('shop')!.inFlight, 0, 'slot given back')
    t.same(h.internalErrors, [])
  },
)

t.test('the span hook can replace the trace headers and sees the outcome', async (t) => {
  const primary = await upstream(t, 'primary')
  const canary = await upstream(t, 'canary')
  const rec = new Counting()
  const ends: MirrorOutcome[] = []
  const infos: Obj[] = []
  const hooked: MirrorRecorder = {
    request: (r, v, c) => rec.request(r, v, c),
    dropped: (r, reason) => rec.dropped(r, reason),
    comparison: (r, res) => rec.comparison(r, res),
    mismatch: (r, f) => rec.mismatch(r, f),
    mirrorStart: (_ctx, info) => {
      infos.push({ route: info.route, variant: info.variant, method: info.method, path: info.path })
      return {
        headers: ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01'],
        end: (o) => ends.push(o),
      }
    },
  }
  const h = await startHarness(t, [
    {
      name: 'shop',
      primary: { endpoints: [primary.url] },
      canary: { endpoints: [`${canary.url}/base`] },
      mirror: {},
    },
  ])
  h.mirror.recorder = hooked
  await request(`${h.url}/x?y=1`).then((r) => r.body.dump())
  await until('span ended', () => ends.length === 1)
  t.same(infos, [{ route: 'shop', variant: 'canary', method: 'GET', path: '/base/x?y=1' }])
  t.equal(canary.seen[0]!.url, '/base/x?y=1', 'the canary endpoint base path is prepended')
  t.equal(canary.seen[0]!.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01')
  t.equal(ends[0]!.status, 200)
  t.equal(ends[0]!.dropReason, null)
  t.ok(ends[0]!.durationSeconds >= 0)
})

t.test('requests the split sends to the canary are not mirrored', async (t) => {
  const { primary, canary, h } = await startShop(t, {
    overrides: [{ when: { header: 'x-canary', equals: '1' }, to: 'canary' }],
    mirror: {},
  })
  for (let i = 0; i < 3; i++)
    await request(`${h.url}/c${i}`, { headers: { 'x-canary': '1' } }).then((r) => r.body.dump())
  // A primary-served request afterwards: once its mirror has arrived, any earlier mirror would have too.
  await request(`${h.url}/p`).then((r) => r.body.dump())
  await until('the mirror of /p', () => mirrored(canary).length === 1)
  t.same(
    canary.seen.map((s) => [s.url, s.headers['x-turnout-mirror'] ?? null]),
    [
      ['/c0', null],
      ['/c1', null],
      ['/c2', null],
      ['/p', '1'],
    ],
  )
  t.equal(primary.seen.length, 1)
})

t.test('percent is an exact deterministic share of eligible requests', async (t) => {
  const { canary, h } = await startShop(t, { mirror: { percent: '25%' } })
  for (let i = 0; i < 8; i++) await request(`${h.url}/r${i}`).then((r) => r.body.dump())
  const s = h.mirror.state('shop')!
  t.equal(s.eligible, 8)
  t.equal(s.selected, 2)
  await until('two mirrors', () => canary.seen.length === 2)
  t.same(
    canary.seen.map((x) => x.url),
    ['/r0', '/r4'],
    'the first of every four',
  )
})

t.test('POST: refused by validation without unsafe, never mirrored by default', async (t) => {
  const base = {
    listen: '127.0.0.1:0',
    routes: [
      {
        name: 'shop',
        primary: { endpoints: ['http://127.0.0.1:1'] },
        canary: { endpoints: ['http://127.0.0.1:2'] },
        mirror: { methods: ['GET', 'POST'] },
      },
    ],
  }
  const err = (() => {
    try {
      parseConfig(JSON.stringify(base), 'test')
      return null
    } catch (e) {
      return e
    }
  })()
  t.ok(err instanceof ConfigError, 'rejected')
  const problems = (err as ConfigError).problems
  t.equal(problems.length, 1)
  t.equal(problems[0]!.path, 'routes[0].mirror.methods[1]')
  t.match(
    problems[0]!.message,
    /POST is not a safe method: mirroring it would duplicate writes on the canary/,
  )
  t.match(problems[0]!.message, /mirror\.unsafe: true/)

  const { primary, canary, h } = await startShop(t, { mirror: {} })
  const res = await request(`${h.url}/orders`, { method: 'POST', body: '{"qty":1}' })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await request(`${h.url}/after`).then((r) => r.body.dump())
  await until('the GET mirror', () => canary.seen.length === 1)
  t.same(
    canary.seen.map((s) => `${s.method} ${s.url}`),
    ['GET /after'],
    'the POST never reached the canary',
  )
  t.equal(primary.seen[0]!.body.toString(), '{"qty":1}')
  t.equal(h.mirror.state('shop')!.eligible, 1, 'POST is not even eligible')
})

t.test('unsafe: true mirrors request bodies intact, within maxBodyBytes', async (t) => {
  const { primary, canary, h } = await startShop(t, {
    mirror: { methods: ['POST', 'PUT'], unsafe: true, maxBodyBytes: '64KiB' },
  })
  const body = Buffer.alloc(60 * 1024)
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251
  // Content-Length body, in one go
  let res = await request(`${h.url}/upload?a=1`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream' },
  })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await until('first body mirror', () => canary.seen.length === 1)
  t.equal(canary.seen[0]!.method, 'POST')
  t.equal(canary.seen[0]!.url, '/upload?a=1')
  t.ok(canary.seen[0]!.body.equals(body), 'the canary got the same bytes')
  t.equal(canary.seen[0]!.headers['content-length'], String(body.length))
  t.equal(canary.seen[0]!.headers['x-turnout-mirror'], '1')
  t.ok(primary.seen[0]!.body.equals(body), 'the primary got the same bytes')

  // chunked (no Content-Length), several chunks
  const parts = [body.subarray(0, 1000), body.subarray(1000, 30_000), body.subarray(30_000)]
  res = await request(`${h.url}/chunked`, { method: 'PUT', body: Readable.from(parts) })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  await until('chunked body mirror', () => canary.seen.length === 2)
  t.equal(canary.seen[1]!.method, 'PUT')
  t.ok(canary.seen[1]!.body.equals(body), 'chunked body mirrored intact')
  t.ok(primary.seen[1]!.body.equals(body))

  // over the limit: Content-Length known up front, then a chunked one passing the limit mid-stream
  const big = Buffer.alloc(100 * 1024, 'b')
  res = await request(`${h.url}/big`, { method: 'POST', body: big })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  res = await request(`${h.url}/bigchunked`, {
    method: 'POST',
    body: Readable.from([big.subarray(0, 50_000), big.subarray(50_000)]),
  })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.ok(primary.seen[2]!.body.equals(big), 'the live upload is untouched')
  t.ok(primary.seen[3]!.body.equals(big), 'the live chunked upload is untouched')
  t.equal(h.rec.get('dropped shop body_too_large'), 2, 'both counted')
  // a later small body still mirrors, and the slots of the dropped ones were given back
  res = await request(`${h.url}/small`, { method: 'POST', body: 'ok' })
  await res.body.dump()
  await until('small body mirror', () => canary.seen.length === 3)
  t.same(
    canary.seen.map((s) => s.url),
    ['/upload?a=1', '/chunked', '/small'],
  )
  await until('all slots back', () => h.mirror.state('shop')!.inFlight === 0)
  t.same(h.internalErrors, [])
})

t.test('with the body tee, limits.maxBodySize still answers 413 to a chunked upload past it', async (t) => {
  const { canary, h } = await startShop(
    t,
    { mirror: { methods: ['POST'], unsafe: true, maxBodyBytes: '1MiB' } },
    { maxBodySize: 10_000 },
  )
  const chunk = Buffer.alloc(4000, 'x')
  const res = await request(`${h.url}/up`, {
    method: 'POST',
    body: Readable.from([chunk, chunk, chunk, chunk]),
  })
  t.equal(res.statusCode, 413)
  t.match(await res.body.json(), { error: 'body_too_large', limit: 10_000 })
  await until('the pending mirror gave its slot back', () => h.mirror.state('shop')!.inFlight === 0)
  t.equal(mirrored(canary).length, 0, 'an incomplete body is never mirrored')
})

t.test('without unsafe a request with a body is not mirrored (counted body_too_large)', async (t) => {
  const { primary, h } = await startShop(t, { mirror: {} })
  const res = await request(`${h.url}/search`, { method: 'OPTIONS', body: 'q=1' })
  await res.body.dump()
  t.equal(primary.seen[0]!.body.toString(), 'q=1')
  t.equal(h.rec.get('dropped shop body_too_large'), 1)
  t.equal(h.mirror.state('shop')!.inFlight, 0)
})

t.test(
  'slow, silent and down canaries: no live request fails, one client connection, bounded mirrors',
  async (t) => {
    const primary = await upstream(t, 'primary')
    const slow = await upstream(t, 'slow', (_req, res) => {
      setTimeout(() => res.end('late'), 3000).unref()
    })
    const silent = await upstream(t, 'silent', () => {}) // never answers
    const down = await deadUrl()
    const route = (name: string, canaryUrl: string, mirror: Obj) => ({
      name,
      match: { pathPrefix: `/${name}` },
      primary: { endpoints: [primary.url] },
      canary: { endpoints: [canaryUrl] },
      mirror,
    })
    const h = await startHarness(t, [
      route('slow', slow.url, { timeout: '10s' }),
      route('silent', silent.url, { timeout: '30s', maxInFlight: 4 }),
      route('down', down, {}),
    ])
    const client = new Client(h.url, { pipelining: 1, keepAliveTimeout: 30_000 })
    t.teardown(() => client.destroy())
    const N = 30
    let maxSilentInFlight = 0
    for (let i = 0; i < N; i++) {
      for (const name of ['slow', 'silent', 'down']) {
        const res = await client.request({ path: `/${name}/r${i}`, method: 'GET' })
        const body = JSON.parse(await res.body.text()) as Obj
        t.equal(res.statusCode, 200, `${name} ${i} answered`)
        t.equal(body.upstream, 'primary')
        maxSilentInFlight = Math.max(maxSilentInFlight, h.mirror.state('silent')!.inFlight)
      }
    }
    t.equal(h.connections(), 1, 'all 90 requests went over one client keep-alive connection')
    t.equal(primary.seen.length, 3 * N)

    t.ok(maxSilentInFlight <= 4, 'never more than maxInFlight mirrors outstanding')
    t.equal(h.rec.get('dropped silent in_flight_limit'), N - 4, 'the rest dropped and counted')
    await until('the silent canary holds the 4 mirrors', () => silent.seen.length === 4)
    t.equal(silent.seen.length, 4, 'the silent canary never got more than 4')

    await until('down mirrors counted', () => h.rec.get('dropped down upstream_error') === N)
    t.equal(h.mirror.state('down')!.inFlight, 0)
    await until('slow mirrors answered', () => h.rec.get('request slow canary 200') === N)
    t.equal(h.rec.get('dropped slow in_flight_limit'), 0)
    t.equal(h.mirror.state('slow')!.inFlight, 0)
    t.same(h.internalErrors, [])
  },
)

t.test('an origin refusing connections is skipped after a few failures, until one succeeds', async (t) => {
  const pools = new MirrorPools()
  const o = 'http://127.0.0.1:9'
  for (let i = 1; i < CONNECT_FAILURES; i++) pools.report(o, true)
  t.equal(pools.skipped(o), false, 'a few failures: still tried')
  pools.report(o, true)
  t.equal(pools.skipped(o), true, 'skipped after CONNECT_FAILURES in a row')
  t.equal(pools.skipped('http://127.0.0.1:10'), false, 'other origins unaffected')
  pools.report(o, false)
  t.equal(pools.skipped(o), false, 'a connection that works clears it')
  for (let i = 1; i < CONNECT_FAILURES; i++) pools.report(o, true)
  pools.report(o, false)
  pools.report(o, true)
  t.equal(pools.skipped(o), false, 'only consecutive failures count')
  await pools.destroy()
  t.equal(pools.closed, true)
})

t.test('a mirror past its timeout is cut and counted; its socket is closed', async (t) => {
  const primary = await upstream(t, 'primary')
  const silent = await upstream(t, 'silent', () => {})
  let open = 0
  silent.server.on('connection', (socket) => {
    open++
    socket.on('close', () => open--)
  })
  const h = await startHarness(t, [shop(primary, silent, { mirror: { timeout: '200ms' } })])
  for (let i = 0; i < 3; i++) {
    const res = await request(`${h.url}/t${i}`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  await until('three timeouts', () => h.rec.get('dropped shop timeout') === 3)
  t.equal(h.mirror.state('shop')!.inFlight, 0)
  t.equal(silent.seen.length, 3, 'the canary got all three')
  await until('canary sockets closed', () => open === 0)
})

t.test('a client that goes away does not cancel the mirror', async (t) => {
  const primary = await upstream(t, 'primary', (_req, res) => {
    setTimeout(() => res.end('slow primary'), 2000).unref()
  })
  const canary = await upstream(t, 'canary')
  const h = await startHarness(t, [shop(primary, canary, { mirror: {} })])
  const ac = new AbortController()
  const pending = request(`${h.url}/gone`, { signal: ac.signal }).catch((e: Error) => e)
  await until('the live request reached the primary', () => h.mirror.state('shop')!.selected === 1)
  ac.abort()
  t.ok((await pending) instanceof Error, 'the client gave up')
  await until('the mirror still completed', () => h.rec.get('request shop canary 200') === 1)
  t.equal(canary.seen[0]!.url, '/gone')
})

// Compare fixtures: the same paths on both sides, answering the same unless the path says otherwise.
function comparingHandler(side: 'primary' | 'canary'): Handler {
  return (req, res) => {
    const url = req.url ?? '/'
    const isCanary = side === 'canary'
    const json = (status: number, body: Obj, headers: Obj = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-version': '1', ...headers })
      res.end(JSON.stringify(body))
    }
    if (url === '/same') return json(200, { id: 1, items: [1, 2] })
    if (url === '/status') return json(isCanary ? 503 : 200, { id: 1 })
    if (url === '/header') return json(200, { id: 1 }, { 'x-version': isCanary ? '2' : '1' })
    if (url === '/json') return json(200, { id: 1, price: isCanary ? 12 : 10 })
    if (url === '/ignored') return json(200, { id: 1, generatedAt: isCanary ? 'b' : 'a' })
    if (url === '/gzip') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-version': '1' })
      return res.end(gzipSync(JSON.stringify({ id: 1, qty: isCanary ? 3 : 2 })))
    }
    if (url === '/random') return json(200, { id: Math.random(), price: 10 })
    if (url === '/random-price') return json(200, { id: Math.random(), price: isCanary ? 11 : 10 })
    json(404, { error: 'nope' })
  }
}

t.test('comparison: match, mismatches by field, ignore paths, decoded bodies, the diffs API', async (t) => {
  const primary = await upstream(t, 'primary', comparingHandler('primary'))
  const canary = await upstream(t, 'canary', comparingHandler('canary'))
  const h = await startHarness(t, [
    shop(primary, canary, { mirror: { compare: { headers: ['x-version'], ignore: ['$.generatedAt'] } } }),
  ])
  const s = () => h.mirror.state('shop')!
  const paths = ['/same', '/status', '/header', '/json', '/ignored', '/gzip']
  for (const [i, p] of paths.entries()) {
    const res = await request(`${h.url}${p}`, { headers: { 'accept-encoding': 'gzip' } })
    await res.body.dump()
    await until(`comparison of ${p}`, () => s().canaryComparisons === i + 1)
  }
  t.equal(h.rec.get('comparison shop match'), 2, '/same and /ignored match')
  t.equal(h.rec.get('comparison shop mismatch'), 4)
  t.equal(h.rec.get('mismatch shop status'), 1)
  t.equal(h.rec.get('mismatch shop header'), 1)
  t.equal(h.rec.get('mismatch shop body'), 2)

  const res = await request(`${h.adminUrl}/api/routes/shop/mirror/diffs`)
  t.equal(res.statusCode, 200)
  const list = (await res.body.json()) as { route: string; diffs: Array<Obj & { fields: Obj[] }> }
  t.equal(list.route, 'shop')
  t.same(
    list.diffs.map((d) => [d.method, d.path, d.classification]),
    [
      ['GET', '/gzip', 'mismatch'],
      ['GET', '/json', 'mismatch'],
      ['GET', '/header', 'mismatch'],
      ['GET', '/status', 'mismatch'],
    ],
    'newest first; no sample for matches or ignored fields',
  )
  t.same(
    list.diffs[0]!.fields,
    [{ field: 'body', path: '$.qty', primary: 2, canary: 3 }],
    'gzip bodies decoded',
  )
  t.same(list.diffs[1]!.fields, [{ field: 'body', path: '$.price', primary: 10, canary: 12 }])
  t.same(list.diffs[2]!.fields, [{ field: 'header', path: 'x-version', primary: '1', canary: '2' }])
  t.same(list.diffs[3]!.fields, [{ field: 'status', path: 'status', primary: 200, canary: 503 }])
  t.ok(typeof list.diffs[0]!.time === 'number')

  const missing = await request(`${h.adminUrl}/api/routes/nope/mirror/diffs`)
  t.equal(missing.statusCode, 404)
  t.match(await missing.body.json(), { error: /unknown route "nope"/ })

  // A reload keeps the route's samples and noise windows; removing the mirror forgets them.
  const before = s()
  const next = (mirror: Obj | undefined) =>
    compile(parseRoutes([shop(primary, canary, { mirror })]), {
      pools: h.pools,
      phases: { mirror: h.mirror.phase },
    })
  h.holder.swap(next({ percent: 50, compare: { headers: ['x-version'], ignore: ['$.generatedAt'] } }))
  t.equal(s(), before, 'same state object after a reload')
  t.equal(h.mirror.diffs('shop').diffs.length, 4)
  h.holder.swap(next(undefined))
  t.equal(h.mirror.state('shop'), undefined, 'forgotten once the route has no mirror')
  t.same(h.internalErrors, [])
})

t.test(
  'noise replay: a field differing on every call is noise, a canary-only change is a mismatch',
  async (t) => {
    const p1 = await upstream(t, 'p1', comparingHandler('primary'))
    const p2 = await upstream(t, 'p2', comparingHandler('primary'))
    const canary = await upstream(t, 'canary', comparingHandler('canary'))
    const h = await startHarness(t, [
      {
        name: 'shop',
        primary: { endpoints: [p1.url, p2.url] },
        canary: { endpoints: [canary.url] },
        mirror: { compare: { noise: '100%' } },
      },
    ])
    const s = () => h.mirror.state('shop')!
    const N = 6
    for (let i = 1; i <= N; i++) {
      await request(`${h.url}/random`).then((r) => r.body.dump())
      await until(
        `comparisons of request ${i}`,
        () => s().canaryComparisons === i && s().pairComparisons === i,
      )
    }
    const replays = [...mirrored(p1), ...mirrored(p2)]
    t.equal(replays.length, N, 'every compared request was replayed to the primary')
    t.ok(
      replays.every((r) => r.headers['x-turnout-variant'] === 'primary'),
      'replays are marked as mirrors of the primary variant',
    )
    t.ok(mirrored(p1).length > 0 && mirrored(p2).length > 0, 'replays go to the other primary endpoint')
    t.equal(p1.seen.length + p2.seen.length, 2 * N)
    const diffs = h.mirror.diffs('shop').diffs
    t.equal(diffs[0]!.classification, 'noise', 'the random id is noise once primary pairs show it')
    t.same(
      diffs[0]!.fields.map((f) => f.path),
      ['$.id'],
    )
    t.ok(h.rec.get('comparison shop noise') >= N - 3, 'counted as noise')
    t.equal(h.rec.get('comparison shop noise') + h.rec.get('comparison shop mismatch'), N)

    await request(`${h.url}/random-price`).then((r) => r.body.dump())
    await until(
      'the price comparisons',
      () => s().canaryComparisons === N + 1 && s().pairComparisons === N + 1,
    )
    const latest = h.mirror.diffs('shop').diffs[0]!
    t.equal(latest.classification, 'mismatch')
    t.same(
      latest.fields.map((f) => f.path),
      ['$.price'],
      'the sample names the real change, not the noise',
    )
    t.equal(
      h.rec.get('request shop primary 200'),
      h.mirror.state('shop')!.replayed,
      'replays counted as variant primary',
    )
  },
)

t.test('wired in startTurnout: mirror to the canary and the diffs API on the admin listener', async (t) => {
  const primary = await upstream(t, 'primary', comparingHandler('primary'))
  const canary = await upstream(t, 'canary', comparingHandler('canary'))
  const turnout = await startProxy(t, { routes: [shop(primary, canary, { mirror: { compare: {} } })] })
  const res = await request(`${turnout.url}/json`)
  t.same(await res.body.json(), { id: 1, price: 10 })
  const getDiffs = async () => {
    const r = await request(`${turnout.adminUrl}/api/routes/shop/mirror/diffs`)
    return ((await r.body.json()) as { diffs: Array<Obj & { fields: Obj[] }> }).diffs
  }
  let diffs = await getDiffs()
  for (let i = 0; i < 500 && diffs.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 20))
    diffs = await getDiffs()
  }
  t.same(diffs[0]?.fields, [{ field: 'body', path: '$.price', primary: 10, canary: 12 }])
  t.equal(canary.seen[0]!.headers['x-turnout-mirror'], '1')
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(metrics, /turnout_mirror_requests_total\{route="shop",variant="canary",code="200"\} 1\n/)
  t.match(metrics, /turnout_mirror_request_duration_seconds_count\{route="shop",variant="canary"\} 1\n/)
  t.match(metrics, /turnout_mirror_comparisons_total\{route="shop",result="mismatch"\} 1\n/)
  t.match(metrics, /turnout_mirror_mismatches_total\{route="shop",field="body"\} 1\n/)
  t.match(metrics, /turnout_mirror_dropped_total\{route="shop",reason="in_flight_limit"\} 0\n/)
})

t.test('decodedPair: bodies decoded by their own content-encoding, capped, raw when unknown', async (t) => {
  const text = '{"a":1,"b":[1,2,3]}'
  const cap = (body: Buffer, enc?: string): CapturedResponse => ({
    status: 200,
    headers: enc === undefined ? {} : { 'content-encoding': enc },
    body,
    truncated: false,
    contentType: 'application/json',
  })
  const plain = cap(Buffer.from(text))
  let [a, b] = await decodedPair(plain, plain, 1000)
  t.equal(a, plain, 'identity on both sides: untouched')
  t.equal(b, plain)
  ;[a, b] = await decodedPair(cap(gzipSync(text), 'gzip'), cap(brotliCompressSync(text), 'br'), 1000)
  t.equal(a.body?.toString(), text, 'gzip decoded')
  t.equal(b.body?.toString(), text, 'br decoded')
  ;[a, b] = await decodedPair(cap(deflateSync(text), 'deflate'), cap(deflateRawSync(text), 'Deflate'), 1000)
  t.equal(a.body?.toString(), text, 'zlib deflate decoded')
  t.equal(b.body?.toString(), text, 'raw deflate decoded too')
  ;[a, b] = await decodedPair(cap(Buffer.from(text), 'identity'), cap(gzipSync(text), 'x-gzip'), 1000)
  t.equal(a.body?.toString(), text)
  t.equal(b.body?.toString(), text, 'mixed codings compare the decoded content')
  ;[a, b] = await decodedPair(cap(gzipSync(text), 'gzip'), cap(gzipSync(text), 'gzip'), 5)
  t.same([a.truncated, a.body, b.truncated, b.body], [true, null, true, null], 'past the cap: not compared')
  const zstd = cap(Buffer.from('opaque'), 'zstd')
  ;[a, b] = await decodedPair(zstd, zstd, 1000)
  t.equal(a.body?.toString(), 'opaque', 'unknown coding on both sides: raw bytes compared')
  ;[a, b] = await decodedPair(zstd, cap(gzipSync(text), 'gzip'), 1000)
  t.same([a.truncated, b.truncated], [true, true], 'unknown and different codings: bodies not compared')
  ;[a, b] = await decodedPair(
    cap(Buffer.from('not gzip'), 'gzip'),
    cap(Buffer.from('not gzip'), 'gzip'),
    1000,
  )
  t.equal(a.body?.toString(), 'not gzip', 'a broken stream leaves the raw bytes')
})
