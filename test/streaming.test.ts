// Bodies stream both ways with backpressure: pushing 512 MiB through the proxy in each direction
// must not grow memory anywhere near the body size (a buffering proxy would grow by 512 MiB).
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

const TOTAL = 512 * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 'x')
// Half the body size: whole-body buffering in either direction would blow through it; GC slack stays under.
const LIMIT = 256 * 1024 * 1024

function generator(total: number): Readable {
  let sent = 0
  return new Readable({
    read() {
      if (sent >= total) return this.push(null)
      sent += CHUNK.length
      this.push(CHUNK)
    },
  })
}

t.test('a large download and upload stream through with flat memory', async (t) => {
  const up = await startUpstream('big', (req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-length': String(TOTAL) })
      generator(TOTAL).pipe(res)
      return
    }
    res.end('unused')
  })
  // The helper upstream buffers request bodies; uploads go to a counting sink instead.
  const sink = await startUpstream('sink')
  sink.server.removeAllListeners('request')
  sink.server.on('request', (req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => {
      n += c.length
    })
    req.on('end', () => res.end(String(n)))
  })
  t.teardown(() => Promise.all([up.close(), sink.close()]))
  const turnout = await startProxy(t, {
    routes: [
      { name: 'up', match: { pathPrefix: '/upload' }, primary: { endpoints: [sink.url] } },
      { name: 'down', primary: { endpoints: [up.url] } },
    ],
  })
  const base = process.memoryUsage().rss
  let peak = base
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  t.teardown(() => clearInterval(sampler))

  const res = await request(`${turnout.url}/download`)
  let received = 0
  for await (const chunk of res.body) received += (chunk as Buffer).length
  t.equal(received, TOTAL, 'every byte downloaded')

  const upload = await request(`${turnout.url}/upload`, {
    method: 'POST',
    body: generator(TOTAL),
    headers: { 'content-length': String(TOTAL) },
  })
  t.equal(await upload.body.text(), String(TOTAL), 'every byte uploaded')
  clearInterval(sampler)
  t.ok(peak - base < LIMIT, `RSS grew by ${Math.round((peak - base) / 1048576)} MiB while 1 GiB streamed`)
})
