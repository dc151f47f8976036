// The process never crashes on input: a seeded storm of malformed, truncated, pipelined and split
// requests (custom and invalid methods, odd targets and versions, duplicate and conflicting framing
// headers, upgrades, CONNECT) over raw sockets, against a route that splits and mirrors. Afterwards
// the proxy still answers a normal request, and the refusals were counted as client errors.
import { connect } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { mulberry32 } from './helpers/random.js'
import { startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

const METHODS = ['GET', 'POST', 'BREW', 'X-CUSTOM', 'FOO_BAR', 'B(EW', 'OPTIONS', 'CONNECT', 'PRI', 'get', '']
const TARGETS = ['/', '*', 'http://x/p', '/a/../b', '/%zz', '', ' / ', '/\x00']
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'HTTX/1.1']
const HEADERS = [
  'Host: a\r\n',
  'Host: b\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: gzip, chunked\r\n',
  'Content-Length: 5\r\n',
  'Content-Length: 3\r\n',
  'Connection: close, host\r\n',
  'Expect: 100-continue\r\n',
  'Upgrade: websocket\r\nConnection: upgrade\r\n',
  'X: \x01\r\n',
  ' folded\r\n',
]
const BODIES = ['hello', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '0\r\n\r\n', 'abc']

t.test('a storm of malformed requests leaves the proxy serving', async (t) => {
  const seed = Number(process.env.CHAOS_SEED ?? 42)
  t.comment(`seed ${seed} (CHAOS_SEED overrides it)`)
  const random = mulberry32(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const upstream = await startUpstream('primary')
  t.teardown(() => upstream.close())
  const turnout = await startProxy(t, {
    limits: { bodyIdleTimeout: '1s', headersTimeout: '2s', requestTimeout: '3s' },
    routes: [
      {
        name: 'r',
        primary: { endpoints: [upstream.url] },
        canary: { endpoints: [upstream.url] },
        split: { canary: 50 },
        mirror: { percent: 50 },
      },
    ],
  })
  const requestBytes = () => {
    let head = `${pick(METHODS)} ${pick(TARGETS)} ${pick(VERSIONS)}\r\n`
    for (let i = Math.floor(random() * 5); i > 0; i--) head += pick(HEADERS)
    return `${head}\r\n${random() < 0.5 ? pick(BODIES) : ''}`
  }
  const port = turnout.proxyAddress.port
  const client = async () => {
    for (let k = 0; k < 20; k++) {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.on('data', () => {})
      let bytes = ''
      for (let i = 1 + Math.floor(random() * 3); i > 0; i--) bytes += requestBytes()
      if (random() < 0.3) bytes = bytes.slice(0, Math.floor(random() * bytes.length))
      const split = Math.floor(random() * bytes.length)
      socket.write(bytes.slice(0, split), 'latin1')
      await new Promise((r) => setTimeout(r, random() * 20))
      if (!socket.destroyed) socket.write(bytes.slice(split), 'latin1')
      await new Promise((r) => setTimeout(r, 30 + random() * 100))
      if (random() < 0.5) socket.destroy()
      else socket.end()
    }
  }
  await Promise.all(Array.from({ length: 20 }, client))
  const res = await request(`${turnout.url}/after`)
  t.equal(res.statusCode, 200, 'a normal request is still served')
  await res.body.dump()
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  const refused = [...metrics.matchAll(/^turnout_client_errors_total\{kind="[a-z_]+"\} (\d+)$/gm)]
  t.ok(refused.reduce((n, m) => n + Number(m[1]), 0) > 100, 'the malformed requests were refused and counted')
  t.notMatch(metrics, /^turnout_observer_errors_total\{[^}]*\} [1-9]/m, 'no observer threw')
})
