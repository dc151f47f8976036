#!/usr/bin/env node
// undici-min: the smallest reasonable Node reverse proxy, used as the reference row of the bench.
// node:http server + undici Pool.dispatch with a handler that writes straight into the ServerResponse:
// hop-by-hop headers dropped both ways, backpressure (write() === false -> pause, 'drain' -> resume),
// client close -> upstream request aborted.
// --mirror URL fires a copy of every GET/HEAD at a second upstream and discards the answer
// (at most --mirror-max-inflight copies in flight; extra copies are dropped, like a real mirror would).
// Usage: node bench/undici-min.js --upstream http://127.0.0.1:P [--mirror URL] [--port 0]
import http from 'node:http'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { exitWithParent } from './lib/proc.js'

const { values } = parseArgs({
  options: {
    upstream: { type: 'string' },
    mirror: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'mirror-max-inflight': { type: 'string', default: '64' },
    'upstream-connections': { type: 'string' },
  },
})
if (!values.upstream) {
  process.stderr.write('usage: node bench/undici-min.js --upstream URL [--mirror URL] [--port N]\n')
  process.exit(2)
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

const poolOpts = {
  connections: values['upstream-connections'] ? Number(values['upstream-connections']) : null,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
}
const pool = new Pool(values.upstream, poolOpts)
const mirrorPool = values.mirror
  ? new Pool(values.mirror, { ...poolOpts, headersTimeout: 5000, bodyTimeout: 5000 })
  : null
const mirrorMax = Number(values['mirror-max-inflight'])
let mirrorInFlight = 0
let mirrorDropped = 0

/** Copy headers minus hop-by-hop ones (and any named in Connection). */
function forwardHeaders(src) {
  const connection = src.connection
  const extra = typeof connection === 'string' ? connection.toLowerCase().split(/\s*,\s*/) : []
  const out = {}
  for (const key in src) {
    if (HOP_BY_HOP.has(key) || (extra.length > 0 && extra.includes(key))) continue
    out[key] = src[key]
  }
  return out
}

function badGateway(res, err) {
  if (res.headersSent) {
    res.destroy(err)
    return
  }
  res.writeHead(502, { 'content-type': 'text/plain' })
  res.end(`bad gateway: ${err.message}\n`)
}

function proxy(req, res) {
  const headers = forwardHeaders(req.headers)
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  let controller = null
  let clientGone = false
  let done = false

  res.on('close', () => {
    if (done || res.writableFinished) return
    clientGone = true
    controller?.abort(new Error('client closed the connection'))
  })

  pool.dispatch(
    { path: req.url, method: req.method, headers, body: hasBody ? req : null },
    {
      onRequestStart(c) {
        controller = c
        if (clientGone) c.abort(new Error('client closed the connection'))
      },
      onResponseStart(_c, statusCode, resHeaders, statusMessage) {
        if (statusCode < 200) return // 1xx informational: nothing to forward in this minimal proxy
        res.writeHead(statusCode, statusMessage, forwardHeaders(resHeaders))
      },
      onResponseData(c, chunk) {
        if (res.write(chunk) === false) {
          c.pause()
          res.once('drain', () => c.resume())
        }
      },
      onResponseEnd() {
        done = true
        res.end()
      },
      onResponseError(_c, err) {
        done = true
        if (clientGone) return
        badGateway(res, err)
      },
    },
  )

  if (mirrorPool && (req.method === 'GET' || req.method === 'HEAD')) mirror(req.url, req.method, headers)
}

const discard = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {
    mirrorInFlight--
  },
  onResponseError() {
    mirrorInFlight--
  },
}

function mirror(path, method, headers) {
  if (mirrorInFlight >= mirrorMax) {
    mirrorDropped++
    return
  }
  mirrorInFlight++
  mirrorPool.dispatch({ path, method, headers }, discard)
}

const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, proxy)
server.headersTimeout = 60_000
server.maxRequestsPerSocket = 0
server.on('clientError', (_err, socket) => socket.destroy())
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address()
  if (process.send) process.send({ ready: true, port })
  else process.stdout.write(`undici-min listening on http://${values.host}:${port}\n`)
})

exitWithParent(() => {
  if (mirrorPool && mirrorDropped > 0)
    process.stderr.write(`undici-min: ${mirrorDropped} mirror copies dropped\n`)
  server.closeAllConnections?.()
  process.exit(0)
})
