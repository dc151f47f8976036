// Routing check: before a target is timed, each request kind it will see must answer 200 with the
// exact body the upstream sends. Also counts which upstream answered (x-bench-upstream) for the report.
import http from 'node:http'

function once(agent, url, req, timeoutMs) {
  return new Promise((resolve, reject) => {
    const u = new URL(req.path, url)
    const body = req.bodySize > 0 ? Buffer.alloc(req.bodySize, 120) : null
    const r = http.request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: req.method,
        headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            body: Buffer.concat(chunks),
            upstream: res.headers['x-bench-upstream'],
          }),
        )
        res.on('error', reject)
      },
    )
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    r.on('error', reject)
    r.end(body)
  })
}

function describe(buf) {
  const s = buf.subarray(0, 80).toString('utf8').replace(/\s+/g, ' ')
  return `${buf.length} bytes "${s}${buf.length > 80 ? '...' : ''}"`
}

/**
 * Send `times` requests of kind `req` to `url`. Resolves to { ok, reason, upstreams: {name: count} }.
 */
export async function routingCheck(url, req, times = 20, timeoutMs = 10_000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const upstreams = {}
  try {
    for (let i = 0; i < times; i++) {
      let res
      try {
        res = await once(agent, url, req, timeoutMs)
      } catch (err) {
        return { ok: false, reason: `${req.method} ${req.path}: ${err.message}`, upstreams }
      }
      if (res.status !== 200) {
        return {
          ok: false,
          reason: `${req.method} ${req.path}: status ${res.status}, body ${describe(res.body)}`,
          upstreams,
        }
      }
      if (!res.body.equals(req.expect)) {
        return {
          ok: false,
          reason: `${req.method} ${req.path}: wrong body: got ${describe(res.body)}, want ${describe(req.expect)}`,
          upstreams,
        }
      }
      const name = res.upstream ?? '(no x-bench-upstream header)'
      upstreams[name] = (upstreams[name] ?? 0) + 1
    }
    return { ok: true, reason: null, upstreams }
  } finally {
    agent.destroy()
  }
}

/** Number of requests an upstream has answered (read straight from it, never through a proxy). */
export async function upstreamCount(upstreamUrl) {
  const agent = new http.Agent({ keepAlive: false })
  try {
    const res = await once(agent, upstreamUrl, { method: 'GET', path: '/__stats', bodySize: 0 }, 5000)
    return JSON.parse(res.body.toString('utf8')).requests
  } catch {
    return null
  } finally {
    agent.destroy()
  }
}
