// Forwarding rules over real sockets: headers both ways, status codes, bodies, the 404 path.

import t from 'tap'
import { request } from 'undici'
import { rawExchange, startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

t.test('request headers: hop-by-hop removed, forwarding headers set, host kept', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'shop', primary: { endpoints: [primary.url] } }] })
  const res = await rawExchange(
    turnout.url,
    'GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: shop.example.com\r\nConnection: keep-alive, x-drop-me\r\n' +
      'X-Drop-Me: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\n' +
      'X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n' +
      'Via: 1.0 edge\r\nX-Turnout-Variant: canary\r\nX-Custom: kept\r\nConnection: close\r\n\r\n',
  )
  t.match(res, /^HTTP\/1.1 200/)
  const seen = primary.seen[0]!
  t.equal(seen.url, '/a/b?x=1&y=%20', 'path and query unchanged')
  t.equal(seen.headers.host, 'shop.example.com', 'host preserved')
  for (const h of ['x-drop-me', 'keep-alive', 'te', 'proxy-authorization'])
    t.notOk(seen.headers[h], `${h} removed`)
  t.equal(seen.headers['x-custom'], 'kept')
  t.equal(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1', 'client address appended')
  t.equal(seen.headers['x-forwarded-proto'], 'http', 'proto is what Turnout saw')
  t.equal(seen.headers['x-forwarded-host'], 'shop.example.com', 'host is what Turnout saw')
  t.equal(seen.headers.via, '1.0 edge, 1.1 turnout')
  t.equal(seen.headers['x-turnout-variant'], 'primary', 'a client cannot choose the variant header')
})

t.test('trustForwardedHeaders keeps the client forwarding headers', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    trustForwardedHeaders: true,
    routes: [{ name: 'shop', primary: { endpoints: [primary.url] } }],
  })
  await request(`${turnout.url}/`, {
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'front.example', host: 'inner' },
  }).then((r) => r.body.dump())
  t.equal(primary.seen[0]!.headers['x-forwarded-proto'], 'https')
  t.equal(primary.seen[0]!.headers['x-forwarded-host'], 'front.example')
})

t.test('response: hop-by-hop removed, via appended, variant exposed, repeated set-cookie kept', async (t) => {
  const primary = await startUpstream('primary', (_req, res) => {
    res.writeHead(201, 'Made', [
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Connection',
      'x-secret',
      'X-Secret',
      'hidden',
      'Keep-Alive',
      'timeout=5',
      'Via',
      '1.1 app',
      'X-Turnout-Variant',
      'spoofed',
      'Content-Type',
      'text/plain',
    ])
    res.end('made')
  })
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'shop', primary: { endpoints: [primary.url] } }] })
  const res = await request(`${turnout.url}/x`)
  t.equal(res.statusCode, 201)
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.notOk(res.headers['x-secret'])
  t.equal(res.headers.via, '1.1 app, 1.1 turnout')
  t.equal(res.headers['x-turnout-variant'], 'primary')
  t.equal(await res.body.text(), 'made')
})

t.test('exposeVariant: false hides the variant from clients', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    routes: [{ name: 'shop', exposeVariant: false, primary: { endpoints: [primary.url] } }],
  })
  const res = await request(`${turnout.url}/`)
  await res.body.dump()
  t.notOk(res.headers['x-turnout-variant'])
  t.equal(primary.seen[0]!.headers['x-turnout-variant'], 'primary', 'the upstream is still told')
})

t.test('HEAD, 204, 304, chunked and content-length answers pass through unchanged', async (t) => {
  const primary = await startUpstream('primary', (req, res) => {
    if (req.url === '/204') return res.writeHead(204).end()
    if (req.url === '/304') return res.writeHead(304, { etag: '"v1"' }).end()
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('hello ')
      setTimeout(() => res.end('world'), 20)
      return
    }
    res.writeHead(200, { 'content-length': '5', 'content-type': 'text/plain' })
    res.end(req.method === 'HEAD' ? undefined : 'fixed')
  })
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'shop', primary: { endpoints: [primary.url] } }] })

  const head = await request(`${turnout.url}/len`, { method: 'HEAD' })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['content-length'], '5', 'HEAD keeps the length')
  t.equal(await head.body.text(), '')

  const r204 = await request(`${turnout.url}/204`)
  t.equal(r204.statusCode, 204)
  t.equal(await r204.body.text(), '')

  const r304 = await request(`${turnout.url}/304`, { headers: { 'if-none-match': '"v1"' } })
  t.equal(r304.statusCode, 304)
  t.equal(r304.headers.etag, '"v1"')
  await r304.body.dump()

  const chunked = await rawExchange(
    turnout.url,
    'GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  )
  t.match(chunked, /transfer-encoding: chunked/i, 'chunked stays chunked')
  t.match(chunked, /hello /)
  t.match(chunked, /world/)

  const len = await request(`${turnout.url}/len`)
  t.equal(len.headers['content-length'], '5')
  t.equal(await len.body.text(), 'fixed')
})

t.test('request bodies stream through: content-length, chunked, Expect: 100-continue', async (t) => {
  const primary = await startUpstream('primary', (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`got ${body.length}`)
  })
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'shop', primary: { endpoints: [primary.url] } }] })

  const fixed = await request(`${turnout.url}/up`, { method: 'POST', body: 'x'.repeat(1000) })
  t.equal(await fixed.body.text(), 'got 1000')
  t.equal(primary.seen[0]!.headers['content-length'], '1000')

  const chunked = await rawExchange(
    turnout.url,
    'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  )
  t.match(chunked, /got 11/)
  t.equal(primary.seen[1]!.body.toString(), 'hello world')

  const expect = await new Promise<string>((resolve, reject) => {
    import('node:net').then(({ connect }) => {
      const u = new URL(turnout.url)
      const s = connect(Number(u.port), u.hostname)
      let out = ''
      s.on('data', (d) => {
        out += d.toString()
        if (out.includes('100 Continue') && !out.includes('got')) s.write('abc')
        if (out.includes('got 3')) s.end()
      })
      s.on('end', () => resolve(out))
      s.on('error', reject)
      s.write('PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n')
    }, reject)
  })
  t.match(expect, /HTTP\/1.1 100 Continue/)
  t.match(expect, /HTTP\/1.1 200 OK[\s\S]*got 3/)
})

t.test('no matching route is a local 404 naming host and path', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    routes: [{ name: 'api', match: { pathPrefix: '/api' }, primary: { endpoints: [primary.url] } }],
  })
  const res = await request(`${turnout.url}/apix`, { headers: { host: 'Shop.Example:8080' } })
  t.equal(res.statusCode, 404)
  t.same(await res.body.json(), { error: 'no_route', host: 'shop.example', path: '/apix' })
  t.equal(primary.seen.length, 0)
})

t.test('endpoint URLs with a base path prefix the request path', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    routes: [{ name: 'a', primary: { endpoints: [`${primary.url}/base/`] } }],
  })
  await (await request(`${turnout.url}/x?q=1`)).body.dump()
  t.equal(primary.seen[0]!.url, '/base/x?q=1')
})

t.test('endpoints within a variant are balanced round robin', async (t) => {
  const a = await startUpstream('a')
  const b = await startUpstream('b')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [a.url, b.url] } }] })
  for (let i = 0; i < 10; i++) await (await request(`${turnout.url}/`)).body.dump()
  t.equal(a.seen.length, 5)
  t.equal(b.seen.length, 5)
})
