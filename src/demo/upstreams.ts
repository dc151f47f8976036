// Small built-in sample upstreams for `turnout demo` and the tests: each answers with its name,
// the method and path, and a few JSON endpoints. `failRate` makes a share of answers 500s and
// `delayMs` slows every answer (the rollout demo's bad canary).
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SampleUpstreamOptions {
  name: string
  host?: string
  port?: number
  /** 0..1: share of requests answered with 500. Mutable at runtime. */
  failRate?: number
  delayMs?: number
}

export interface SampleUpstream {
  readonly name: string
  readonly url: string
  readonly server: Server
  failRate: number
  delayMs: number
  close(): Promise<void>
}

export async function startSampleUpstream(opts: SampleUpstreamOptions): Promise<SampleUpstream> {
  const state = { failRate: opts.failRate ?? 0, delayMs: opts.delayMs ?? 0 }
  let counter = 0
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sample')
    const answer = () => {
      if (state.failRate > 0 && Math.random() < state.failRate) {
        return json(500, { service: opts.name, error: 'injected failure' })
      }
      if (url.pathname === '/api/time')
        return json(200, { service: opts.name, now: new Date().toISOString() })
      if (url.pathname === '/api/items') {
        return json(200, {
          service: opts.name,
          items: [
            { id: 1, name: 'tea', price: 3 },
            { id: 2, name: 'cake', price: 4 },
          ],
        })
      }
      if (url.pathname.startsWith('/status/')) {
        const code = Number(url.pathname.slice(8))
        return json(code >= 200 && code <= 599 ? code : 400, { service: opts.name, status: code })
      }
      if (url.pathname === '/health') return json(200, { service: opts.name, status: 'ok' })
      return json(200, {
        service: opts.name,
        method: req.method,
        path: url.pathname,
        query: url.search,
        requestId: ++counter,
      })
    }
    const json = (status: number, body: unknown) => {
      const text = `${JSON.stringify(body)}\n`
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'x-service': opts.name,
      })
      res.end(req.method === 'HEAD' ? undefined : text)
    }
    req.resume()
    req.on('end', () => {
      const ms = Number(url.searchParams.get('delay') ?? state.delayMs)
      if (ms > 0) setTimeout(answer, ms)
      else answer()
    })
  })
  server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1')
  await once(server, 'listening')
  const addr = server.address() as AddressInfo
  return {
    name: opts.name,
    url: `http://${addr.address}:${addr.port}`,
    server,
    get failRate() {
      return state.failRate
    },
    set failRate(v: number) {
      state.failRate = v
    },
    get delayMs() {
      return state.delayMs
    },
    set delayMs(v: number) {
      state.delayMs = v
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}
