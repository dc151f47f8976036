#!/usr/bin/env node
// Bench upstream: a small node:http server, one per process.
//   GET  /small    fixed small body (SMALL_BODY)
//   GET  /64k      65,536-byte body
//   POST /upload   upload sink: reads the body, answers "received <bytes>\n"
//   GET  /__stats  {"name","requests"} (the bench reads it directly, never through a proxy)
//   anything else  the small body
// --delay-ms N delays every answer (the slow canary of the mirror scenario uses 200).
// Usage: node bench/upstream.js --name primary [--port 0] [--delay-ms 0]
// Reports {ready:true, port} over IPC when started by the bench, else prints the port.
import http from 'node:http'
import { parseArgs } from 'node:util'
import { exitWithParent } from './lib/proc.js'
import { BIG_BODY, SMALL_BODY } from './lib/scenarios.js'

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'upstream' },
    port: { type: 'string', default: '0' },
    'delay-ms': { type: 'string', default: '0' },
  },
})
const name = values.name
const delayMs = Number(values['delay-ms'])
let requests = 0

const small = Buffer.from(SMALL_BODY)
const big = BIG_BODY

function send(res, status, body, type = 'text/plain') {
  res.writeHead(status, {
    'content-type': type,
    'content-length': body.length,
    'x-bench-upstream': name,
  })
  res.end(body)
}

function answer(req, res) {
  const url = req.url ?? '/'
  if (url === '/__stats') {
    send(res, 200, Buffer.from(JSON.stringify({ name, requests })), 'application/json')
    return
  }
  requests++
  if (req.method === 'POST' || req.method === 'PUT') {
    let bytes = 0
    req.on('data', (c) => {
      bytes += c.length
    })
    req.on('end', () => later(() => send(res, 200, Buffer.from(`received ${bytes}\n`))))
    req.on('error', () => res.destroy())
    return
  }
  req.resume()
  const body = url.startsWith('/64k') ? big : small
  later(() => send(res, 200, body))
}

function later(fn) {
  if (delayMs > 0) setTimeout(fn, delayMs)
  else fn()
}

const server = http.createServer({ keepAliveTimeout: 120_000, requestTimeout: 0 }, answer)
server.headersTimeout = 60_000
server.maxRequestsPerSocket = 0
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address()
  if (process.send) process.send({ ready: true, port })
  else process.stdout.write(`${name} listening on http://127.0.0.1:${port}\n`)
})

exitWithParent(() => {
  server.closeAllConnections?.()
  process.exit(0)
})
