// AdminServer.prefix: a handler for every path under a prefix (the cluster primary relays /api/* with
// it), matched by whole segments after the exact routes, over a real socket.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t from 'tap'
import { request } from 'undici'
import { AdminServer, sendJson } from '../src/admin/server.js'

async function started(token: string | null = null) {
  const admin = new AdminServer({
    token,
    protectHealth: false,
    protectMetrics: false,
    logger: pino({ level: 'silent' }),
    ready: () => true,
  })
  admin.server.listen(0, '127.0.0.1')
  await once(admin.server, 'listening')
  const { port } = admin.server.address() as AddressInfo
  t.teardown(() => {
    admin.server.close()
    admin.server.closeAllConnections()
  })
  return { admin, base: `http://127.0.0.1:${port}` }
}

async function call(base: string, method: string, path: string, body?: string, token?: string) {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await request(`${base}${path}`, { method: method as 'GET', headers, body })
  const text = await res.body.text()
  return { status: res.statusCode, json: text === '' ? undefined : JSON.parse(text) }
}

t.test('a prefix route takes every path and method under it, after the exact routes', async (t) => {
  const { admin, base } = await started()
  admin.route('GET', '/api/exact', ({ res }) => sendJson(res, 200, { by: 'exact' }))
  admin.prefix('*', '/api', ({ req, res, url, body }) =>
    sendJson(res, 200, { by: 'prefix', method: req.method, path: url.pathname, body }),
  )
  t.same((await call(base, 'GET', '/api/exact')).json, { by: 'exact' }, 'the exact route wins')
  t.same((await call(base, 'POST', '/api/exact', '{"a":1}')).json, {
    by: 'prefix',
    method: 'POST',
    path: '/api/exact',
    body: { a: 1 },
  })
  const deep = await call(base, 'DELETE', '/api/a/b/c/d/e/f/g/h/i/j')
  t.same(deep.json, { by: 'prefix', method: 'DELETE', path: '/api/a/b/c/d/e/f/g/h/i/j' })
  t.equal((await call(base, 'OPTIONS', '/api/x')).status, 200, 'any method with *')
  t.equal((await call(base, 'GET', '/api')).json.by, 'prefix', 'the prefix itself')
  const other = await call(base, 'GET', '/apix/y')
  t.equal(other.status, 404, 'whole segments only')
  t.same(other.json, { error: 'not found', path: '/apix/y' })
  t.equal((await call(base, 'GET', '/healthz')).status, 200)
})

t.test('a prefix route with one method: others are 405, GET takes HEAD; JSON errors stay', async (t) => {
  const { admin, base } = await started('prefix-test-token-0123456789')
  admin.prefix('PUT', '/v/:version', ({ res, params, body }) => sendJson(res, 200, { params, body }))
  admin.prefix('GET', '/g', ({ res }) => sendJson(res, 200, { ok: true }))
  const token = 'prefix-test-token-0123456789'
  t.same((await call(base, 'PUT', '/v/2/x', '{"n":3}', token)).json, {
    params: { version: '2' },
    body: { n: 3 },
  })
  t.equal((await call(base, 'PUT', '/v/2/x', '{"n":3}')).status, 401, 'the token still applies')
  const wrong = await call(base, 'GET', '/v/2/x', undefined, token)
  t.equal(wrong.status, 405)
  t.same(wrong.json, { error: 'method not allowed' })
  t.equal((await call(base, 'HEAD', '/g/h', undefined, token)).status, 200)
  const bad = await call(base, 'PUT', '/v/1', '{nope', token)
  t.equal(bad.status, 400)
  t.equal(bad.json.field, 'body')
})
