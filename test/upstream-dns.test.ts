// An endpoint whose host name does not resolve: Turnout starts, says so (start log, reload log,
// `turnout validate`), answers 502 upstream_unavailable, counts kind="dns", and keeps resolving per
// connection, so the route works as soon as the name resolves.
import dns from 'node:dns'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.js'
import { classifyUpstreamError } from '../src/http/upstream-errors.js'
import { unresolvedEndpoints } from '../src/upstream/resolve.js'
import { runBin } from './helpers/spawn.js'
import { memoryLogger, startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-dns-'))
const NOWHERE = 'http://does-not-exist.invalid:80'

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

async function metric(adminUrl: string, series: string): Promise<number | null> {
  const res = await request(`${adminUrl}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? null : Number(line.slice(series.length + 1))
}

t.test('getaddrinfo failures are their own kind, dns', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code })
  t.equal(classifyUpstreamError(err('ENOTFOUND')), 'dns')
  t.equal(classifyUpstreamError(err('EAI_AGAIN')), 'dns')
  t.equal(classifyUpstreamError(Object.assign(new Error('fetch failed'), { cause: err('ENOTFOUND') })), 'dns')
  t.equal(classifyUpstreamError(err('ECONNREFUSED')), 'connect', 'a refused connection stays connect')
})

t.test('unresolvedEndpoints: one lookup per name, IPs never looked up', async (t) => {
  const config = parseConfig(
    `routes:
  - name: a
    primary: { endpoints: ["http://gone.test:80", "http://127.0.0.1:1", "http://[::1]:2"] }
    canary: { endpoints: ["http://ok.test:80", "http://gone.test:81/base"] }
`,
    'test',
  )
  const asked: string[] = []
  const resolver = async (host: string) => {
    asked.push(host)
    if (host === 'ok.test') return ['127.0.0.1']
    throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' })
  }
  const found = await unresolvedEndpoints(config, resolver)
  t.same(asked.sort(), ['gone.test', 'ok.test'])
  t.same(
    found.map((u) => [u.path, u.route, u.variant, u.host, u.error]),
    [
      ['routes[0].primary.endpoints[0]', 'a', 'primary', 'gone.test', 'ENOTFOUND'],
      ['routes[0].canary.endpoints[1]', 'a', 'canary', 'gone.test', 'ENOTFOUND'],
    ],
  )
})

t.test('start: a warn line naming the endpoint; 502 upstream_unavailable; kind="dns" counted', async (t) => {
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    { routes: [{ name: 'shop', primary: { endpoints: [NOWHERE] } }] },
    { logger },
  )
  const warned = () => lines.find((l) => /does not resolve/.test(String(l.msg)))
  await until('the warn line', () => warned() !== undefined)
  t.match(warned(), {
    level: 40,
    route: 'shop',
    variant: 'primary',
    endpoint: NOWHERE,
    host: 'does-not-exist.invalid',
  })
  for (let i = 0; i < 2; i++) {
    const res = await request(`${turnout.url}/x`)
    t.equal(res.statusCode, 502)
    t.same(await res.body.json(), { error: 'upstream_unavailable', route: 'shop', variant: 'primary' })
  }
  const series = (kind: string) =>
    `turnout_upstream_errors_total{route="shop",variant="primary",kind="${kind}"}`
  t.equal(await metric(turnout.adminUrl, series('dns')), 2, 'each failed resolution is counted as dns')
  t.equal(await metric(turnout.adminUrl, series('connect')), 0)
})

t.test('resolution is retried: the route works once the name resolves', async (t) => {
  const up = await startUpstream('late')
  t.teardown(() => up.close())
  // This process's resolver, as net.connect (and so undici) calls it: unknown at first, then 127.0.0.1.
  let resolves = false
  const original = dns.lookup
  const patched = ((host: string, options: unknown, callback: unknown) => {
    if (host !== 'late.turnout.test') return (original as (...a: unknown[]) => void)(host, options, callback)
    const cb = (typeof options === 'function' ? options : callback) as (...a: unknown[]) => void
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all
    process.nextTick(() => {
      if (!resolves)
        cb(Object.assign(new Error('getaddrinfo ENOTFOUND late.turnout.test'), { code: 'ENOTFOUND' }))
      else if (all) cb(null, [{ address: '127.0.0.1', family: 4 }])
      else cb(null, '127.0.0.1', 4)
    })
  }) as typeof dns.lookup
  dns.lookup = patched
  t.teardown(() => {
    dns.lookup = original
  })
  const turnout = await startProxy(t, {
    routes: [{ name: 'late', primary: { endpoints: [`http://late.turnout.test:${up.port}`] } }],
  })
  const first = await request(`${turnout.url}/x`)
  t.equal(first.statusCode, 502)
  await first.body.dump()
  resolves = true
  const second = await request(`${turnout.url}/x`)
  t.equal(second.statusCode, 200, 'the next request resolved the name again')
  await second.body.dump()
})

t.test('turnout validate warns on stderr, names the endpoint, and still says ok (exit 0)', async (t) => {
  const file = join(dir, 'nowhere.yaml')
  writeFileSync(
    file,
    `routes:\n  - name: shop\n    primary: { endpoints: ["http://127.0.0.1:1"] }\n    canary: { endpoints: ["${NOWHERE}"] }\n`,
  )
  const r = await runBin(['validate', file])
  t.equal(r.code, 0)
  t.equal(r.stdout, 'ok\n')
  t.match(
    r.stderr,
    /nowhere\.yaml: warning: routes\[0\]\.canary\.endpoints\[0\]: host does-not-exist\.invalid of http:\/\/does-not-exist\.invalid:80 \(route shop, canary\) does not resolve \((ENOTFOUND|EAI_AGAIN)\)/,
  )
})
