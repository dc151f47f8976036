#!/usr/bin/env node
// node-http-proxy (http-proxy) target with a keep-alive agent, for comparison.
// Usage: node bench/http-proxy.js --upstream http://127.0.0.1:P [--port 0]
import http from 'node:http'
import { parseArgs } from 'node:util'
import httpProxy from 'http-proxy'
import { exitWithParent } from './lib/proc.js'

const { values } = parseArgs({
  options: {
    upstream: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
})
if (!values.upstream) {
  process.stderr.write('usage: node bench/http-proxy.js --upstream URL [--port N]\n')
  process.exit(2)
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 1024 })
const proxy = httpProxy.createProxyServer({ target: values.upstream, agent })
proxy.on('error', (err, _req, res) => {
  // res is a ServerResponse for web requests (a socket for ws, unused here)
  if (!res || typeof res.writeHead !== 'function') return
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(502, { 'content-type': 'text/plain' })
  res.end(`bad gateway: ${err.message}\n`)
})

const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) =>
  proxy.web(req, res),
)
server.headersTimeout = 60_000
server.maxRequestsPerSocket = 0
server.on('clientError', (_err, socket) => socket.destroy())
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address()
  if (process.send) process.send({ ready: true, port })
  else process.stdout.write(`http-proxy listening on http://${values.host}:${port}\n`)
})

exitWithParent(() => {
  server.closeAllConnections?.()
  process.exit(0)
})
