// `workers: N` and runtime state: a weight set through the admin API and a running rollout survive
// the leader worker's (and every worker's) death; a reload the primary rejects is counted in
// /metrics; an endpoint that does not resolve is warned about once, by the primary.
// Runs bin/turnout.js (dist/ is built by `npm test`/`prepare`).
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, get, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { type Running, startBin } from './helpers/spawn.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-cluster-runtime-'))
const TOKEN = 'cluster-runtime-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }

async function upstream(name: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.end(JSON.stringify({ service: name })))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

/** One request on a connection of its own (the cluster spreads connections, not requests). */
function fetchOnce(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve(`${res.statusCode} ${res.headers['x-turnout-variant'] ?? '-'} ${body}`))
    }).on('error', reject)
  })
}

async function burst(proxy: string, n: number): Promise<Set<string>> {
  const out = new Set<string>()
  for (let i = 0; i < n; i += 4) {
    for (const r of await Promise.all(Array.from({ length: 4 }, () => fetchOnce(`http://${proxy}/x`))))
      out.add(r)
  }
  return out
}

async function metric(admin: string, series: string): Promise<number | null> {
  const res = await request(`http://${admin}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? null : Number(line.slice(series.length + 1))
}

async function routes(
  admin: string,
): Promise<Record<string, { split: { canary: number }; rollout: unknown }>> {
  const res = await request(`http://${admin}/api/routes`, { headers: auth })
  const body = (await res.body.json()) as { routes: Array<{ name: string; split: { canary: number } }> }
  return Object.fromEntries(body.routes.map((r) => [r.name, r])) as never
}

/** SIGKILLs worker `id` and waits until its replacement serves. */
async function killWorker(run: Running, id: number): Promise<void> {
  const current = [...run.lines].reverse().find((l) => l.msg === 'worker started' && l.worker === id)!
  const pid = current.pid as number
  const from = run.lines.length
  process.kill(pid, 'SIGKILL')
  await run.waitFor((l) => l.msg === 'worker died' && l.worker === id && l.workerPid === pid)
  const replaced = (l: Record<string, unknown>) => run.lines.indexOf(l) >= from
  await run.waitFor((l) => l.msg === 'worker replaced' && l.worker === id && replaced(l), 30_000)
  await run.waitFor((l) => l.msg === 'worker started' && l.worker === id && l.pid !== pid, 30_000)
}

t.test('runtime weights and rollouts survive worker crashes; rejected reloads are counted', async (t) => {
  const primary = await upstream('primary')
  const canary = await upstream('canary')
  t.teardown(() => {
    primary.server.close()
    canary.server.close()
  })
  const file = join(dir, 'cluster.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
workers: 2
accessLog: { enabled: false }
routes:
  - name: ro
    match: { pathPrefix: /ro }
    primary: { endpoints: [${primary.url}] }
    canary: { endpoints: [${canary.url}] }
    rollout: { steps: [10, 50], interval: 1h }
  - name: gone
    match: { pathPrefix: /gone }
    primary: { endpoints: ["http://does-not-exist.invalid:80"] }
  - name: web
    primary: { endpoints: [${primary.url}] }
    canary: { endpoints: [${canary.url}] }
    split: { canary: 10 }
`,
  )
  const run = startBin(['--config', file])
  const closed = once(run.child, 'close')
  t.teardown(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL')
  })
  await run.waitFor((l) => l.msg === 'workers started', 30_000)
  await run.waitFor((l) => l.msg === 'worker started' && l.worker === 1)
  await run.waitFor((l) => l.msg === 'worker started' && l.worker === 2)
  const listening = run.lines.filter((l) => l.msg === 'listening')
  const proxy = listening.find((l) => l.listener === 'proxy')!.address as string
  const admin = listening.find((l) => l.listener === 'admin')!.address as string
  const unresolved = await run.waitFor((l) => /does not resolve/.test(String(l.msg)))
  t.match(unresolved, { level: 40, route: 'gone', variant: 'primary', host: 'does-not-exist.invalid' })
  t.equal(unresolved.worker, undefined, 'the primary says it, once for the cluster')

  // An emergency weight (100 here: a deterministic split) and a running rollout, both in the leader.
  const put = await request(`http://${admin}/api/routes/web/weight`, {
    method: 'PUT',
    body: '{"canary":100}',
    headers: auth,
  })
  t.equal(put.statusCode, 200)
  await put.body.dump()
  const start = await request(`http://${admin}/api/routes/ro/rollout/start`, {
    method: 'POST',
    headers: auth,
  })
  t.equal(start.statusCode, 200)
  await start.body.dump()
  t.same(await burst(proxy, 16), new Set(['200 canary {"service":"canary"}']), 'all to the canary')

  await killWorker(run, 1)
  let now = await routes(admin)
  t.equal(now.web!.split.canary, 100, 'the new leader has the weight set through the API, not the file 10')
  t.match(now.ro!.rollout, { phase: 'progressing', step: 0, weight: 10 }, 'the rollout goes on where it was')
  t.equal(now.ro!.split.canary, 10)
  t.same(
    await burst(proxy, 40),
    new Set(['200 canary {"service":"canary"}']),
    'every worker still splits 100/0',
  )
  t.ok(
    run.lines.some((l) => l.msg === 'rollout resumed after a worker restart' && l.route === 'ro'),
    'the leader says it resumed the rollout',
  )

  await killWorker(run, 2)
  await killWorker(run, 1)
  now = await routes(admin)
  t.equal(now.web!.split.canary, 100, 'after every worker was replaced, still the runtime weight')
  t.same(await burst(proxy, 40), new Set(['200 canary {"service":"canary"}']))
  t.equal(await metric(admin, 'turnout_canary_weight{route="web"}'), 100)
  t.equal(run.lines.filter((l) => /does not resolve/.test(String(l.msg))).length, 1, 'said once')

  // The primary's admin listener answers a malformed %-escape itself: 400, not 500.
  const malformed = await request(`http://${admin}/api/routes/%E0%A4%A`, { headers: auth })
  t.equal(malformed.statusCode, 400)
  t.match(await malformed.body.json(), { error: 'bad_request' })

  // A reload the primary rejects is counted (once, by the primary), not only logged.
  t.equal(await metric(admin, 'turnout_config_reloads_total{result="error"}'), 0)
  const mark = run.lines.length
  writeFileSync(file, 'routes: [\n')
  run.child.kill('SIGHUP')
  await run.waitFor((l) => l.msg === 'config reload rejected' && run.lines.indexOf(l) >= mark)
  const errors = await metric(admin, 'turnout_config_reloads_total{result="error"}')
  t.ok(errors !== null && errors >= 1, `result="error" counted (${errors})`)
  t.equal(await metric(admin, 'turnout_config_reloads_total{result="success"}'), 0)

  run.child.kill('SIGTERM')
  t.equal(await run.exit, 0)
  await closed
})

t.test('kept weights apply by route name unless the config changed the route since', async (t) => {
  const { compile } = await import('../src/config/compile.js')
  const { parseConfig } = await import('../src/config/load.js')
  const { restoreWeights, captureWeights } = await import('../src/rollout/runtime-state.js')
  const { Pools } = await import('../src/upstream/pools.js')
  const pools = new Pools()
  t.teardown(() => pools.close())
  const table = compile(
    parseConfig(
      `routes:
  - { name: a, primary: { endpoints: [http://127.0.0.1:1] }, canary: { endpoints: [http://127.0.0.1:2] }, split: { canary: 10 } }
  - { name: b, primary: { endpoints: [http://127.0.0.1:1] }, canary: { endpoints: [http://127.0.0.1:2] }, split: { canary: 20 } }
  - { name: c, primary: { endpoints: [http://127.0.0.1:1] } }
`,
      'test',
    ),
    { pools },
  )
  restoreWeights(table, {
    a: { canary: 0, configured: 10 },
    b: { canary: 70, configured: 5 },
    c: { canary: 30, configured: 0 },
    gone: { canary: 1, configured: 1 },
  })
  t.same(captureWeights(table), {
    a: { canary: 0, configured: 10 },
    b: { canary: 20, configured: 20 },
    c: { canary: 0, configured: 0 },
  })
})
