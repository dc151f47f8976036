// `workers: N`: the real binary as a cluster (primary + 2 workers sharing the proxy port), and the
// cluster's pure parts. Runs bin/turnout.js (dist/ is built by `npm test`/`prepare`).
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, get, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { request } from 'undici'
import { mountRoutesApi } from '../src/admin/api.js'
import { AdminServer } from '../src/admin/server.js'
import { supportsReusePort, workerCount } from '../src/cluster/count.js'
import { exchange } from '../src/cluster/exchange.js'
import { restartDelay } from '../src/cluster/supervisor.js'
import { applyWeights, weightsOf, workerConfig } from '../src/cluster/worker.js'
import { compile } from '../src/config/compile.js'
import { parseConfig } from '../src/config/load.js'
import { RolloutManager } from '../src/rollout/controller.js'
import { TableHolder } from '../src/routing/holder.js'
import { Pools } from '../src/upstream/pools.js'
import { type Running, startBin } from './helpers/spawn.js'
import { until } from './helpers/until.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-cluster-'))
const TOKEN = 'cluster-test-token-0123456789'

/** An upstream that names itself; /slow answers after 600 ms and counts arrivals. */
async function upstream(name: string): Promise<{ url: string; server: Server; arrived: () => number }> {
  let slowArrived = 0
  const server = createServer((req, res) => {
    const answer = () => res.end(JSON.stringify({ service: name }))
    if (req.url?.startsWith('/slow')) {
      slowArrived++
      setTimeout(answer, 600)
    } else answer()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server, arrived: () => slowArrived }
}

/** One request on a connection of its own (the cluster spreads connections, not requests). */
function fetchOnce(url: string): Promise<{ status: number; service: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => {
        let service = ''
        try {
          service = (JSON.parse(body) as { service: string }).service
        } catch {}
        resolve({ status: res.statusCode ?? 0, service })
      })
    }).on('error', reject)
  })
}

/** Access-log lines ("request") by worker id, from line `from` on. */
function servedBy(run: Running, from: number): Map<number, number> {
  const by = new Map<number, number>()
  for (const l of run.lines.slice(from)) {
    if (l.msg === 'request') by.set(l.worker as number, (by.get(l.worker as number) ?? 0) + 1)
  }
  return by
}

function requestLines(run: Running, from = 0): number {
  return run.lines.slice(from).filter((l) => l.msg === 'request').length
}

async function metric(admin: string, series: string): Promise<number | null> {
  const res = await request(`http://${admin}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? null : Number(line.slice(series.length + 1))
}

async function burst(
  proxy: string,
  n: number,
  path = '/x',
): Promise<Array<{ status: number; service: string }>> {
  const out: Array<{ status: number; service: string }> = []
  // 4 at a time: enough concurrency for both workers, little load on a small machine.
  for (let i = 0; i < n; i += 4) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(4, n - i) }, () => fetchOnce(`http://${proxy}${path}`)),
      )),
    )
  }
  return out
}

t.test(
  'workers: 2 shares the port, aggregates /metrics, spreads weights, replaces and drains workers',
  async (t) => {
    const primary = await upstream('primary')
    const canary = await upstream('canary')
    t.teardown(() => {
      primary.server.close()
      canary.server.close()
    })
    const file = join(dir, 'two.yaml')
    writeFileSync(
      file,
      `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
workers: 2
shutdown: { drainTimeout: 10s }
routes:
  - name: web
    primary: { endpoints: [${primary.url}] }
    canary: { endpoints: [${canary.url}] }
    split: { canary: 0 }
`,
    )
    const run = startBin(['--config', file])
    // 'close': the workers share the stdout pipe, so their last lines are in once it closes.
    const closed = once(run.child, 'close')
    t.teardown(() => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL')
    })
    await run.waitFor((l) => l.msg === 'workers started', 30_000)
    const listening = run.lines.filter((l) => l.msg === 'listening')
    t.same(
      listening.map((l) => l.listener),
      ['proxy', 'admin'],
      'one listening line per listener, from the primary',
    )
    const proxy = listening[0]!.address as string
    const admin = listening[1]!.address as string
    t.match(proxy, /^127\.0\.0\.1:\d+$/)
    // Each worker logs through its own stdout writer: its line may come after the primary's.
    const started = [
      await run.waitFor((l) => l.msg === 'worker started' && l.worker === 1),
      await run.waitFor((l) => l.msg === 'worker started' && l.worker === 2),
    ]
    t.not(started[0]!.pid, started[1]!.pid, 'two worker processes, ids 1 and 2')
    const ready = await request(`http://${admin}/readyz`)
    t.equal(ready.statusCode, 200, 'the primary is ready')
    await ready.body.dump()

    // Both workers serve; /metrics adds their counts up.
    let results = await burst(proxy, 40)
    t.same(new Set(results.map((r) => `${r.status} ${r.service}`)), new Set(['200 primary']))
    await until('40 access-log lines', () => requestLines(run) >= 40)
    let by = servedBy(run, 0)
    t.ok((by.get(1) ?? 0) > 0 && (by.get(2) ?? 0) > 0, `both workers served (${[...by].join(' ')})`)
    t.equal(await metric(admin, 'turnout_requests_total{route="web",variant="primary",code="200"}'), 40)
    const rss = await metric(admin, 'turnout_process_resident_memory_bytes')
    t.ok(rss !== null && rss > 0, 'process metrics of the workers are there')

    // The admin API goes to the leader; the weight reaches every worker before the call returns.
    const refused = await request(`http://${admin}/api/routes/web/weight`, {
      method: 'PUT',
      body: '{"canary":100}',
      headers: { 'content-type': 'application/json' },
    })
    t.equal(refused.statusCode, 401, 'the token is checked')
    await refused.body.dump()
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
    const put = await request(`http://${admin}/api/routes/web/weight`, {
      method: 'PUT',
      body: '{"canary":100}',
      headers: auth,
    })
    t.equal(put.statusCode, 200)
    t.match(await put.body.json(), { name: 'web', split: { canary: 100 } })
    const bad = await request(`http://${admin}/api/routes/web/weight`, {
      method: 'PUT',
      body: '{"canary":101}',
      headers: auth,
    })
    t.equal(bad.statusCode, 400, "the leader's validation answers")
    t.match(await bad.body.json(), { field: 'canary' })
    const missing = await request(`http://${admin}/api/routes/nope`, { headers: auth })
    t.equal(missing.statusCode, 404)
    await missing.body.dump()
    t.equal(await metric(admin, 'turnout_canary_weight{route="web"}'), 100, 'the weight gauge is not summed')

    let mark = run.lines.length
    results = await burst(proxy, 40)
    t.same(
      new Set(results.map((r) => `${r.status} ${r.service}`)),
      new Set(['200 canary']),
      'every worker sends all to the canary',
    )
    await until('40 more access-log lines', () => requestLines(run, mark) >= 40)
    by = servedBy(run, mark)
    t.ok((by.get(1) ?? 0) > 0 && (by.get(2) ?? 0) > 0, `both workers served (${[...by].join(' ')})`)

    // kill -9 a worker: it is logged and replaced, the replacement takes the leader's weights.
    const victim = started.find((l) => l.worker === 2)!.pid as number
    process.kill(victim, 'SIGKILL')
    const died = await run.waitFor((l) => l.msg === 'worker died')
    t.match(died, { worker: 2, workerPid: victim, signal: 'SIGKILL' })
    // 0, or 250 ms when it had been up for less than 10 s (a quick death: backoff).
    t.type(died.restartInMs, 'number', 'it is restarted')
    await run.waitFor((l) => l.msg === 'worker replaced')
    const again = await run.waitFor((l) => l.msg === 'worker started' && l.worker === 2 && l.pid !== victim)
    t.not(again.pid, victim, 'a new worker 2 started')
    mark = run.lines.length
    results = await burst(proxy, 40)
    t.same(
      new Set(results.map((r) => `${r.status} ${r.service}`)),
      new Set(['200 canary']),
      'traffic keeps flowing',
    )
    await until('40 more access-log lines', () => requestLines(run, mark) >= 40)
    by = servedBy(run, mark)
    t.ok((by.get(2) ?? 0) > 0, 'the replacement serves, with the weights it was given')

    // SIGHUP: every worker reloads.
    mark = run.lines.length
    run.child.kill('SIGHUP')
    await until(
      'two reloads',
      () => run.lines.slice(mark).filter((l) => l.msg === 'config reloaded').length === 2,
    )
    t.pass('both workers reloaded')

    // SIGTERM with requests in flight: all of them finish, exit 0.
    const before = canary.arrived()
    const inFlight = Promise.all(Array.from({ length: 6 }, () => fetchOnce(`http://${proxy}/slow`)))
    await until('the slow requests to reach the upstream', () => canary.arrived() - before === 6)
    run.child.kill('SIGTERM')
    const slow = await inFlight
    t.same(
      slow.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
      'no in-flight request failed',
    )
    t.equal(await run.exit, 0, 'exit 0 once every worker drained')
    await closed
    t.equal(run.lines.filter((l) => l.msg === 'stopped').length, 3, 'two workers and the primary stopped')
  },
)

t.test('a worker that keeps dying right after it starts stops the cluster (exit 1)', async (t) => {
  const up = await upstream('primary')
  t.teardown(() => up.server.close())
  const file = join(dir, 'loop.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nworkers: 2\nroutes:\n  - name: a\n    primary: { endpoints: [${up.url}] }\n`,
  )
  const run = startBin(['--config', file])
  const closed = once(run.child, 'close')
  t.teardown(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL')
  })
  await run.waitFor((l) => l.msg === 'workers started', 30_000)
  // The file turns invalid: the primary refuses it (the workers keep the config they have)...
  writeFileSync(file, 'routes: [\n')
  await run.waitFor((l) => l.msg === 'config reload rejected')
  // ...but a replacement worker reads the file as it is now, and dies at once, again and again.
  const victim = (await run.waitFor((l) => l.msg === 'worker started' && l.worker === 2)).pid as number
  process.kill(victim, 'SIGKILL')
  t.equal(await run.exit, 1, 'the cluster gives up')
  await closed
  const deaths = run.lines.filter((l) => l.msg === 'worker died')
  t.same(
    deaths.slice(-5).map((l) => l.restartInMs),
    [250, 500, 1000, 2000, undefined],
    'restarts back off; the fifth quick death in a row gives up',
  )
  t.match(deaths.at(-1), { worker: 2, code: 1 })
  t.ok(run.lines.some((l) => l.level === 60 && /giving up/.test(String(l.msg))))
  t.match(run.stderr.join('\n'), /loop\.yaml:\d+:\d+: invalid YAML/, 'each failed worker said why')
  t.ok(
    run.lines.some((l) => l.msg === 'stopped' && l.worker === 1),
    'worker 1 was drained',
  )
})

t.test('a worker that cannot listen fails the start (exit 1)', async (t) => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const { port } = busy.address() as AddressInfo
  const file = join(dir, 'busy.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:${port}\nadmin: { listen: 127.0.0.1:0 }\nworkers: 2\nroutes:\n  - name: a\n    primary: { endpoints: [http://127.0.0.1:1] }\n`,
  )
  const run = startBin(['--config', file])
  const closed = once(run.child, 'close')
  t.equal(await run.exit, 1)
  await closed
  t.match(
    run.stderr.join('\n'),
    /EADDRINUSE\b.*127\.0\.0\.1:\d+/,
    'names the busy address (Node 20 and 24 word it differently)',
  )
  t.ok(run.lines.some((l) => l.msg === 'worker failed to start'))
  t.notOk(run.lines.some((l) => l.msg === 'listening'))
})

t.test('worker counts and reusePort support', async (t) => {
  t.equal(workerCount(3, 8), 3)
  t.equal(workerCount('auto', 2), 2)
  t.equal(workerCount('auto', 0), 1)
  t.equal(workerCount('auto', 1000), 256)
  t.equal(supportsReusePort('v20.20.2', 'linux'), false)
  t.equal(supportsReusePort('v22.11.0', 'linux'), false)
  t.equal(supportsReusePort('v22.12.0', 'linux'), true)
  t.equal(supportsReusePort('v23.0.0', 'linux'), false)
  t.equal(supportsReusePort('v23.1.0', 'linux'), true)
  t.equal(supportsReusePort('v24.0.0', 'linux'), true)
  t.equal(supportsReusePort('v24.0.0', 'darwin'), false)
  t.equal(supportsReusePort('nonsense', 'linux'), false)
  t.same([1, 2, 3, 4, 5, 10].map(restartDelay), [250, 500, 1000, 2000, 4000, 5000])
  t.equal(restartDelay(0), 0)
})

t.test('followers drop rollout blocks; weights are read and applied by route name', async (t) => {
  const config = parseConfig(
    `routes:
  - name: a
    primary: { endpoints: [http://127.0.0.1:1] }
    canary: { endpoints: [http://127.0.0.1:2] }
    split: { canary: 5 }
    rollout: { steps: [10, 50] }
  - name: b
    primary: { endpoints: [http://127.0.0.1:3] }
`,
    'test',
  )
  t.ok(workerConfig(config, true).routes[0]!.rollout, 'the leader keeps its rollouts')
  const follower = workerConfig(config, false)
  t.equal(follower.routes[0]!.rollout, undefined)
  t.equal(follower.routes[0]!.split.canary, 5)
  t.ok(config.routes[0]!.rollout, 'the original is untouched')

  const pools = new Pools()
  t.teardown(() => pools.close())
  const holder = new TableHolder(compile(follower, { pools }))
  t.same(weightsOf({ holder }), { a: 5, b: 0 })
  applyWeights({ holder }, { a: 40, gone: 10 })
  t.same(weightsOf({ holder }), { a: 40, b: 0 }, 'unknown routes are ignored')
})

t.test('exchange() runs an admin API call through an AdminServer without a socket', async (t) => {
  const config = parseConfig(
    `routes:
  - name: a
    primary: { endpoints: [http://127.0.0.1:1] }
    canary: { endpoints: [http://127.0.0.1:2] }
`,
    'test',
  )
  const pools = new Pools()
  t.teardown(() => pools.close())
  const logger = pino({ level: 'silent' })
  const holder = new TableHolder(compile(config, { pools }))
  const rollouts = new RolloutManager({ holder, logger })
  const admin = new AdminServer({
    token: TOKEN,
    protectHealth: false,
    protectMetrics: false,
    logger,
    ready: () => true,
  })
  mountRoutesApi(admin, { holder, rollouts, logger })

  const ok = await exchange(admin.server, {
    method: 'PUT',
    url: '/api/routes/a/weight',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: '{"canary":25}',
  })
  t.equal(ok.status, 200)
  t.equal(ok.headers['content-type'], 'application/json')
  t.equal(ok.headers.connection, undefined, 'hop-by-hop headers are dropped')
  t.match(JSON.parse(ok.body), { name: 'a', split: { canary: 25 } })
  t.equal(holder.current.byName.get('a')!.weight.canary, 25)

  const denied = await exchange(admin.server, { method: 'GET', url: '/api/routes', headers: {}, body: '' })
  t.equal(denied.status, 401)
  t.equal(denied.headers['www-authenticate'], 'Bearer')

  const malformed = await exchange(admin.server, {
    method: 'PUT',
    url: '/api/routes/a/weight',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: '{nope',
  })
  t.equal(malformed.status, 400)

  // A server that never answers: the exchange gives up.
  const silent = createServer(() => {})
  await t.rejects(
    exchange(silent, { method: 'GET', url: '/', headers: {}, body: '' }, 200),
    /no answer within 200 ms/,
  )
  silent.closeAllConnections()
})
