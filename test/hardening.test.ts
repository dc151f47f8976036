// Issue 11's data-path cases, as raw bytes over sockets: what the client got wrong is refused before
// any variant sees it, odd-but-legal requests are forwarded as sent, 1xx answers are relayed, and an
// upload the upstream stops reading never stalls or poisons the client's connection.
import { once } from 'node:events'
import { createServer as createHttpServer, type RequestListener } from 'node:http'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startLoad, until } from './helpers/load.js'
import { memoryLogger, rawExchange, startProxy, startSampleShop } from './helpers/turnout.js'
import { deadUrl, startUpstream } from './helpers/upstream.js'

async function metricsText(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text()
}

/** A raw upstream: answers each request head with `answer(path)` bytes and records the heads. */
async function rawUpstream(t: Test, answer: (path: string) => string) {
  const heads: string[] = []
  const server = createServer((socket) => {
    let buf = ''
    socket.on('error', () => {})
    socket.on('data', (d) => {
      buf += d.toString('latin1')
      let end = buf.indexOf('\r\n\r\n')
      while (end !== -1) {
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        heads.push(head)
        socket.write(answer(head.split(' ')[1] ?? '/'))
        end = buf.indexOf('\r\n\r\n')
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, heads }
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'

t.test('two Host headers: 400, nothing upstream, a client error and not a variant error', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const res = await rawExchange(turnout.url, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
  t.match(res, /^HTTP\/1.1 400 /)
  t.match(res, /"error":"bad_request"/)
  t.match(res, /more than one Host header/)
  t.equal(primary.seen.length, 0, 'the upstream saw nothing')
  const metrics = await metricsText(turnout.adminUrl)
  t.match(metrics, 'turnout_client_errors_total{kind="bad_request"} 1\n')
  t.notMatch(metrics, /turnout_requests_total\{[^}]*code="(400|502)"/, 'no variant request recorded')
  t.match(metrics, 'turnout_upstream_errors_total{route="a",variant="primary",kind="protocol"} 0\n')
  const upgrade = await rawExchange(
    turnout.url,
    'GET /ws HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  )
  t.match(upgrade, /^HTTP\/1.1 400 /, 'an upgrade request is refused the same way')
  t.equal(primary.seen.length, 0)
})

t.test('a flood of refused requests during a rollout leaves its analysis untouched', async (t) => {
  const { turnout } = await startSampleShop(t, {
    rollout: {
      steps: [10, 50],
      interval: '300ms',
      minRequests: 10,
      failureLimit: 1,
      analysis: [{ metric: 'errorRate', max: '1%' }],
    },
  })
  const controller = turnout.rollouts.get('shop')!
  const load = startLoad(turnout.url, { workers: 2 })
  t.teardown(() => load.stop())
  controller.start()
  // A steady trickle of refused requests for as long as the rollout runs (bounded in count).
  let flooded = 0
  while (controller.phase === 'progressing' && flooded < 400) {
    const burst = Array.from({ length: 4 }, () =>
      rawExchange(turnout.url, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'),
    )
    for (const r of await Promise.all(burst)) if (r.startsWith('HTTP/1.1 400 ')) flooded++
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(await until(() => ['succeeded', 'aborted'].includes(controller.phase), 120_000), 'the rollout ends')
  t.equal(controller.phase, 'succeeded', 'the rollout succeeds')
  await load.stop()
  t.ok(flooded >= 10, `refused requests were sent during the rollout (${flooded})`)
  t.equal(controller.status().failures, 0, 'no failed interval')
  const metrics = await metricsText(turnout.adminUrl)
  t.match(metrics, new RegExp(`turnout_client_errors_total\\{kind="bad_request"\\} ${flooded}\\n`))
})

t.test('transfer codings Turnout does not implement: 501; chunked twice: 400', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const gzip = await rawExchange(
    turnout.url,
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  )
  t.match(gzip, /^HTTP\/1.1 501 /)
  t.match(gzip, /transfer_coding_not_implemented/)
  const twice = await rawExchange(
    turnout.url,
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  )
  t.match(twice, /^HTTP\/1.1 400 /)
  t.equal(primary.seen.length, 0, 'nothing reached the upstream')
  const metrics = await metricsText(turnout.adminUrl)
  t.match(metrics, 'turnout_client_errors_total{kind="not_implemented"} 1\n')
})

t.test('an HTTP/2.0 request line over HTTP/1.1 gets 505', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const res = await rawExchange(turnout.url, 'GET / HTTP/2.0\r\nHost: a\r\n\r\n')
  t.match(res, /^HTTP\/1.1 505 /)
  t.equal(primary.seen.length, 0)
})

t.test('odd but legal targets are forwarded as received', async (t) => {
  const up = await rawUpstream(t, () => OK)
  const turnout = await startProxy(t, {
    routes: [
      { name: 'x', match: { hosts: ['x.test'] }, primary: { endpoints: [up.url] } },
      { name: 'a', primary: { endpoints: [up.url] } },
    ],
  })
  const star = await rawExchange(turnout.url, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(star, /^HTTP\/1.1 200 /)
  t.match(up.heads.at(-1)!, /^OPTIONS \* HTTP\/1.1\r\n/, 'asterisk form upstream')
  const abs = await rawExchange(
    turnout.url,
    'GET http://x.test/p/..\\admin?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  )
  t.match(abs, /^HTTP\/1.1 200 /)
  const head = up.heads.at(-1)!
  t.match(head, /^GET \/p\/\.\.\\admin\?q=1 HTTP\/1.1\r\n/, 'path not normalised')
  t.match(head, /\r\nhost: x\.test\r\n/i, 'Host is the absolute-form authority')
  const dots = await rawExchange(
    turnout.url,
    'GET /a/../b/%2e%2e/c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  )
  t.match(dots, /^HTTP\/1.1 200 /)
  t.match(up.heads.at(-1)!, /^GET \/a\/\.\.\/b\/%2e%2e\/c HTTP\/1.1\r\n/)
})

t.test('a Connection list cannot strip Host or Authorization', async (t) => {
  const up = await rawUpstream(t, () => OK)
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [up.url] } }] })
  await rawExchange(
    turnout.url,
    'GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close, host, authorization, x-drop\r\nAuthorization: Bearer t\r\nX-Drop: 1\r\n\r\n',
  )
  const head = up.heads.at(-1)!
  t.match(head, /\r\nhost: shop\.test/i)
  t.match(head, /\r\nauthorization: Bearer t/i)
  t.notMatch(head, /x-drop/i, 'an ordinary listed header is still removed')
})

t.test('1xx answers: 103 relayed to HTTP/1.1 clients, an unsolicited 100 is not a failure', async (t) => {
  const up = await rawUpstream(t, (path) =>
    path === '/hints'
      ? `HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n${OK}`
      : `HTTP/1.1 100 Continue\r\n\r\n${OK}`,
  )
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [up.url] } }] })
  const hints = await rawExchange(turnout.url, 'GET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(hints, /^HTTP\/1.1 103 Early Hints\r\n/)
  t.match(hints, /Link: <\/app.css>; rel=preload\r\n/i)
  t.match(hints, /\r\n\r\nHTTP\/1.1 200 OK\r\n/, 'then the final answer')
  const old = await rawExchange(turnout.url, 'GET /hints HTTP/1.0\r\nHost: a\r\n\r\n')
  t.match(old, /^HTTP\/1.1 200 /, 'no 1xx for an HTTP/1.0 client')
  const before = up.heads.length
  const cont = await rawExchange(
    turnout.url,
    'GET /continue HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  )
  t.match(cont, /^HTTP\/1.1 200 OK\r\n/)
  t.match(cont, /\r\n\r\nok$/)
  t.equal(up.heads.length - before, 1, 'sent once, not retried')
  const metrics = await metricsText(turnout.adminUrl)
  t.match(metrics, 'turnout_upstream_errors_total{route="a",variant="primary",kind="reset"} 0\n')
})

/** A node:http upstream on a loopback port with `handler` as is (it sees the body as it streams). */
async function httpUpstream(t: Test, handler: RequestListener): Promise<string> {
  const upstream = createHttpServer(handler)
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => {
    upstream.closeAllConnections()
    upstream.close()
  })
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
}

/** Writes `bytes` on a fresh connection and reads until `done(text)` or the deadline. */
async function converse(url: string) {
  const u = new URL(url)
  const socket: Socket = connect(Number(u.port), u.hostname)
  let text = ''
  socket.on('data', (d) => {
    text += d.toString('latin1')
  })
  socket.on('error', () => {})
  await once(socket, 'connect')
  return {
    socket,
    get text() {
      return text
    },
    take(): string {
      const out = text
      text = ''
      return out
    },
  }
}

t.test('an upstream answering before the upload ends leaves the connection usable', async (t) => {
  const url = await httpUpstream(t, (req, res) => {
    if (req.url === '/upload') {
      res.writeHead(401, { 'content-length': '6' })
      res.end('denied')
      return
    }
    req.resume()
    req.on('end', () => res.end('second'))
  })
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [url] } }] })
  const c = await converse(turnout.url)
  const size = 2 * 1024 * 1024
  c.socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`)
  const chunk = Buffer.alloc(64 * 1024, 97)
  for (let sent = 0; sent < size; sent += chunk.length)
    if (!c.socket.write(chunk)) await once(c.socket, 'drain')
  t.ok(await until(() => c.text.endsWith('denied'), 10_000), 'the early answer arrives whole')
  t.match(c.take(), /^HTTP\/1.1 401 /)
  c.socket.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
  t.ok(await until(() => c.text.endsWith('second'), 10_000), 'the next request on the connection is answered')
  t.match(c.take(), /^HTTP\/1.1 200 /)
  c.socket.destroy()
})

t.test(
  'limits.bodyIdleTimeout: a stalled upload gets 408 and its upstream request is cancelled',
  async (t) => {
    let upstreamAborted = false
    const url = await httpUpstream(t, (req) => {
      req.on('close', () => {
        if (!req.complete) upstreamAborted = true
      })
      req.resume()
    })
    const turnout = await startProxy(t, {
      limits: { bodyIdleTimeout: '300ms' },
      routes: [{ name: 'a', primary: { endpoints: [url] } }],
    })
    const c = await converse(turnout.url)
    c.socket.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789')
    t.ok(await until(() => c.text.includes('request_timeout'), 15_000), 'answered')
    t.match(c.text, /^HTTP\/1.1 408 /)
    t.match(c.text, /connection: close/i)
    t.ok(await until(() => upstreamAborted, 10_000), 'the upstream request was cancelled')
    c.socket.destroy()
    const metrics = await metricsText(turnout.adminUrl)
    t.match(metrics, 'turnout_client_errors_total{kind="request_timeout"} 1\n')
    t.notMatch(metrics, /turnout_requests_total\{[^}]*code="408"/, 'not a variant request')
  },
)

t.test('upstream failures are logged with the access log off, rate-limited', async (t) => {
  const { logger, lines } = memoryLogger()
  const dead = await deadUrl()
  const turnout = await startProxy(
    t,
    { accessLog: { enabled: false }, routes: [{ name: 'a', primary: { endpoints: [dead] } }] },
    { logger },
  )
  const answers = await Promise.all(
    Array.from({ length: 60 }, () =>
      request(`${turnout.url}/`).then((r) => r.body.dump().then(() => r.statusCode)),
    ),
  )
  t.ok(
    answers.every((s) => s === 502),
    'every request failed',
  )
  const failures = lines.filter((l) => l.msg === 'upstream error')
  t.ok(failures.length >= 1, 'failures are logged')
  t.ok(failures.length <= 40, `rate-limited (${failures.length} lines for 60 failures)`)
  t.equal(failures[0]!.kind, 'connect')
  const metrics = await metricsText(turnout.adminUrl)
  const suppressed = Number(
    /turnout_log_lines_suppressed_total\{kind="upstream_error"\} (\d+)/.exec(metrics)?.[1],
  )
  t.equal(suppressed + failures.length, 60, 'every failure is either logged or counted as suppressed')
})
