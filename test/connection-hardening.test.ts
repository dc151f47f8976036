// Connection-level answers over raw sockets: Turnout's own error answers never land inside another
// answer and keep request order; CONNECT, other HTTP versions and too many connections get plain
// answers instead of a silent close.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { rawExchange, startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

/** A raw client connection: write when you like, read everything the server sent. */
function rawClient(url: string) {
  const u = new URL(url)
  const socket: Socket = connect(Number(u.port), u.hostname)
  let out = ''
  const waiters: Array<{ re: RegExp; resolve: () => void }> = []
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => {
    out += d
    for (const w of [...waiters]) if (w.re.test(out)) w.resolve()
  })
  socket.on('error', () => {})
  const closed = once(socket, 'close').then(() => out)
  return {
    socket,
    get out() {
      return out
    },
    closed,
    /** Resolves once the output matches (rejects after a generous deadline). */
    waitFor(re: RegExp, ms = 10_000): Promise<void> {
      if (re.test(out)) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(out)}`)), ms)
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        })
      })
    },
  }
}

/** An upstream that streams a chunked answer in parts, `gapMs` apart, without waiting for the body. */
async function streamingUpstream(parts: string[], gapMs: number): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    let i = 0
    const next = () => {
      if (res.destroyed) return
      if (i === parts.length) return res.end()
      res.write(parts[i++])
      setTimeout(next, gapMs)
    }
    next()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const BAD = 'GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'

t.test('a bad pipelined request sent while a chunked answer streams gets its 400 after it', async (t) => {
  const up = await streamingUpstream(['part-1;', 'part-2;', 'part-3;'], 150)
  t.teardown(() => {
    up.server.closeAllConnections()
    up.server.close()
  })
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [up.url] } }] })
  const c = rawClient(turnout.url)
  c.socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  await c.waitFor(/part-1;/)
  c.socket.write(BAD)
  const out = await c.closed
  const end = out.indexOf('part-3;\r\n0\r\n\r\n')
  t.ok(end > 0, 'the streamed answer completed with its last chunk')
  const bad = out.indexOf('HTTP/1.1 400 ')
  t.ok(bad > end, 'the 400 comes after the whole answer')
  t.equal(out.split('HTTP/1.1 ').length, 3, 'two answers, nothing else')
  t.match(out.slice(bad), /\{"error":"bad_request"\}$/, 'the 400 is the last thing sent')
})

t.test('a good and a bad request in one write: the good one is answered first, then 400', async (t) => {
  const primary = await startUpstream('primary', (_req, res) => {
    setTimeout(() => res.end('good answer'), 200)
  })
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const out = await rawExchange(turnout.url, `GET /good HTTP/1.1\r\nHost: x\r\n\r\n${BAD}`)
  t.match(out, /^HTTP\/1.1 200 /, 'the good request is answered first')
  const good = out.indexOf('good answer')
  t.ok(good > 0, 'with its body')
  t.ok(out.indexOf('HTTP/1.1 400 ') > good, 'then the 400')
  t.equal(primary.seen.length, 1, 'only the good request reached the upstream')
})

t.test('a stalled upload whose answer already streams is cut, with no 408 inside the answer', async (t) => {
  const up = await streamingUpstream(
    Array.from({ length: 40 }, (_, i) => `chunk-${i};`),
    100,
  )
  t.teardown(() => {
    up.server.closeAllConnections()
    up.server.close()
  })
  const turnout = await startProxy(t, {
    limits: { headersTimeout: '500ms', requestTimeout: '1s' },
    routes: [{ name: 'a', primary: { endpoints: [up.url] } }],
  })
  const c = rawClient(turnout.url)
  c.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-a-little')
  await c.waitFor(/chunk-0;/)
  const out = await c.closed
  t.notMatch(out, /HTTP\/1.1 408/, 'no 408 written into the streaming answer')
  t.equal(out.split('HTTP/1.1 ').length, 2, 'one answer only')
  t.notMatch(out, /\r\n0\r\n\r\n$/, 'the cut answer is not made to look complete')
})

t.test('a stalled upload whose answer has not started gets the 408', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { headersTimeout: '500ms', requestTimeout: '1s' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const out = await rawExchange(
    turnout.url,
    'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-a-little',
  )
  t.match(out, /^HTTP\/1.1 408 /)
  t.match(out, /\{"error":"request_timeout"\}$/)
})

t.test('CONNECT gets 405 with allow; other HTTP versions get 505', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const connectOut = await rawExchange(
    turnout.url,
    'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
  )
  t.match(connectOut, /^HTTP\/1.1 405 /, 'CONNECT: 405')
  t.match(connectOut, /\r\nallow: GET, HEAD, POST/i, 'with allow')
  t.match(connectOut, /\{"error":"method_not_allowed"\}$/, 'and a JSON error')

  const h2line = await rawExchange(turnout.url, 'GET / HTTP/2.0\r\nHost: x\r\n\r\n')
  t.match(h2line, /^HTTP\/1.1 505 /, 'GET / HTTP/2.0: 505')
  t.match(h2line, /\{"error":"http_version_not_supported"[,}]/)
  const preface = await rawExchange(turnout.url, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
  t.match(preface, /^HTTP\/1.1 505 /, 'the HTTP/2 preface: 505')
  const upgrade = await rawExchange(
    turnout.url,
    'GET / HTTP/2.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  )
  t.match(upgrade, /^HTTP\/1.1 505 /, 'an upgrade on HTTP/2.0: 505')
  t.equal(primary.seen.length, 0, 'nothing reached the upstream')

  const pipelined = await rawExchange(
    turnout.url,
    'GET /first HTTP/1.1\r\nHost: x\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n',
  )
  t.match(
    pipelined,
    /^HTTP\/1.1 200 [\s\S]*HTTP\/1.1 405 /,
    'a pipelined CONNECT is answered after the request before it',
  )

  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(metrics, 'turnout_client_errors_total{kind="method_not_allowed"} 2\n')
  t.match(metrics, 'turnout_client_errors_total{kind="http_version_not_supported"} 3\n')
})

t.test('past limits.maxConnections a new connection gets 503, and is served once one closes', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { maxConnections: 2 },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const held = [rawClient(turnout.url), rawClient(turnout.url)]
  for (const c of held) {
    c.socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n')
    await c.waitFor(/"upstream":"primary"/)
  }
  const refused = await rawExchange(turnout.url, 'GET /third HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(refused, /^HTTP\/1.1 503 /, 'the third connection gets 503')
  t.match(refused, /\r\nretry-after: 1\r\n/i)
  t.match(refused, /\r\nconnection: close\r\n/i)
  t.match(refused, /\{"error":"overloaded"\}$/)

  held[0]!.socket.end()
  await held[0]!.closed
  // The server sees the close a moment later: retry until served (bounded).
  let served = ''
  for (let i = 0; i < 50 && !served.startsWith('HTTP/1.1 200'); i++) {
    served = await rawExchange(turnout.url, 'GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    if (!served.startsWith('HTTP/1.1 200')) await new Promise((r) => setTimeout(r, 100))
  }
  t.match(served, /^HTTP\/1.1 200 /, 'a new connection is served once one closed')
  held[1]!.socket.destroy()
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(metrics, /turnout_connections_rejected_total [1-9]/, 'refusals are counted')
})
