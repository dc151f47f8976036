// A tiny real upstream for tests: records every request (method, url, headers, body) and answers
// with a handler the test chooses (default: 200 JSON echo naming the upstream).
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

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
