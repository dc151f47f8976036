// The echo upstream: a node:http server on 127.0.0.1:0 that records exactly what it received (method,
// raw target, raw header list in order and case, body bytes, trailers) under the request's
// x-fuzz-id, and answers with the answer registered for that id.
import { once } from 'node:events'
import { createServer } from 'node:http'

function fuzzId(raw) {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === 'x-fuzz-id') return raw[i + 1]
  return null
}

function respond(res, answer, method) {
  if (answer.earlyHints) res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
  res.sendDate = false // a Date header only when the answer has one, so both runs see the same bytes
  const bodyless = answer.status === 204 || answer.status === 304
  const headers = answer.headers.flat()
  if (answer.framing === 'cl' && !bodyless) headers.push('Content-Length', String(answer.body.length))
  if (answer.framing === 'close') res.useChunkedEncodingByDefault = false
  // Node sends trailers only on a chunked body, which a HEAD answer does not have.
  const trailers = method === 'HEAD' ? [] : answer.trailers
  if (trailers.length > 0) headers.push('Trailer', trailers.map(([n]) => n).join(', '))
  res.writeHead(answer.status, answer.reason, headers)
  if (answer.body.length > 0) {
    const cut = answer.framing === 'chunked' ? Math.floor(answer.body.length / 2) : 0
    if (cut > 0) res.write(answer.body.subarray(0, cut))
    res.write(answer.body.subarray(cut))
  }
  if (trailers.length > 0) res.addTrailers(trailers)
  res.end()
}

const FALLBACK = { status: 200, headers: [], body: Buffer.alloc(0), framing: 'cl', trailers: [] }

/**
 * Starts an echo upstream. `answers` maps an x-fuzz-id to its answer (generate answer.js).
 * Resolves to { url, port, seen: Map<id, record[]>, close() }.
 */
export async function startEcho(answers) {
  const seen = new Map()
  const server = createServer({ maxHeaderSize: 256 * 1024, joinDuplicateHeaders: false }, (req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const id = fuzzId(req.rawHeaders)
      const record = {
        method: req.method,
        target: req.url,
        headers: req.rawHeaders,
        body: Buffer.concat(chunks),
        trailers: req.rawTrailers,
      }
      const list = seen.get(id)
      if (list) list.push(record)
      else seen.set(id, [record])
      try {
        respond(res, answers.get(id) ?? FALLBACK, req.method)
      } catch (err) {
        record.answerError = err.message // shows up as a client-side difference, never a crash
        res.destroy()
      }
    })
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    async close() {
      server.closeAllConnections()
      server.close()
    },
  }
}
