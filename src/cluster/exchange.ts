// Runs one HTTP exchange against an http.Server without a socket: a pair of in-memory streams is
// handed to the server as a connection ('connection' accepts any Duplex) and to an http.request as
// its connection (`createConnection`). The leader worker answers forwarded admin API calls this way,
// through the very same AdminServer code (auth, routing, body limits, errors) as a listener would.
import { request, type Server } from 'node:http'
import { Duplex } from 'node:stream'
import type { ApiAnswer, ApiRequest } from './messages.js'

/** Two connected in-memory streams: what is written to one is read from the other. */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = []
  const side = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        other().push(chunk)
        callback()
      },
      final(callback) {
        other().push(null)
        callback()
      },
    })
  sides.push(
    side(() => sides[1]!),
    side(() => sides[0]!),
  )
  return [sides[0]!, sides[1]!]
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date'])

export function exchange(server: Server, req: ApiRequest, timeoutMs = 30_000): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const [client, serverSide] = duplexPair()
    server.emit('connection', serverSide)
    const body = Buffer.from(req.body)
    const outgoing = request(
      {
        method: req.method,
        path: req.url,
        headers: { ...req.headers, connection: 'close', 'content-length': String(body.length) },
        createConnection: () => client,
      },
      (res) => {
        clearTimeout(timer)
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const headers: Record<string, string | string[]> = {}
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v
          }
          resolve({ status: res.statusCode ?? 500, headers, body: Buffer.concat(chunks).toString('utf8') })
        })
      },
    )
    // The streams have no setTimeout(), so http.request's `timeout` cannot be used.
    const timer = setTimeout(() => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    outgoing.on('error', (err) => {
      clearTimeout(timer)
      serverSide.destroy()
      reject(err)
    })
    outgoing.end(body)
  })
}
