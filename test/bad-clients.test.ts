// A gateway faces the internet: malformed and hostile requests, sent as raw bytes over `net`,
// get a 4xx, reach no upstream and never disturb other connections.
import { connect } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { memoryLogger, rawExchange, startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

const SMUGGLING: Record<string, string> = {
  'Content-Length with Transfer-Encoding':
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
  'two different Content-Lengths':
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'obs-fold header continuation': 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n',
  'bare LF line endings': 'GET / HTTP/1.1\nHost: x\n\n',
  'space before colon': 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello',
  'invalid chunk size':
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
}

t.test('request smuggling shapes get 400 and nothing reaches the upstream', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] },
    { logger },
  )
  for (const [name, bytes] of Object.entries(SMUGGLING)) {
    const res = await rawExchange(turnout.url, bytes)
    t.match(res, /^HTTP\/1.1 400 /, `${name}: 400`)
    t.notMatch(res, /HTTP\/1.1 200/, `${name}: no upstream answer`)
  }
  t.equal(primary.seen.length, 0, 'the upstream saw nothing')
  t.ok(
    lines.filter((l) => l.msg === 'bad client request').length >= Object.keys(SMUGGLING).length,
    'one log line each',
  )
  const ok = await request(`${turnout.url}/`)
  t.equal(ok.statusCode, 200, 'the proxy still serves')
  await ok.body.dump()
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(
    metrics,
    `turnout_client_errors_total{kind="bad_request"} ${Object.keys(SMUGGLING).length}\n`,
    'each is counted',
  )
})

t.test('a header block over the limit gets 431', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { maxHeaderSize: '8KiB' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const res = await rawExchange(
    turnout.url,
    `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`,
  )
  t.match(res, /^HTTP\/1.1 431 /)
  t.equal(primary.seen.length, 0)
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(metrics, 'turnout_client_errors_total{kind="headers_too_large"} 1\n')
})

t.test('a body over limits.maxBodySize gets 413, by Content-Length or while streaming', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { maxBodySize: '1KiB' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const byLength = await request(`${turnout.url}/`, { method: 'POST', body: 'x'.repeat(2000) })
  t.equal(byLength.statusCode, 413)
  await byLength.body.dump()
  t.equal(primary.seen.length, 0, 'nothing sent upstream for a known-large body')

  const chunk = 'x'.repeat(600)
  const chunked = await rawExchange(
    turnout.url,
    `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
  )
  t.match(chunked, /^HTTP\/1.1 413 /, 'chunked upload cut at the limit')
  const small = await request(`${turnout.url}/`, { method: 'POST', body: 'small' })
  t.equal(small.statusCode, 200, 'bodies under the limit pass')
  await small.body.dump()
})

t.test('slow clients are cut off by headersTimeout', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { headersTimeout: '500ms', requestTimeout: '1s', keepAliveTimeout: '300ms' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const u = new URL(turnout.url)
  // Slowloris: send part of a header block and never finish it.
  const slow = await new Promise<string>((resolve) => {
    const s = connect(Number(u.port), u.hostname)
    let out = ''
    s.on('data', (d) => {
      out += d.toString()
    })
    s.on('close', () => resolve(out))
    s.on('error', () => {})
    s.write('GET / HTTP/1.1\r\nHost: x\r\n')
    const drip = setInterval(() => s.writable && s.write('X-A: b\r\n'), 100)
    s.on('close', () => clearInterval(drip))
  })
  t.match(slow, /^HTTP\/1.1 408 /, 'slow header block gets 408 and the connection closes')
})

t.test('idle keep-alive client connections close after keepAliveTimeout', async (t) => {
  const primary = await startUpstream('primary')
  t.teardown(() => primary.close())
  const turnout = await startProxy(t, {
    limits: { keepAliveTimeout: '300ms' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const u = new URL(turnout.url)
  const idleClosed = await new Promise<boolean>((resolve) => {
    const s = connect(Number(u.port), u.hostname)
    let answer = ''
    s.on('data', (d) => {
      answer += d.toString()
    })
    s.on('error', () => {})
    s.on('close', () => resolve(answer.startsWith('HTTP/1.1 200')))
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  })
  t.ok(idleClosed, 'answered, then the idle keep-alive connection is closed by the server')
  t.equal(primary.seen.length, 1)
})
