// Upgrades through the proxy: WebSocket echo, other upgrade protocols, refusals and dead upstreams.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { rawExchange, startProxy } from './helpers/turnout.js'

async function wsUpstream(name: string) {
  const server = createServer((_req, res) => res.writeHead(426).end('upgrade required'))
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => ws.send(`${name}:${req.headers['x-turnout-variant']}:${data.toString()}`))
  })
  server.on('upgrade', (req, socket, head) => {
    if (req.headers.upgrade === 'websocket') {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    } else if (req.headers.upgrade === 'echo/1') {
      // A non-websocket protocol: answer 101 and echo raw bytes.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n')
      if (head.length > 0) socket.write(head)
      socket.on('data', (d) => socket.write(d))
    } else if (req.headers.upgrade === 'refuse/1') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nno way')
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.closeAllConnections()
      server.close()
    },
  }
}

t.test('WebSocket echo through the proxy, to the variant the split picks', async (t) => {
  const primary = await wsUpstream('primary')
  const canary = await wsUpstream('canary')
  t.teardown(() => {
    primary.close()
    canary.close()
  })
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'ws',
        primary: { endpoints: [primary.url] },
        canary: { endpoints: [canary.url] },
        overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
      },
    ],
  })
  const wsUrl = turnout.url.replace('http', 'ws')
  for (const [headers, expected] of [
    [{}, 'primary:primary:hello'],
    [{ 'x-canary': 'always' }, 'canary:canary:hello'],
  ] as const) {
    const ws = new WebSocket(`${wsUrl}/chat`, { headers })
    const upgrade = once(ws, 'upgrade')
    await once(ws, 'open')
    const [res] = (await upgrade) as [import('node:http').IncomingMessage]
    t.equal(res.headers['x-turnout-variant'], expected.split(':')[0])
    ws.send('hello')
    const [msg] = await once(ws, 'message')
    t.equal(String(msg), expected)
    ws.close()
    await once(ws, 'close')
  }
})

t.test('non-websocket upgrades are tunnelled; refusals relayed; dead upstream gets 502', async (t) => {
  const up = await wsUpstream('primary')
  t.teardown(up.close)
  const turnout = await startProxy(t, { routes: [{ name: 'u', primary: { endpoints: [up.url] } }] })
  const echo = await rawExchange(
    turnout.url,
    'GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\nping-after-head',
    1000,
  )
  t.match(echo, /^HTTP\/1.1 101 /)
  t.match(echo, /upgrade: echo\/1/i)
  t.match(echo, /ping-after-head/, 'bytes sent with the request head reach the upstream and echo back')

  const refused = await rawExchange(
    turnout.url,
    'GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: refuse/1\r\n\r\n',
  )
  t.match(refused, /^HTTP\/1.1 403 /)
  t.match(refused, /no way$/)

  const dead = await startProxy(t, {
    routes: [{ name: 'd', primary: { endpoints: ['http://127.0.0.1:1'] } }],
  })
  const res = await rawExchange(
    dead.url,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  )
  t.match(res, /^HTTP\/1.1 502 /)
  t.match(res, /upstream_unavailable/)
})

t.test('shutdown cuts open tunnels after the drain period', async (t) => {
  const up = await wsUpstream('primary')
  t.teardown(up.close)
  const turnout = await startProxy(t, {
    shutdown: { drainTimeout: '200ms' },
    routes: [{ name: 'u', primary: { endpoints: [up.url] } }],
  })
  const ws = new WebSocket(`${turnout.url.replace('http', 'ws')}/chat`)
  await once(ws, 'open')
  const closed = once(ws, 'close')
  await turnout.close()
  await closed
  t.pass('the open WebSocket was closed by shutdown')
})
