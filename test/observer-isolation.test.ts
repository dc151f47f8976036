// A request observer that throws (in any hook, first or second in the list) must not break the
// request, the other observers or the process: over real sockets, with the handler as app.ts builds
// it, plus the reporter that counts and (rate-limited) logs what was thrown.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { compile } from '../src/config/compile.js'
import { parseConfig } from '../src/config/load.js'
import { combineObservers } from '../src/core/observers.js'
import type { Observer, ObserverHook, RequestContext } from '../src/core/pipeline.js'
import { createRequestHandler } from '../src/proxy/handle.js'
import { TableHolder } from '../src/routing/holder.js'
import { TurnoutMetrics } from '../src/telemetry/metrics.js'
import { observerErrorReporter } from '../src/telemetry/observer-errors.js'
import { Pools } from '../src/upstream/pools.js'
import { memoryLogger } from './helpers/turnout.js'
import { deadUrl, startUpstream } from './helpers/upstream.js'

const HOOKS: ObserverHook[] = ['requestStart', 'upstreamAttempt', 'upstreamError', 'requestEnd']

/** Throws in every hook. */
const throwing: Observer = {
  name: 'broken',
  requestStart() {
    throw new Error('boom in requestStart')
  },
  upstreamAttempt() {
    throw new Error('boom in upstreamAttempt')
  },
  upstreamError() {
    throw new Error('boom in upstreamError')
  },
  requestEnd() {
    throw new Error('boom in requestEnd')
  },
}

/** Records every event it sees, by hook and path. */
function recording(): Observer & { events: string[] } {
  const events: string[] = []
  const ev = (hook: string) => (ctx: RequestContext) => events.push(`${hook} ${ctx.req.url}`)
  return {
    name: 'recording',
    events,
    requestStart: ev('requestStart'),
    upstreamAttempt: ev('upstreamAttempt'),
    upstreamError: ev('upstreamError'),
    requestEnd: ev('requestEnd'),
  }
}

async function until(what: string, fn: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function startHarness(t: Test, observers: (rec: Observer) => Observer[]) {
  const upstream = await startUpstream('up', (req, res) => {
    if (req.url === '/hang') return // never answers: the client gives up
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('answer')
  })
  const config = parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      routes: [
        { name: 'dead', match: { pathPrefix: '/dead' }, primary: { endpoints: [await deadUrl()] } },
        { name: 'up', primary: { endpoints: [upstream.url] } },
      ],
    }),
    'test',
  )
  const pools = new Pools()
  const holder = new TableHolder(compile(config, { pools }))
  const rec = recording()
  const errors: Array<{ observer: string; hook: ObserverHook; message: string }> = []
  const observer = combineObservers(observers(rec), (name, hook, err) =>
    errors.push({ observer: name, hook, message: (err as Error).message }),
  )
  const server: Server = createServer(
    createRequestHandler({
      holder,
      observer,
      trustForwarded: false,
      maxBodySize: null,
      bodyIdleTimeout: 30_000,
      draining: () => false,
      refused: () => {},
    }),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    await pools.destroy()
    await upstream.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, rec, errors, upstream }
}

for (const position of ['first', 'second'] as const) {
  t.test(`a throwing observer in ${position} position`, async (t) => {
    const h = await startHarness(t, (rec) => (position === 'first' ? [throwing, rec] : [rec, throwing]))

    // a normal exchange: the client gets the upstream's answer
    const ok = await request(`${h.url}/ok`)
    t.equal(ok.statusCode, 200)
    t.equal(await ok.body.text(), 'answer')
    await until('requestEnd of /ok', () => h.rec.events.includes('requestEnd /ok'))
    t.same(
      h.rec.events.filter((e) => e.endsWith(' /ok')),
      ['requestStart /ok', 'upstreamAttempt /ok', 'requestEnd /ok'],
      'the other observer saw every event',
    )

    // an upstream failure: Turnout's own 502, upstreamError reaches the other observer
    const dead = await request(`${h.url}/dead`)
    t.equal(dead.statusCode, 502)
    t.same(await dead.body.json(), { error: 'upstream_unavailable', route: 'dead', variant: 'primary' })
    await until('requestEnd of /dead', () => h.rec.events.includes('requestEnd /dead'))
    t.ok(h.rec.events.includes('upstreamError /dead'))

    // the client goes away: requestEnd runs in the response's 'close' listener (outside any guard)
    const ac = new AbortController()
    const hang = request(`${h.url}/hang`, { signal: ac.signal })
    await until('the upstream saw /hang', () => h.upstream.seen.some((s) => s.url === '/hang'))
    ac.abort()
    await t.rejects(hang)
    await until('requestEnd of /hang', () => h.rec.events.includes('requestEnd /hang'))

    // every throw was reported, named, per hook; the process is still serving
    for (const hook of HOOKS) {
      t.ok(
        h.errors.some((e) => e.observer === 'broken' && e.hook === hook && e.message === `boom in ${hook}`),
        `${hook} throw reported`,
      )
    }
    t.notOk(
      h.errors.some((e) => e.observer !== 'broken'),
      'only the broken observer is blamed',
    )
    const again = await request(`${h.url}/again`)
    t.equal(again.statusCode, 200)
    t.equal(await again.body.text(), 'answer')
  })
}

t.test('a single observer is isolated too, and a throwing error sink changes nothing', async (t) => {
  const observer = combineObservers([throwing], () => {
    throw new Error('sink down')
  })
  const ctx = {} as RequestContext
  t.doesNotThrow(() => observer.requestStart(ctx))
  t.doesNotThrow(() => observer.upstreamAttempt(ctx, 1))
  t.doesNotThrow(() => observer.upstreamError(ctx, 'reset', new Error('x')))
  t.doesNotThrow(() => observer.requestEnd(ctx))
})

t.test('reporter: every error counted per observer, log lines rate-limited', async (t) => {
  const metrics = new TurnoutMetrics({ table: () => ({ routes: [] }), processMetrics: false })
  const { logger, lines } = memoryLogger()
  const report = observerErrorReporter(logger, metrics)
  for (let i = 0; i < 500; i++) report('tracing', 'requestEnd', new Error(`storm ${i}`))
  report('access_log', 'requestStart', new Error('other'))
  const text = await metrics.text()
  t.match(text, /^turnout_observer_errors_total\{observer="tracing"\} 500$/m)
  t.match(text, /^turnout_observer_errors_total\{observer="access_log"\} 1$/m)
  const logged = lines.filter((l) => String(l.msg).startsWith('request observer threw'))
  t.equal(logged.length, 1, 'a storm of 501 errors logs one line per interval')
  t.equal(logged[0]!.observer, 'tracing')
  t.equal(logged[0]!.hook, 'requestEnd')
  t.match(String(logged[0]!.err), /storm 0/)
  t.equal(logged[0]!.level, 50, 'logged at error level')

  // after the interval, the next line says how many were not logged
  const { logger: l2, lines: lines2 } = memoryLogger()
  const fast = observerErrorReporter(l2, metrics, 0)
  fast('rollout', 'requestEnd', 'not an Error')
  t.equal(lines2.length, 1)
  t.equal(lines2[0]!.err, 'not an Error')
  t.equal(lines2[0]!.unlogged, 0)
})
