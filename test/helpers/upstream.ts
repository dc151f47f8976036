// A tiny real upstream for tests: records every request (method, url, headers, body) and answers
// with a handler the test chooses (default: 200 JSON echo naming the upstream). Also: the demo's
// sample upstreams as a pair, and loopback ports nothing listens on.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import type { Test } from 'tap'
import { type SampleUpstream, startSampleUpstream } from '../../src/demo/upstreams.js'

export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  body: Buffer
  remotePort: number
}

export interface TestUpstream {
  url: string
  port: number
  server: Server
  seen: Seen[]
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

export async function startUpstream(name: string, handler?: Handler): Promise<TestUpstream> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        remotePort: req.socket.remotePort ?? 0,
      })
      if (handler) return handler(req, res, body)
      const text = JSON.stringify({ upstream: name, method: req.method, url: req.url })
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name })
      res.end(text)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    async close() {
      server.closeAllConnections()
      server.close()
    },
  }
}

/** The demo's sample upstreams `primary` and `canary`, closed in the test's teardown. */
export async function startSampleUpstreams(
  t: Test,
): Promise<{ primary: SampleUpstream; canary: SampleUpstream }> {
  const primary = await startSampleUpstream({ name: 'primary' })
  const canary = await startSampleUpstream({ name: 'canary' })
  t.teardown(() => Promise.all([primary.close(), canary.close()]))
  return { primary, canary }
}

/** A loopback port nobody listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createNetServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  s.close()
  await once(s, 'close')
  return port
}

/** An http:// URL on a loopback port nobody listens on. */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}
