// Dead and misbehaving upstreams: the client always gets an answer (or a cut connection once the
// answer started), never a hang, and the proxy keeps serving.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createServer as createNetServer, type Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { compile } from '../src/config/compile.js'
import { Pools } from '../src/upstream/pools.js'
import { memoryLogger, startProxy } from './helpers/turnout.js'
import { deadUrl, startUpstream } from './helpers/upstream.js'

async function rawUpstream(
  onSocket: (s: Socket) => void,
): Promise<{ url: string; close: () => void; sockets: Socket[] }> {
  const sockets: Socket[] = []
  const server = createNetServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    onSocket(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

t.test('connection refused → 502 upstream_unavailable naming route and variant, one log line', async (t) => {
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    {
      accessLog: { enabled: true },
      routes: [
        {
          name: 'shop',
          primary: { endpoints: [await deadUrl()] },
          canary: { endpoints: [await deadUrl()] },
          split: { canary: 100 },
        },
      ],
    },
    { logger },
  )
  const res = await request(`${turnout.url}/x`)
  t.equal(res.statusCode, 502)
  t.same(await res.body.json(), { error: 'upstream_unavailable', route: 'shop', variant: 'canary' })
  const post = await request(`${turnout.url}/x`, { method: 'POST', body: 'payload' })
  t.equal(post.statusCode, 502, 'a request with a body gets the 502 too')
  await post.body.dump()
  const errors = lines.filter((l) => l.msg === 'upstream error')
  t.ok(errors.length >= 1)
  t.equal(errors[0]!.kind, 'connect')
})

t.test('no response within timeouts.response → 504 upstream_timeout', async (t) => {
  const silent = await rawUpstream(() => {})
  t.teardown(silent.close)
  const turnout = await startProxy(t, {
    routes: [{ name: 'slow', primary: { endpoints: [silent.url] }, timeouts: { response: '300ms' } }],
  })
  const res = await request(`${turnout.url}/`)
  t.equal(res.statusCode, 504)
  t.same(await res.body.json(), { error: 'upstream_timeout', route: 'slow', variant: 'primary' })
})

t.test('garbage response → 502; reset before answer → 502; proxy keeps serving', async (t) => {
  const garbage = await rawUpstream((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')))
  const reset = await rawUpstream((s) => s.once('data', () => s.resetAndDestroy()))
  const good = await startUpstream('good')
  t.teardown(() => {
    garbage.close()
    reset.close()
    return good.close()
  })
  const turnout = await startProxy(t, {
    routes: [
      { name: 'garbage', match: { pathPrefix: '/garbage' }, primary: { endpoints: [garbage.url] } },
      { name: 'reset', match: { pathPrefix: '/reset' }, primary: { endpoints: [reset.url] } },
      { name: 'good', primary: { endpoints: [good.url] } },
    ],
  })
  const g = await request(`${turnout.url}/garbage`)
  t.equal(g.statusCode, 502)
  await g.body.dump()
  const r = await request(`${turnout.url}/reset`)
  t.equal(r.statusCode, 502)
  t.equal(reset.sockets.length, 2, 'a body-less GET that hit a reset was retried once on a fresh connection')
  await r.body.dump()
  const p = await request(`${turnout.url}/reset`, { method: 'POST', body: 'x' })
  t.equal(p.statusCode, 502)
  t.equal(reset.sockets.length, 3, 'a POST is never retried')
  await p.body.dump()
  const ok = await request(`${turnout.url}/fine`)
  t.equal(ok.statusCode, 200, 'other routes are unaffected')
  await ok.body.dump()
})

t.test('reset mid-body cuts the client connection instead of faking a complete answer', async (t) => {
  const midway = await rawUpstream((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial')
      setTimeout(() => s.resetAndDestroy(), 50)
    }),
  )
  t.teardown(midway.close)
  const turnout = await startProxy(t, { routes: [{ name: 'm', primary: { endpoints: [midway.url] } }] })
  const res = await request(`${turnout.url}/`)
  t.equal(res.statusCode, 200)
  await t.rejects(res.body.text(), 'the body errors out')
})

t.test('slow drip beyond timeouts.idle is cut; the client does not hang', async (t) => {
  const drip = await rawUpstream((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n')
    }),
  )
  t.teardown(drip.close)
  const turnout = await startProxy(t, {
    routes: [{ name: 'd', primary: { endpoints: [drip.url] }, timeouts: { idle: '300ms' } }],
  })
  const res = await request(`${turnout.url}/`)
  t.equal(res.statusCode, 200)
  await t.rejects(res.body.text())
})

t.test('a client that goes away cancels the upstream request', async (t) => {
  let upstreamClosed: () => void
  const closed = new Promise<void>((r) => {
    upstreamClosed = r
  })
  const hanging = await startUpstream('hang', (req, res) => {
    res.writeHead(200)
    res.write('start')
    req.socket.on('close', () => upstreamClosed())
  })
  t.teardown(() => hanging.close())
  const turnout = await startProxy(t, { routes: [{ name: 'h', primary: { endpoints: [hanging.url] } }] })
  const ac = new AbortController()
  const res = await request(`${turnout.url}/`, { signal: ac.signal })
  t.equal(res.statusCode, 200)
  ac.abort()
  await res.body.text().catch(() => {})
  await closed
  t.pass('upstream connection closed after the client left')
})

t.test('a bug that throws in the request path answers 500 for that request only', async (t) => {
  const good = await startUpstream('good')
  t.teardown(() => good.close())
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    { routes: [{ name: 'a', primary: { endpoints: [good.url] } }] },
    { logger },
  )
  const pools = new Pools()
  t.teardown(() => pools.close())
  const broken = compile(turnout.config, {
    pools,
    phases: {
      faults: () => ({
        decide() {
          throw new Error('boom')
        },
      }),
    },
  })
  const healthy = turnout.holder.current
  turnout.holder.swap(broken)
  const res = await request(`${turnout.url}/x`)
  t.equal(res.statusCode, 500)
  t.same(await res.body.json(), { error: 'internal_error' })
  t.ok(
    lines.some((l) => l.msg === 'internal error' && String(l.err).includes('boom')),
    'logged with the stack',
  )
  turnout.holder.swap(healthy)
  const ok = await request(`${turnout.url}/x`)
  t.equal(ok.statusCode, 200, 'the process and other requests carry on')
  await ok.body.dump()
})
